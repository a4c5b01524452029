"""The console modules' pure parts: the connection options (argument spec, which credentials an
adapter takes, the messages for bad options), what push_certificate_info reports about a console,
the certificate options' names in messages, and state=absent's refusal where a console cannot remove."""
from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._consoles import _base as c
from ansible_collections.mdmops.apple.plugins.module_utils._consoles import _args
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import certificate_facts
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._module import (
    CertificateOptions,
    remove_certificate,
)
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import CertificateError
from lab.pki import ApplePushPKI

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def push():
    return ApplePushPKI().push()


def params(**kw):
    base = {key: value.get("default") for key, value in _args.console_connection_spec().items()}
    base.update(console="nanomdm", url="https://mdm.example.com", api_key="k" * 12)
    base.update(kw)
    return base


def test_spec_marks_every_secret_no_log():
    spec = _args.console_connection_spec()
    assert {k for k, v in spec.items() if v.get("no_log")} == {"api_key", "password", "client_secret"}
    assert "password" not in _args.console_connection_spec(password=False)
    assert spec["validate_certs"]["default"] is True
    assert _args.console_choice_spec()["console"]["choices"] == _args.CONSOLE_CHOICES
    assert not _args.console_choice_spec(required=False)["console"].get("required")


def test_connect_passes_only_the_credentials_an_adapter_takes():
    console, warnings = _args.connect_from_params(params(client_secret="s" * 12, tenant_id="t"))
    assert console.name == "nanomdm" and console.session.timeout == 30.0
    assert warnings == ["NanoMDM does not use client_secret, tenant_id: ignored"]
    assert "s" * 12 in console.session.secrets          # still masked in every message
    console.session.close()
    console, warnings = _args.connect_from_params(params(console="intune", url=None, api_key=None,
                                                         tenant_id="contoso.onmicrosoft.com", client_id="c",
                                                         client_secret="s" * 12))
    assert console.name == "intune" and warnings == []
    console.session.close()


@pytest.mark.parametrize("change, words", [
    ({"url": None}, "url is required with console nanomdm"),
    ({"timeout": 0}, "timeout must be a number of seconds above 0"),
    ({"timeout": float("nan")}, "timeout must be"),
    ({"console": "workspace_one"}, "arrives with a later release"),
    ({"console": "jamf"}, "unknown console 'jamf'"),
    ({"api_key": None}, "api_key is required"),
    ({"url": "mdm.example.com"}, "not an http(s) URL"),
    ({"console": "intune", "url": None, "api_key": None}, "tenant_id and client_id and client_secret are required"),
])
def test_bad_connection_options(change, words):
    with pytest.raises(c.ConsoleError) as err:
        _args.connect_from_params(params(**change))
    assert words in str(err.value)
    assert "k" * 12 not in str(err.value)


def test_session_options_bound_the_whole_exchange():
    assert _args.session_options({"timeout": 10})["deadline"] == 120.0
    assert _args.session_options({"timeout": 60, "validate_certs": False}) == {
        "timeout": 60.0, "deadline": 240.0, "validate_certs": False, "ca_path": None}


class _Stub(c.Console):
    """Only the class attributes held_summary and remove_certificate look at (no HTTP)."""

    name, title = "stub", "Stub"

    def __init__(self, **caps):
        self.capabilities = c.Capabilities(**caps)


def test_held_summary(push):
    facts = certificate_facts(push.cert)
    held = c.Held(topic=push.topic, serial=facts["serial_number"], not_after="2026-06-21T00:00:00Z")
    out = _args.held_summary(_Stub(), held, facts, expires_within_days=30, at=NOW)
    assert out["holds"] and out["known"] and out["days_remaining"] == 20 and out["expires_soon"]
    assert not out["expired"] and out["comparison"] == {"verdict": "same", "basis": "serial number and topic"}
    none = _args.held_summary(_Stub(per_topic=True), None, at=NOW)
    assert none["holds"] is False and none["known"] and "for this topic" in none["reason"]
    assert "comparison" not in none
    unknown = _args.held_summary(_Stub(), c.Held.unknown("no read route"), facts, at=NOW)
    assert unknown["holds"] is None and unknown["known"] is False and unknown["reason"] == "no read route"
    assert unknown["comparison"]["verdict"] == "unknown"


def test_certificate_options_are_named_as_the_module_names_them(tmp_path):
    with pytest.raises(CertificateError, match="certificate_path"):
        CertificateOptions.from_module_params({"certificate_path": str(tmp_path / "missing.pem")}).load()
    with pytest.raises(CertificateError, match="certificate_content"):
        CertificateOptions.from_module_params({"certificate_content": "not a certificate"}).load()


def test_absent_refused_before_any_request_where_a_console_cannot_remove():
    with pytest.raises(c.ConsoleError, match="state=absent is not supported for Stub") as err:
        remove_certificate(_Stub(can_remove=False), None, None, check_mode=False)
    assert err.value.kind == "unsupported" and "nothing was read or changed" in str(err.value)

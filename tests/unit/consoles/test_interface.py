"""The console interface's pure parts: registry, compare (never a guess), times, key forms."""
from __future__ import annotations

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._consoles import _base as c
from ansible_collections.mdmops.apple.plugins.module_utils._consoles import _common
from lab.pki import ApplePushPKI


@pytest.fixture(scope="module")
def push():
    return ApplePushPKI().push()


def test_registry():
    assert c.names() == ("intune", "micromdm", "nanomdm")
    assert c.get("NanoMDM").name == "nanomdm"
    with pytest.raises(c.ConsoleError, match="planned but not supported yet") as err:
        c.get("workspace_one")
    assert err.value.kind == "unsupported"
    with pytest.raises(c.ConsoleError, match="unknown console 'jamf'"):
        c.get("jamf")


def test_connect_needs_api_key_and_a_url():
    with pytest.raises(c.ConsoleError, match="api_key is required"):
        c.connect("nanomdm", "https://mdm.example.com")
    with pytest.raises(c.ConsoleError, match="not an http"):
        c.connect("micromdm", "mdm.example.com", api_key="k" * 8)


def test_compare_never_guesses(push):
    facts = _common.certificate_facts(push.cert)
    assert c.compare(None, facts) == ("different", "the console holds no push certificate")
    assert c.compare(c.Held.unknown("no read route"), facts) == ("unknown", "no read route")
    full = c.Held(topic=facts["topic"], fingerprint_sha256=facts["fingerprint_sha256"].lower().replace(":", ""))
    assert c.compare(full, facts)[0] == "same"
    assert c.compare(c.Held(topic=facts["topic"], serial="1"), facts)[0] == "different"
    expiry = c.Held(topic=facts["topic"], not_after="%s.000000000Z" % facts["not_after"][:-1])
    assert c.compare(expiry, facts, identity="not_after")[0] == "same"
    assert c.compare(expiry, facts, identity="fingerprint")[0] == "unknown"   # expiry alone is not proof here
    assert c.compare(c.Held(topic="com.apple.mgmt.External.other", not_after=facts["not_after"]), facts,
                     identity="not_after")[0] == "different"
    assert c.compare(c.Held(), facts)[0] == "unknown"


@pytest.mark.parametrize("text,iso", [
    ("2026-01-07T04:04:46Z", "2026-01-07T04:04:46Z"),
    ("2026-01-07T04:04:46.123456789Z", "2026-01-07T04:04:46Z"),
    ("2026-01-07T06:04:46+02:00", "2026-01-07T04:04:46Z"),
    ("2026-01-07T04:04:46", "2026-01-07T04:04:46Z"),
    ("yesterday", None), (None, None), (12, None),
])
def test_times(text, iso):
    assert _common.iso(text) == iso


def test_key_forms(push):
    pem = push.key_pem()
    assert b"BEGIN RSA PRIVATE KEY" in _common.unencrypted_key_pem(pem, "pkcs1")
    assert b"BEGIN PRIVATE KEY" in _common.unencrypted_key_pem(push.key_bytes(fmt="pkcs1"), "pkcs8")
    with pytest.raises(ValueError):
        _common.unencrypted_key_pem(push.key_pem(b"pass"), "pkcs1")


def test_held_as_dict_has_no_key_material(push):
    held = c.Held(topic="t", certificate_pem=push.cert_pem().decode())
    assert "certificate_pem" not in held.as_dict() and "reason" not in held.as_dict()
    assert c.Held.unknown("why").as_dict()["reason"] == "why"

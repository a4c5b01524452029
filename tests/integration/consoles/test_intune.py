"""The Intune adapter against its emulator (lab/consoles/intune.py), over real HTTPS on 127.0.0.1:
the client credentials flow and its refusals, read/CSR/upload/read back, the upload Intune rejects,
a token that expires mid-way (one refresh), throttling and load (429 with and without Retry-After,
503, 504 on the PATCH), the missing permission, and _rotate.rotate end to end with no key ever on
the wire.

What the console received and holds is asserted on the emulator's request log and state, not only
on the adapter's answer. Waits between retries go through an injected sleep (recorded, not slept)."""
from __future__ import annotations

import json

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import ConsoleError, compare, connect
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import certificate_facts
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._rotate import (
    RotationRefused,
    RotationSpec,
    rotate,
)
from lab.consoles import Emulator
from lab.consoles import intune as emi

APPLE_ID = "mdm-admin@example.com"


@pytest.fixture
def emu(tmp_path, tls_files, push_pki):
    with Emulator("intune", tmp_path / "state", tls_files=tls_files) as server:
        emi.tenant_key(server.control, push_pki.keys[0])      # the key Intune keeps for its CSR
        yield server


def intune(emu, waits=None, **kw):
    options = dict(token_url=emu.url, tenant_id=emi.TENANT_ID, client_id=emi.CLIENT_ID,
                   client_secret=emu.api_key, ca_path=emu.ca_path, trust_env=False, timeout=5,
                   jitter=lambda: 1.0, sleep=(waits if waits is not None else []).append)
    options.update(kw)
    return connect("intune", emu.url, **options)


def signed_for_intune(pki, emu, topic=None, **kw):
    """What Apple's portal gives for Intune's CSR: a push certificate on the tenant's key."""
    return pki.push(topic, key=emi.tenant_key(emu.control), **kw)


def graph(emu, method=None):
    return [r for r in emu.control.requests() if not r["path"].endswith("/token")
            and (method is None or r["method"] == method)]


def tokens(emu):
    return [r for r in emu.control.requests() if r["path"].endswith("/token")]


def whole_log(emu):
    with open(emu.control.path("requests.jsonl")) as f:
        return f.read()


def test_read_csr_upload_read_back(emu, push_pki):
    console = intune(emu)
    assert console.capabilities.holds_private_key and console.capabilities.can_csr
    assert console.read() is None                                  # 404 ResourceNotFound: holds none
    csr = console.csr()
    from cryptography import x509
    request = x509.load_pem_x509_csr(csr.encode())
    assert request.is_signature_valid
    assert request.public_key().public_numbers() == emi.tenant_key(emu.control).public_key().public_numbers()

    issued = signed_for_intune(push_pki, emu)
    answer = console.upload(issued.cert_pem(), None, APPLE_ID)
    facts = certificate_facts(issued.cert)
    assert answer["topic"] == issued.topic and answer["serial_number"] == facts["serial_number"]
    assert answer["key_sent"] is False
    held = console.read()
    assert held.topic == issued.topic and held.apple_id == APPLE_ID
    assert held.serial == facts["serial_number"] and held.not_after == facts["not_after"]
    assert compare(held, facts, console.capabilities.identity) == ("same", "serial number and topic")
    renewal = push_pki.renewal(issued, keep_key=True)
    assert compare(held, certificate_facts(renewal.cert), console.capabilities.identity)[0] == "different"

    assert len(tokens(emu)) == 1                                   # one token for the whole session
    patch = graph(emu, "PATCH")
    assert len(patch) == 1 and patch[0]["stored"] == issued.topic and not patch[0].get("key_in_body")
    assert emu.control.held()["apple_id"] == APPLE_ID
    assert emu.api_key not in whole_log(emu) + repr(console.session.history) + repr(console.token_session.history)


def test_upload_needs_apple_id_and_a_certificate_for_intunes_csr(emu, push_pki):
    console = intune(emu)
    issued = signed_for_intune(push_pki, emu)
    with pytest.raises(ConsoleError, match="apple_id is required") as err:
        console.upload(issued.cert_pem(), None, None)
    assert err.value.kind == "input" and emu.control.requests() == []

    foreign = push_pki.push(key=push_pki.keys[1])                  # signed for another CSR's key
    with pytest.raises(ConsoleError) as err:
        console.upload(foreign.cert_pem(), foreign.key_pem(), APPLE_ID)
    assert err.value.kind == "rejected" and "does not match the certificate signing request" in str(err.value)
    assert "PRIVATE KEY" not in str(err.value)
    assert "cert_pem" not in emu.control.held() and emu.control.writes() == []
    assert not any(r.get("key_in_body") for r in emu.control.requests())   # the key given was not sent

    console.upload(issued.cert_pem(), None, APPLE_ID)
    emu.control.set_faults([{"upload_fails": "Apple Push Notification certificate upload failed. Try again.",
                             "method": "PATCH"}])
    with pytest.raises(ConsoleError, match="upload failed. Try again") as err:
        console.upload(push_pki.renewal(issued, keep_key=True).cert_pem(), None, APPLE_ID)
    assert err.value.kind == "rejected"
    held = console.read()                                          # still the first one, status says why
    assert held.serial == certificate_facts(issued.cert)["serial_number"]
    assert held.facts["certificateUploadStatus"] == "Failed"


def test_token_refusals_name_the_cause(emu):
    cases = {
        "tenant": (dict(tenant_id="00000000-0000-0000-0000-000000000000"), 400, "tenant_id names no tenant"),
        "client": (dict(client_id="11111111-2222-3333-4444-555555555555"), 400, "no application with this client_id"),
        "secret": (dict(client_secret="not-the-secret-value-1234"), 401, "client secret is wrong"),
    }
    for name, (override, status, words) in cases.items():
        console = intune(emu, **override)
        with pytest.raises(ConsoleError) as err:
            console.read()
        assert err.value.step == "token" and err.value.kind == "auth" and err.value.status == status, name
        assert words in str(err.value) and "AADSTS" in str(err.value), name
        assert "not-the-secret-value-1234" not in str(err.value) and emu.api_key not in str(err.value), name
    assert graph(emu) == []                                        # no token, no Graph request
    assert [r["token_refused"] for r in tokens(emu)] == ["tenant", "client", "secret"]

    with pytest.raises(ConsoleError, match="tenant_id and client_secret are required") as err:
        connect("intune", None, client_id=emi.CLIENT_ID, api_key="an-api-key")
    assert err.value.kind == "input" and "does not use api_key" in str(err.value)
    with pytest.raises(ConsoleError, match="without a path"):
        intune(emu, token_url=emu.url + "/" + emi.TENANT_ID)
    with pytest.raises(ConsoleError, match="neither a tenant ID"):
        intune(emu, tenant_id="../../evil")


def test_expired_token_is_refreshed_once(emu, push_pki):
    console = intune(emu)
    console.upload(signed_for_intune(push_pki, emu).cert_pem(), None, APPLE_ID)
    emu.control.set_faults([{"expire_token": True, "method": "GET"}])
    assert console.read() is not None                              # 401, a new token, the GET again
    statuses = [(r["method"], r["status"]) for r in emu.control.requests()]
    assert statuses == [("POST", 200), ("PATCH", 200), ("GET", 401), ("POST", 200), ("GET", 200)]
    assert console.tokens_issued == 2

    emi.set_config(emu.control, token_lifetime=0)                  # every token is born expired
    emu.control.set_faults([{"expire_token": True, "method": "GET"}])
    with pytest.raises(ConsoleError) as err:
        console.read()
    assert err.value.status == 401 and err.value.kind == "auth" and "also a fresh one" in str(err.value)
    assert [r["status"] for r in graph(emu)][-2:] == [401, 401]    # one refresh, not a loop
    assert "Bearer ey" not in str(err.value) and "eyJ" not in repr(console.session.history)


def test_missing_permission_is_a_403_that_says_which(emu):
    emi.set_config(emu.control, roles=["DeviceManagementManagedDevices.Read.All"])
    console = intune(emu)
    for step in (console.read, console.csr):
        with pytest.raises(ConsoleError) as err:
            step()
        assert err.value.status == 403 and err.value.kind == "auth"
        assert "DeviceManagementServiceConfig.ReadWrite.All" in str(err.value) and "admin consent" in str(err.value)


def test_throttling_and_load_are_retried_within_bounds(emu, push_pki):
    waits = []
    console = intune(emu, waits=waits, backoff=2)
    issued = signed_for_intune(push_pki, emu)
    emu.control.set_faults([{"status": 429, "retry_after": "7", "method": "PATCH"},
                            {"status": 429, "method": "PATCH"},            # Graph sometimes omits Retry-After
                            {"status": 503, "method": "PATCH"},
                            {"status": 504, "method": "PATCH"}])           # PATCH sets a value: safe to repeat
    console.upload(issued.cert_pem(), None, APPLE_ID)
    assert waits == [7.0, 4.0, 8.0, 16.0]                # Retry-After, then backoff 2*2**n (jitter factor 1)
    assert [r["status"] for r in graph(emu, "PATCH")] == [429, 429, 503, 504, 200]
    assert len(emu.control.writes()) == 1
    first = graph(emu, "PATCH")[0]
    assert first["fault"]["status"] == 429

    emu.control.set_faults([{"status": 503, "method": "GET", "times": 10}])
    console = intune(emu, retries=2)
    with pytest.raises(ConsoleError) as err:
        console.read()
    assert err.value.status == 503 and err.value.kind == "throttled" and "after 3 attempts" in str(err.value)

    emu.control.set_faults([{"status": 429, "method": "POST", "retry_after": "1"},    # the token endpoint too
                            {"status": 504, "method": "POST"}])
    waits.clear()
    assert intune(emu, waits=waits).read().topic == issued.topic and waits == [1.0, 2.0]
    assert [r["status"] for r in tokens(emu)][-3:] == [429, 504, 200]


def test_malformed_and_unapplied_answers(emu, push_pki):
    console = intune(emu)
    emu.control.set_faults([{"malformed": True, "method": "GET"}])
    with pytest.raises(ConsoleError) as err:
        console.read()
    assert err.value.kind == "answer" and "not JSON" in str(err.value)
    issued = signed_for_intune(push_pki, emu)
    emu.control.set_faults([{"accept_not_apply": True, "method": "PATCH"}])
    answer = console.upload(issued.cert_pem(), None, APPLE_ID)       # the PATCH says yes...
    assert answer["topic"] == issued.topic
    assert console.read() is None and emu.control.writes() == []     # ...the read-back shows it did not


def test_a_serial_in_decimal_gives_the_same_answers(emu, push_pki):
    """Microsoft does not document the form of certificateSerialNumber (the emulator writes hex, as .NET
    does, unless told otherwise): in decimal, a first setup is verified, a re-run changes nothing, and
    the serial reported is the certificate's."""
    emu.control.set_held(dict(emu.control.held(), serial_format="decimal"))
    console = intune(emu)
    first = signed_for_intune(push_pki, emu)
    done = rotate(console, RotationSpec(cert=first.cert, apple_id=APPLE_ID, allow_new_topic=True))
    serial = str(first.cert.serial_number)
    assert done.uploaded and done.verified is True and done.after["serial_number"] == serial
    assert console.read().facts["certificateSerialNumber"] == serial          # what Graph answered
    again = rotate(console, RotationSpec(cert=first.cert, apple_id=APPLE_ID))
    assert not again.changed and again.verdict == "same" and again.before["serial_number"] == serial
    assert len(graph(emu, "PATCH")) == 1


def test_rotate_end_to_end_sends_no_key(emu, push_pki, tmp_path):
    """CSR from Intune -> signed "by Apple" -> rotate: first setup, re-run, renewal with backup,
    refusals with Intune unchanged; no private key ever crosses the wire."""
    console = intune(emu)
    console.csr()
    first = signed_for_intune(push_pki, emu)
    spec = dict(apple_id=APPLE_ID)
    with pytest.raises(RotationRefused, match="allow_new_topic"):
        rotate(console, RotationSpec(cert=first.cert, **spec))
    assert graph(emu, "PATCH") == []
    done = rotate(console, RotationSpec(cert=first.cert, key=first.key, allow_new_topic=True, **spec))
    assert done.changed and done.uploaded and done.verified is True
    assert any("key given is not sent" in w for w in done.warnings)
    again = rotate(console, RotationSpec(cert=first.cert, **spec))
    assert not again.changed and again.verdict == "same" and len(graph(emu, "PATCH")) == 1

    backups = tmp_path / "backups"
    backups.mkdir()
    renewal = push_pki.renewal(first, keep_key=True)
    renewed = rotate(console, RotationSpec(cert=renewal.cert, expected_topic=first.topic, backup_dir=str(backups),
                                           **spec))
    assert renewed.changed and renewed.verified and renewed.after["serial_number"] == str(renewal.cert.serial_number)
    assert len(list(backups.iterdir())) == 1

    held_before = emu.control.held()
    refusals = {
        "other account": (signed_for_intune(push_pki, emu), "differs from the topic the console holds"),
        "expired": (push_pki.expired(first.topic), "expired on"),
        "downgrade": (push_pki.push(first.topic, key=emi.tenant_key(emu.control), days=200), "downgrade"),
        "not Apple's": (push_pki.app_push(), "not an MDM push certificate"),
    }
    for name, (bad, words) in refusals.items():
        with pytest.raises(RotationRefused) as err:
            rotate(console, RotationSpec(cert=bad.cert, **spec))
        assert words in str(err.value), name
    with pytest.raises(ConsoleError, match="apple_id is required"):
        rotate(console, RotationSpec(cert=push_pki.renewal(renewal, keep_key=True, days=400).cert))
    assert len(graph(emu, "PATCH")) == 2 and emu.control.held() == held_before

    log = emu.control.requests()
    assert not any(r.get("key_in_body") for r in log)
    keys = [push_pki.keys[i] for i in range(3)]
    from cryptography.hazmat.primitives import serialization
    pems = [k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode() for k in keys]
    body_lines = [line for pem in pems for line in pem.splitlines() if "-----" not in line][:6]
    text = whole_log(emu) + json.dumps([done.as_dict(), renewed.as_dict(), renewed.diff()])
    assert not any(line in text for line in body_lines) and emu.api_key not in text
    for f in backups.iterdir():
        assert "PRIVATE" not in f.read_text()

"""The NanoMDM and MicroMDM adapters against their emulators (lab/consoles), over real HTTPS on
127.0.0.1 (no namespaces needed): read, upload, read back, the servers without a read route,
auth failures, throttling and the other faults, and no secret in any message or log.

Assertions on what the console holds and received are made on the emulator's own state and
request log, not only on the adapter's answer. Waits between retries go through an injected
sleep (recorded, not slept)."""
from __future__ import annotations

import json

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import ConsoleError, compare, connect
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import certificate_facts

KINDS = ("nanomdm", "micromdm")


@pytest.fixture(scope="module")
def pki(push_pki):
    return push_pki


def adapter(emu, api_key=None, **kw):
    kw.setdefault("sleep", kw.pop("waits", []).append)
    kw.setdefault("jitter", lambda: 1.0)
    kw.setdefault("trust_env", False)
    kw.setdefault("timeout", 5)
    return connect(emu.kind, emu.url, api_key=api_key or emu.api_key, ca_path=emu.ca_path, **kw)


def secrets_of(emu, *issued):
    out = [emu.api_key]
    for item in issued:
        out += [line for line in item.key_pem().decode().splitlines() if "-----" not in line][:3]
        out += [line for line in item.key_bytes(fmt="pkcs1").decode().splitlines() if "-----" not in line][:3]
    return out


def assert_no_secret(texts, secrets):
    blob = "\n".join(texts)
    for secret in secrets:
        assert secret not in blob


@pytest.mark.parametrize("emulator", KINDS, indirect=True)
def test_first_setup_renewal_and_read_back(emulator, pki):
    console = adapter(emulator)
    first = pki.push()
    assert console.read(first.topic) is None                      # holds nothing yet
    console.upload(first.cert_pem(), first.key_pem())
    held = console.read(first.topic)
    assert held.known and held.topic == first.topic
    assert compare(held, certificate_facts(first.cert), console.capabilities.identity)[0] == "same"
    renewal = pki.renewal(first)
    verdict, _why = compare(held, certificate_facts(renewal.cert), console.capabilities.identity)
    assert verdict == "different"
    console.upload(renewal.cert_pem(), renewal.key_pem())
    again = console.read(renewal.topic)
    assert compare(again, certificate_facts(renewal.cert), console.capabilities.identity)[0] == "same"
    store = emulator.control.held()
    stored = store[first.topic]["cert_pem"] if emulator.kind == "nanomdm" else store["cert_pem"]
    assert stored.strip() == renewal.cert_pem().decode().strip()
    writes = emulator.control.writes()
    assert len(writes) == 2 and all(w["method"] == "PUT" for w in writes)
    log_text = open(emulator.control.path("requests.jsonl")).read()
    assert_no_secret([log_text, repr(console.session.history)], secrets_of(emulator, first, renewal))


@pytest.mark.parametrize("emulator", [("nanomdm", "old"), ("micromdm", "old")], indirect=True)
def test_servers_without_a_read_route_say_they_cannot_tell(emulator, pki):
    console = adapter(emulator)
    cert = pki.push()
    before = console.read(cert.topic)
    assert before is not None and not before.known and "no" in before.reason and "route" in before.reason
    assert compare(before, certificate_facts(cert.cert), console.capabilities.identity)[0] == "unknown"
    console.upload(cert.cert_pem(), cert.key_pem())
    after = console.read(cert.topic)                              # still cannot tell, even after our upload
    assert not after.known and not console.capabilities.can_read
    assert compare(after, certificate_facts(cert.cert), console.capabilities.identity)[0] == "unknown"
    assert [w["method"] for w in emulator.control.writes()] == ["PUT"]   # the probing GET stored nothing


@pytest.mark.parametrize("emulator", KINDS, indirect=True)
def test_wrong_api_key_is_a_clear_error_and_nothing_is_written(emulator, pki):
    console = adapter(emulator, api_key="not-the-key-0123")
    cert = pki.push()
    messages = []
    for step in (lambda: console.read(cert.topic), lambda: console.upload(cert.cert_pem(), cert.key_pem())):
        with pytest.raises(ConsoleError) as err:
            step()
        assert err.value.kind == "auth" and err.value.status == 401
        assert "API key" in str(err.value) and emulator.kind in str(err.value).lower()
        messages.append(str(err.value))
    assert emulator.control.writes() == []
    assert {r["auth"] for r in emulator.control.requests()} == {"bad"}
    assert_no_secret(messages + [repr(console.session.history)], ["not-the-key-0123"] + secrets_of(emulator, cert))


@pytest.mark.parametrize("emulator", KINDS, indirect=True)
def test_throttling_is_retried_with_retry_after_and_backoff(emulator, pki):
    waits = []
    console = adapter(emulator, waits=waits, backoff=2)
    cert = pki.push()
    emulator.control.set_faults([{"status": 429, "retry_after": "7"}, {"status": 503}])
    console.upload(cert.cert_pem(), cert.key_pem())
    assert waits == [7.0, 4.0]                 # Retry-After honoured; then backoff 2*2**1 (jitter factor 1)
    log = emulator.control.requests()
    assert [r["status"] for r in log] == [429, 503, 200]
    assert [bool(r.get("stored")) for r in log] == [False, False, True]


@pytest.mark.parametrize("emulator", KINDS, indirect=True)
def test_persistent_throttling_gives_up_within_bounds(emulator, pki):
    waits = []
    console = adapter(emulator, waits=waits, retries=2, max_retry_after=30)
    emulator.control.set_faults([{"status": 429, "times": 10}])      # no Retry-After at all
    with pytest.raises(ConsoleError) as err:
        console.read(pki.push().topic)
    assert err.value.status == 429 and "after 3 attempts" in str(err.value)
    assert len(emulator.control.requests()) == 3 and len(waits) == 2


@pytest.mark.parametrize("emulator", KINDS, indirect=True)
def test_faults_stall_malformed_server_error_and_unapplied_upload(emulator, pki):
    cert = pki.push()
    console = adapter(emulator, timeout=0.3, retries=1)
    emulator.control.set_faults([{"stall": 2, "times": 2}])
    with pytest.raises(ConsoleError) as err:
        console.read(cert.topic)
    assert err.value.kind == "timeout" and "did not answer in time" in str(err.value)

    emulator.control.set_faults([{"malformed": True, "method": "GET"}])
    console = adapter(emulator)
    with pytest.raises(ConsoleError) as err:
        console.read(cert.topic)
    assert err.value.kind in ("answer", "json") and "not JSON" in str(err.value)

    emulator.control.set_faults([{"status": 500, "error": "storage is down", "method": "PUT"}])
    with pytest.raises(ConsoleError) as err:
        console.upload(cert.cert_pem(), cert.key_pem())
    assert err.value.status == 500 and "storage is down" in str(err.value)
    assert emulator.control.writes() == []

    emulator.control.set_faults([{"accept_not_apply": True}])
    console.upload(cert.cert_pem(), cert.key_pem())                  # the console says yes...
    held = console.read(cert.topic)                                   # ...the read-back shows it did not
    assert compare(held, certificate_facts(cert.cert), console.capabilities.identity)[0] == "different"
    assert emulator.control.writes() == [] and emulator.control.held() == {}


@pytest.mark.parametrize("emulator", KINDS, indirect=True)
def test_key_problems(emulator, pki):
    console = adapter(emulator)
    cert = pki.push()
    with pytest.raises(ConsoleError, match="needs the certificate's private key") as err:
        console.upload(cert.cert_pem(), None)
    assert err.value.kind == "input" and emulator.control.requests() == []
    if emulator.kind == "nanomdm":
        other = pki.push()
        with pytest.raises(ConsoleError, match="does not match") as err:   # the server checks the pair
            console.upload(cert.cert_pem(), other.key_pem())
        assert err.value.status == 400
        assert_no_secret([str(err.value)], secrets_of(emulator, other))
    else:
        # MicroMDM stores whatever it gets and reads keys as PKCS#1: the adapter converts a PKCS#8 key
        console.upload(cert.cert_pem(), cert.key_pem())
        assert "BEGIN RSA PRIVATE KEY" in emulator.control.held()["key_pem"]
        assert console.read().fingerprint_sha256 == certificate_facts(cert.cert)["fingerprint_sha256"]
    assert emulator.control.writes() == ([] if emulator.kind == "nanomdm" else emulator.control.writes())


@pytest.mark.parametrize("emulator", ["nanomdm"], indirect=True)
def test_nanomdm_needs_a_topic_to_read_and_keeps_one_per_topic(emulator, pki):
    console = adapter(emulator)
    held = console.read(None)
    assert not held.known and "topic" in held.reason and emulator.control.requests() == []
    a, b = pki.push(), pki.other_account()
    console.upload(a.cert_pem(), a.key_pem())
    console.upload(b.cert_pem(), b.key_pem())
    assert set(emulator.control.held()) == {a.topic, b.topic}          # a new topic adds, it does not replace
    assert console.read(a.topic).topic == a.topic and console.read(b.topic).topic == b.topic
    assert json.dumps(emulator.control.requests()).count('"stored"') == 2

"""The provider-API layer against the lab APNs emulator (lab/apns.py): every verdict produced for real.

Probes run from the corp namespace (where modules run), over real HTTP/2 and TLS
with the push certificate as client certificate, against the emulator on the
addresses the lab DNS gives api.push.apple.com / api.sandbox.push.apple.com.
Client certificates come from the lab's push PKI (the CAs the emulator trusts).
Each test uses a certificate (so a topic) of its own: faults are keyed by topic,
so tests do not depend on each other or on their order; each pytest-xdist
worker has its own lab.
"""
from __future__ import annotations

import pytest

from lab import apns
from lab.listeners import BLACKHOLE_ADDRESS, FAULT_ADDRESSES, start_fault
from lab.pki import ApplePushPKI

pytestmark = pytest.mark.lab

USERTRUST = "USERTrust RSA Certification Authority"
PROD, SANDBOX = "api.push.apple.com", "api.sandbox.push.apple.com"


@pytest.fixture(scope="module")
def push_pki(lab):
    return apns.lab_push_pki(lab)


@pytest.fixture(scope="module")
def probe(lab, in_ns):
    def run(cert, host=PROD, port=443, topic="cert", timeout=3.0, **kw):
        kwargs = dict(cert_pem=(cert.cert_pem() + cert.chain_pem()).decode(), key_pem=cert.key_pem().decode(),
                      topic=cert.topic if topic == "cert" else topic, timeout=timeout, ca_path=lab.ca_path, **kw)
        return in_ns("corp", "import json\n"
                     "from ansible_collections.mdmops.apple.plugins.module_utils._apns._provider import provider_probe\n"
                     "kw = %r\n"
                     "kw['cert_pem'] = kw['cert_pem'].encode(); kw['key_pem'] = kw['key_pem'].encode()\n"
                     "print(json.dumps(provider_probe(%r, %r, **kw)))" % (kwargs, host, port))
    return run


def requests_seen(lab, topic):
    with open(lab.path("logs", "apns.log")) as f:
        return sum(1 for line in f if "topic=%s " % topic in line)


@pytest.mark.parametrize("host,port", [(PROD, 443), (PROD, 2197), (SANDBOX, 443), (SANDBOX, 2197)])
def test_accepted_is_bad_device_token(lab, push_pki, probe, host, port):
    cert = push_pki.push()
    res = probe(cert, host, port)
    assert res["status"] == "ok", res["detail"]
    assert (res["http_status"], res["reason"]) == (400, "BadDeviceToken")
    assert res["apns_id"] and res["http_version"] == "HTTP/2" and res["root"] == USERTRUST
    assert res["remedy"] == "" and "accepted" in res["detail"]
    assert res["environment"] == ("sandbox" if host == SANDBOX else "production")
    assert requests_seen(lab, cert.topic) == 1       # one request per endpoint, no retry


def test_certificate_from_a_pkcs12_file(lab, push_pki, in_ns, tmp_path):
    cert = push_pki.push()
    path = tmp_path / "push.p12"
    path.write_bytes(cert.pkcs12(b"secret"))
    res = in_ns("corp", "import json\n"
                "from ansible_collections.mdmops.apple.plugins.module_utils._apns import _provider as p\n"
                "from ansible_collections.mdmops.apple.plugins.module_utils._push._material import CertificateInput\n"
                "c, k, topic, _na = p.client_material(CertificateInput(path=%r, certificate_password='secret'))\n"
                "print(json.dumps(p.provider_probe(%r, 443, cert_pem=c, key_pem=k, topic=topic, timeout=3,"
                " ca_path=%r)))" % (str(path), PROD, lab.ca_path))
    assert res["status"] == "ok" and res["reason"] == "BadDeviceToken" and res["topic"] == cert.topic


def test_sandbox_certificate_against_production(push_pki, probe):
    cert = apns.push_certificate(push_pki, environment="sandbox")
    res = probe(cert, PROD, 443)
    assert res["status"] == "wrong_environment", res["detail"]
    assert (res["http_status"], res["reason"]) == (403, "BadCertificateEnvironment")
    assert "production" in res["remedy"]
    assert probe(cert, SANDBOX, 443)["status"] == "ok"


def test_production_certificate_against_sandbox(push_pki, probe):
    cert = apns.push_certificate(push_pki, environment="production")
    assert probe(cert, SANDBOX, 2197)["reason"] == "BadCertificateEnvironment"
    assert probe(cert, PROD, 2197)["status"] == "ok"


@pytest.mark.parametrize("topic,reason", [
    ("com.apple.mgmt.External.00000000-0000-0000-0000-000000000000", "TopicDisallowed"),
    ("not a topic!", "BadTopic"),
])
def test_topic_disallowed(push_pki, probe, topic, reason):
    res = probe(push_pki.push(), PROD, 443, topic=topic)
    assert res["status"] == "topic_disallowed", res["detail"]
    assert (res["http_status"], res["reason"]) == (400, reason) and topic in res["remedy"]


def test_expired_client_certificate_is_a_tls_alert(push_pki, probe):
    res = probe(push_pki.expired(), PROD, 443)
    assert res["status"] == "certificate_rejected", res["detail"]
    assert res["http_status"] is None and "certificate_expired" in res["detail"]
    assert "Apple Push Certificates Portal" in res["remedy"]


def test_certificate_of_a_ca_apns_does_not_accept(push_pki, probe):
    res = probe(push_pki.not_apple(), PROD, 443)
    assert res["status"] == "certificate_rejected", res["detail"]
    assert (res["http_status"], res["reason"]) == (403, "BadCertificate")


def test_certificate_of_an_unknown_ca_is_a_tls_alert(probe):
    res = probe(ApplePushPKI().push(), SANDBOX, 443)
    assert res["status"] == "certificate_rejected" and "unknown_ca" in res["detail"]


@pytest.mark.parametrize("fault,http_status", [
    ({"status": 500, "reason": "InternalServerError"}, 500),
    ({"status": 503, "reason": "ServiceUnavailable"}, 503),
])
def test_apns_server_errors(lab, push_pki, probe, fault, http_status):
    cert = push_pki.push()
    apns.set_fault(lab, cert.topic, fault)
    try:
        res = probe(cert, PROD, 443)
    finally:
        apns.set_fault(lab, cert.topic, None)
    assert res["status"] == "apns_error", res["detail"]
    assert (res["http_status"], res["reason"]) == (http_status, fault["reason"]) and "system-status" in res["remedy"]


def test_stalled_answer_is_a_timeout(lab, push_pki, probe):
    cert = push_pki.push()
    apns.set_fault(lab, cert.topic, "stall")
    try:
        res = probe(cert, PROD, 443, timeout=0.5)
    finally:
        apns.set_fault(lab, cert.topic, None)
    assert res["status"] == "timeout", res["detail"]
    assert res["http_status"] is None and res["remedy"]
    assert requests_seen(lab, cert.topic) == 1


@pytest.fixture
def strict_emulator(lab, push_pki):
    """The emulator reconfigured (no restart) with a revoked certificate and a rate limit of one request
    per token and topic (other tests use a topic once per environment, so they do not notice)."""
    revoked = push_pki.push()
    apns.configure(lab, revoked=[revoked.cert.serial_number], rate_limit={"requests": 1, "seconds": 600})
    yield revoked
    apns.configure(lab, revoked=[], rate_limit=apns.RATE_LIMIT)


def test_revoked_and_throttled(push_pki, probe, strict_emulator):
    res = probe(strict_emulator, PROD, 443)
    assert res["status"] == "certificate_rejected" and "certificate_revoked" in res["detail"], res["detail"]
    cert = push_pki.push()
    assert probe(cert, PROD, 443)["status"] == "ok"
    res = probe(cert, PROD, 443)             # a second run within the window
    assert res["status"] == "throttled", res["detail"]
    assert (res["http_status"], res["reason"]) == (429, "TooManyRequests")


def test_refused_and_blackholed(lab, push_pki, probe):
    cert = push_pki.push()
    res = probe(cert, PROD, 5224, address=FAULT_ADDRESSES["plain"])
    assert res["status"] == "refused" and "open TCP 5224" in res["remedy"]
    res = probe(cert, PROD, 443, address=BLACKHOLE_ADDRESS, timeout=0.5)
    assert res["status"] == "timeout"


def test_intercepting_middlebox_is_intercepted(lab, push_pki, probe):
    # the server chain fails validation; read once more, it ends at the inspection CA: intercepted, named
    address = start_fault(lab, "intercept", ports=(443,))
    try:
        res = probe(push_pki.push(), PROD, 443, address=address)
    finally:
        lab.stop("fault-intercept")
    assert res["status"] == "intercepted" and "server certificate not trusted" in res["detail"]
    assert "Corp SSL Inspection CA (lab)" in res["remedy"] and res["http_status"] is None


@pytest.mark.parametrize("host", [PROD, SANDBOX])
def test_ipv6_address(lab, push_pki, probe, host):
    res = probe(push_pki.push(), host, 2197, address=lab.resolve(host)[1])
    assert res["status"] == "ok" and res["reason"] == "BadDeviceToken", res["detail"]

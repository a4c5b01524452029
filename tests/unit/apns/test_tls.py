"""The TLS layer's pure parts: endpoint profiles, the DER reader, the verdict (no network)."""
from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ansible_collections.mdmops.apple.plugins.module_utils._apns import _tls
from lab import pki as labpki


@pytest.fixture(scope="module")
def lab_pki():
    return labpki.AppleLabPKI()


def _cn(name):
    return name.get_attributes_for_oid(labpki.NameOID.COMMON_NAME)[0].value


def der(issued):
    return issued.cert.public_bytes(Encoding.DER)


def parsed_chain(*issued):
    return [_tls.parse_der(der(i)) for i in issued]


@pytest.mark.parametrize("host,sni,alpn,push", [
    ("1-courier.push.apple.com", "courier.push.apple.com", ["apns-security-v3"], True),
    ("37-courier.push.apple.com", "courier.push.apple.com", ["apns-security-v3"], True),
    ("courier.push.apple.com", "courier.push.apple.com", ["apns-security-v3"], True),
    ("API.push.apple.com", "api.push.apple.com", ["h2"], True),
    ("api.sandbox.push.apple.com", "api.sandbox.push.apple.com", ["h2"], True),
    ("gdmf.apple.com", "gdmf.apple.com", ["h2", "http/1.1"], False),
    ("x.courier.push.apple.com.evil.example", "x.courier.push.apple.com.evil.example", ["h2", "http/1.1"], False),
])
def test_endpoint_profile(host, sni, alpn, push):
    prof = _tls.endpoint_profile(host, 443)
    assert (prof["sni"], prof["alpn"], prof["push"]) == (sni, alpn, push)


def test_tls_ports():
    assert _tls.is_tls_port(5223) and _tls.is_tls_port(2197) and _tls.is_tls_port(443)
    assert not _tls.is_tls_port(80) and not _tls.is_tls_port(443, "udp")


def test_der_reader_agrees_with_cryptography(lab_pki):
    leaf = lab_pki.server(["courier.push.apple.com", "*.push.apple.com"])
    for issued in (leaf, lab_pki.apple_server, lab_pki.usertrust, lab_pki.intercept):
        info = _tls.parse_der(der(issued))
        cert = issued.cert
        assert info["subject_cn"] == _cn(cert.subject)
        assert info["issuer_cn"] == _cn(cert.issuer)
        assert info["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert info["self_signed"] == (cert.subject == cert.issuer)
        assert info["parse_error"] is None
    assert _tls.parse_der(der(leaf))["sha256"] == leaf.cert.fingerprint(labpki.hashes.SHA256()).hex()


def test_der_reader_utf8_and_generalized_time(lab_pki):
    far = labpki.issue(labpki.name("Zürich Prüf-CA", "Ex, Corp"), ca=True,
                       not_before=dt.datetime(2049, 1, 1, tzinfo=dt.timezone.utc),
                       not_after=dt.datetime(2051, 6, 1, 12, 0, 0, tzinfo=dt.timezone.utc))
    info = _tls.parse_der(der(far))
    assert info["subject_cn"] == "Zürich Prüf-CA"
    assert info["not_before"] == "2049-01-01T00:00:00Z" and info["not_after"] == "2051-06-01T12:00:00Z"
    assert "O=Ex\\, Corp" in info["subject"]


@pytest.mark.parametrize("blob", [b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x03\x30\x01\x00",
                                  b"garbage" * 50])
def test_der_reader_never_raises(blob):
    info = _tls.parse_der(blob)
    assert info["parse_error"] and len(info["sha256"]) == 64


def hs(chain, alpn="h2", offered=("h2",), verified=True, **kw):
    rec = {"tcp_status": "ok", "tls_error": None, "tls_version": "TLSv1.3", "alpn": alpn,
           "alpn_offered": list(offered), "chain": chain, "chain_source": "_ssl.get_unverified_chain",
           "verified": verified, "verify_error": None if verified else "self-signed certificate"}
    rec.update(kw)
    return rec


def test_ok_when_chain_ends_at_usertrust(lab_pki):
    chain = parsed_chain(lab_pki.server(["api.push.apple.com"]), lab_pki.apple_server)
    status, detail, remedy = _tls.classify(hs(chain), "api.push.apple.com", 443, alpn_required=True)
    assert status == "ok" and "USERTrust RSA Certification Authority" in detail and remedy == ""


def test_ok_with_the_older_root_or_a_cross_sign(lab_pki):
    aaa = labpki.make_ca("AAA Certificate Services", "Comodo CA Limited")
    cross = labpki.issue(lab_pki.usertrust.cert.subject, aaa, key=lab_pki.usertrust.key, ca=True)
    chain = parsed_chain(lab_pki.server(["x"]), lab_pki.apple_server, cross)
    assert _tls.chain_root(chain)[0] == "AAA Certificate Services"
    assert _tls.classify(hs(chain), "api.push.apple.com", 443)[0] == "ok"
    assert _tls.classify(hs(chain), "api.push.apple.com", 443, expected_roots=["USERTrust RSA Certification Authority"])[0] \
        == "intercepted"


def test_intercepted_names_the_issuer_and_says_so_unmistakably(lab_pki):
    fake = labpki.tls_server(lab_pki.intercept, ["courier.push.apple.com"])
    chain = parsed_chain(fake)
    status, detail, remedy = _tls.classify(hs(chain, alpn="h2", offered=["apns-security-v3"], verified=False),
                                           "1-courier.push.apple.com", 5223, alpn_required=True)
    assert status == "intercepted"
    issuer = lab_pki.intercept.cert.subject.get_attributes_for_oid(labpki.NameOID.COMMON_NAME)[0].value
    assert detail.startswith("HTTPS inspection on 1-courier.push.apple.com:5223")
    assert issuer in detail and issuer in remedy
    assert "Apple requires these hosts not be inspected; exempt them from TLS inspection" in detail
    assert "ALPN 'h2'" in detail            # the ALPN problem is mentioned, interception stays the headline


def test_expected_roots_match_cn_or_full_dn_case_insensitively(lab_pki):
    chain = parsed_chain(lab_pki.server(["x"]), lab_pki.apple_server)
    dn = chain[-1]["issuer"]
    for roots in (["usertrust rsa certification authority"], [dn]):
        assert _tls.classify(hs(chain), "api.push.apple.com", 443, expected_roots=roots)[0] == "ok"
    assert _tls.classify(hs(chain), "api.push.apple.com", 443, expected_roots=["Other Root"])[0] == "intercepted"
    # interception is only judged where asked (push hosts); elsewhere the chain is just reported
    assert _tls.classify(hs(chain), "gdmf.apple.com", 443, expected_roots=["Other Root"], check_roots=False)[0] == "ok"


def test_leaf_only_never_claims_interception(lab_pki):
    chain = parsed_chain(lab_pki.server(["x"]))
    rec = hs(chain, chain_source="leaf_only", verified=False)
    assert _tls.classify(rec, "api.push.apple.com", 443, expected_roots=["Other Root"])[0] == "untrusted"


def test_wrong_or_missing_alpn_is_tls_failed(lab_pki):
    chain = parsed_chain(lab_pki.server(["x"]), lab_pki.apple_server)
    for alpn in (None, "http/1.1"):
        status, detail, remedy = _tls.classify(hs(chain, alpn=alpn, offered=["apns-security-v3"]),
                                               "1-courier.push.apple.com", 443, alpn_required=True)
        assert status == "tls_failed" and "apns-security-v3" in detail and remedy
    # for other hosts no ALPN is fine (HTTP/1.1 servers without ALPN)
    assert _tls.classify(hs(chain, alpn=None, offered=["h2", "http/1.1"]), "gdmf.apple.com", 443,
                         check_roots=False)[0] == "ok"


def test_untrusted_when_validation_fails_but_names_look_right(lab_pki):
    chain = parsed_chain(lab_pki.server(["x"]), lab_pki.apple_server)
    status, detail, remedy = _tls.classify(hs(chain, verified=False), "api.push.apple.com", 443,
                                           anchors="'/etc/ca.pem'")
    assert status == "untrusted" and "/etc/ca.pem" in detail and "self-signed" in detail and remedy


@pytest.mark.parametrize("rec,status,word", [
    ({"tcp_status": "refused", "tcp_error": "[Errno 111] Connection refused"}, "refused", "open TCP 5223"),
    ({"tcp_status": "timeout", "tcp_error": "timed out"}, "timeout", "silently drops"),
    ({"tcp_status": "unreachable", "tcp_error": "No route"}, "unreachable", "route"),
    ({"tcp_status": "ok", "tls_error": "no TLS answer within 1s", "tls_timeout": True}, "timeout", "drops"),
    ({"tcp_status": "ok", "tls_error": "TLSV1_ALERT_NO_APPLICATION_PROTOCOL (SSL)"}, "tls_failed", "untouched"),
])
def test_tcp_and_handshake_failures(rec, status, word):
    got, detail, remedy = _tls.classify(rec, "1-courier.push.apple.com", 5223)
    assert got == status and word in remedy and "1-courier.push.apple.com" in detail
    assert got in _tls.STATUSES


def test_every_status_has_a_one_line_remedy():
    assert set(_tls.REMEDIES) == set(_tls.STATUSES)
    assert all("\n" not in r for r in _tls.REMEDIES.values())

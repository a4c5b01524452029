"""The pure parts of the ATS check: URL parsing, leaf inspection (cryptography and the DER
fallback agree), subjectAltName matching, and the verdict from handshake facts."""
from __future__ import annotations

import datetime as dt
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.mdmops.apple.plugins.module_utils._apns import _ats
from lab import ats as labats
from lab import pki as labpki


# ---------------------------------------------------------------- URLs
@pytest.mark.parametrize("url,want", [
    ("https://mdm.example.com/mdm/checkin", ("mdm.example.com", 443, "/mdm/checkin")),
    ("HTTPS://MDM.Example.com:8443", ("mdm.example.com", 8443, "/")),
    ("https://mdm.example.com./enroll?id=1&b=2", ("mdm.example.com", 443, "/enroll?id=1&b=2")),
    ("https://[2001:db8::1]:9443/x", ("2001:db8::1", 9443, "/x")),
    ("  https://198.51.100.210/  ", ("198.51.100.210", 443, "/")),
])
def test_parse_url(url, want):
    assert _ats.parse_url(url) == want


@pytest.mark.parametrize("url,words", [
    ("http://mdm.example.com/", "https only"),
    ("ftp://mdm.example.com/", "https only"),
    ("mdm.example.com/mdm", "https only"),
    ("https:///mdm", "no host"),
    ("https://", "no host"),
    ("https://user:pw@mdm.example.com/", "credentials"),
    ("https://mdm.example.com:99999/", "not a valid URL"),
    ("https://mdm.example.com:0/", "port 0"),
    ("", "give an https URL"),
    (None, "give an https URL"),
    (443, "give an https URL"),
])
def test_bad_urls_say_what_to_write(url, words):
    with pytest.raises(ValueError) as err:
        _ats.parse_url(url)
    assert words in str(err.value)
    with pytest.raises(ValueError):
        _ats.ats_check(url)


# ---------------------------------------------------------------- leaf inspection
@pytest.fixture(scope="module")
def ca():
    return labpki.AppleLabPKI().apple_server


def _leaf(ca, key=None, names=("mdm.example.com", "198.51.100.210")):
    return labpki.issue(labpki.name(names[0]), ca, key=key, san=list(names), eku=[ExtendedKeyUsageOID.SERVER_AUTH])


def _der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def _pss_leaf(ca):
    """An RSASSA-PSS (SHA-384) signed leaf: cryptography signs PSS through rsa_padding."""
    key = labpki.rsa_key()
    builder = (x509.CertificateBuilder().subject_name(labpki.name("pss.example.com"))
               .issuer_name(ca.cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(labpki.now()).not_valid_after(labpki.now() + dt.timedelta(days=30))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("pss.example.com")]), critical=False))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=padding.PSS.DIGEST_LENGTH)
    return builder.sign(ca.key, hashes.SHA384(), rsa_padding=pss)


@pytest.mark.parametrize("kind,want", [
    ("rsa2048", ("sha256", "rsa", 2048)),
    ("rsa1024", ("sha256", "rsa", 1024)),
    ("sha1", ("sha1", "rsa", 2048)),
    ("p256", ("sha256", "ec", 256)),
    ("p384", ("sha256", "ec", 384)),
    ("ed25519", ("sha256", "ed25519", 256)),
    ("pss", ("sha384", "rsa", 2048)),
])
def test_both_parsers_agree(ca, kind, want):
    if kind == "pss":
        cert = _pss_leaf(ca)
    else:
        key = {"rsa2048": None, "rsa1024": labpki.rsa_key(1024), "sha1": None,
               "p256": labpki.ec_key(), "p384": ec.generate_private_key(ec.SECP384R1()),
               "ed25519": ed25519.Ed25519PrivateKey.generate()}[kind]
        issued = _leaf(ca, key)
        cert = labats.resign(issued.cert, ca.key) if kind == "sha1" else issued.cert
    der = _der(cert)
    with_crypto = _ats.inspect_leaf(der)
    stdlib = _ats.inspect_leaf(der, prefer_cryptography=False)
    assert with_crypto["parser"] == "cryptography" and stdlib["parser"] == "der"
    for info in (with_crypto, stdlib):
        assert (info["signature_hash"], info["key_type"], info["key_bits"]) == want, info
        assert info["parse_error"] is None
    assert with_crypto["san_dns"] == stdlib["san_dns"]
    assert with_crypto["san_ip"] == stdlib["san_ip"]


def test_resign_makes_a_valid_sha1_signature(ca):
    issued = _leaf(ca)
    weak = labats.resign(issued.cert, ca.key)
    assert weak.signature_hash_algorithm.name == "sha1"
    assert weak.subject == issued.cert.subject and weak.serial_number == issued.cert.serial_number
    ca.key.public_key().verify(weak.signature, weak.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1())


def test_without_cryptography_the_der_reader_is_used(ca, monkeypatch):
    der = _der(_leaf(ca).cert)
    for mod in [m for m in sys.modules if m == "cryptography" or m.startswith("cryptography.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "cryptography", None)     # import cryptography -> ImportError
    info = _ats.inspect_leaf(der)
    assert info["parser"] == "der" and info["key_bits"] == 2048 and info["signature_hash"] == "sha256"


def test_unreadable_certificate_never_raises():
    info = _ats.inspect_leaf(b"\x30\x03\x02\x01\x01")
    assert info["parser"] is None and "der" in info["parse_error"]


@pytest.mark.parametrize("host,dns,ips,ok", [
    ("mdm.example.com", ["mdm.example.com"], [], True),
    ("MDM.example.com.", ["mdm.example.com"], [], True),
    ("a.example.com", ["*.example.com"], [], True),
    ("a.b.example.com", ["*.example.com"], [], False),
    ("example.com", ["*.example.com"], [], False),
    ("x.com", ["*.com"], [], False),
    ("mdm.example.com", [], [], False),
    ("198.51.100.210", ["198.51.100.210"], [], False),
    ("198.51.100.210", [], ["198.51.100.210"], True),
    ("2001:db8:100::210", [], ["2001:db8:100:0::210"], True),
])
def test_hostname_matches(host, dns, ips, ok):
    assert _ats.hostname_matches(host, dns, ips) is ok


# ---------------------------------------------------------------- verdicts
NOW = dt.datetime(2026, 6, 1)
GOOD_LEAF = {"signature_hash": "sha256", "key_type": "rsa", "key_bits": 2048, "san_dns": ["mdm.example.com"],
             "san_ip": [], "parser": "der", "parse_error": None}
CHAIN = [{"subject_cn": "mdm.example.com", "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z"},
         {"subject_cn": "CA", "not_before": "2020-01-01T00:00:00Z", "not_after": "2030-01-01T00:00:00Z"}]
OK = {"ok": True, "tls_version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256", "verify_error": None}
FAIL = {"ok": False, "error": "TLSV1_ALERT_PROTOCOL_VERSION (SSL)"}


def hs(**kw):
    base = {"ats": OK, "tls12_any": None, "any_version": None, "leaf": dict(GOOD_LEAF), "chain": CHAIN,
            "http_status": 200, "http_error": None}
    base.update(kw)
    return base


def judge(**kw):
    checks, failures = _ats.evaluate("mdm.example.com", 443, hs(**kw), now=NOW)
    status, remedy = _ats.verdict("mdm.example.com", 443, checks, failures)
    return status, [f["requirement"] for f in failures], checks, remedy


def test_all_good():
    status, failed, checks, remedy = judge()
    assert status == "ok" and failed == [] and remedy == ""
    assert set(checks.values()) == {"ok"} and list(checks) == list(_ats.REQUIREMENTS)


def test_everything_wrong_at_once_is_reported_in_order():
    leaf = dict(GOOD_LEAF, signature_hash="sha1", key_bits=1024, san_dns=["other.example.com"])
    chain = [dict(CHAIN[0], not_after="2026-02-01T00:00:00Z"), CHAIN[1]]
    status, failed, _checks, remedy = judge(ats=FAIL, tls12_any=dict(OK, verify_error="unable to get issuer"),
                                            leaf=leaf, chain=chain)
    assert failed == ["forward_secrecy", "signature_hash", "key_size", "trust", "hostname", "expiry"]
    assert status == "ats_failed" and remedy.startswith("MDM server mdm.example.com:443: ") and "\n" not in remedy


def test_tls_version_fails_and_forward_secrecy_is_unknown():
    status, failed, checks, _remedy = judge(ats=FAIL, tls12_any=FAIL,
                                            any_version=dict(OK, tls_version="TLSv1.1"))
    assert (status, failed) == ("ats_failed", ["tls_version"]) and checks["forward_secrecy"] == "unknown"


def test_no_handshake_at_all_is_tls_failed():
    status, failed, checks, _remedy = judge(ats=FAIL, tls12_any=FAIL, any_version=FAIL, leaf=None, chain=[],
                                            http_status=None)
    assert (status, failed) == ("tls_failed", ["https"])
    assert all(checks[r] == "unknown" for r in _ats.REQUIREMENTS if r != "https")


def test_trust_only_is_untrusted():
    status, failed, _c, remedy = judge(ats=dict(OK, verify_error="self-signed certificate"))
    assert (status, failed) == ("untrusted", ["trust"]) and "profile" in remedy


@pytest.mark.parametrize("not_before,not_after,words", [
    ("2026-07-01T00:00:00Z", "2027-07-01T00:00:00Z", "not valid before"),
    ("2025-01-01T00:00:00Z", "2026-05-31T23:59:59Z", "expired on"),
])
def test_expiry_both_ways(not_before, not_after, words):
    chain = [dict(CHAIN[0], not_before=not_before, not_after=not_after), CHAIN[1]]
    checks, failures = _ats.evaluate("mdm.example.com", 443, hs(chain=chain), now=NOW)
    assert [f["requirement"] for f in failures] == ["expiry"] and words in failures[0]["detail"]


def test_expired_intermediate_counts():
    chain = [CHAIN[0], dict(CHAIN[1], not_after="2026-01-01T00:00:00Z")]
    _checks, failures = _ats.evaluate("mdm.example.com", 443, hs(chain=chain), now=NOW)
    assert "'CA' expired" in failures[0]["detail"]


@pytest.mark.parametrize("leaf,failed,unknown", [
    ({"key_type": "ec", "key_bits": 224}, ["key_size"], []),
    ({"key_type": "dsa", "key_bits": 2048}, ["key_size"], []),
    ({"key_type": "ec", "key_bits": None}, [], ["key_size"]),
    ({"signature_hash": "md5"}, ["signature_hash"], []),
    ({"signature_hash": "sha512"}, [], []),
    ({"signature_hash": "ed25519", "key_type": "ed25519", "key_bits": 256}, [], []),
    ({"signature_hash": "unknown (1.2.3.4)"}, [], ["signature_hash"]),
    ({"san_dns": []}, ["hostname"], []),
    ({"parser": None, "parse_error": "bad"}, [], ["signature_hash", "key_size", "hostname"]),
])
def test_leaf_judgements(leaf, failed, unknown):
    _status, got, checks, _remedy = judge(leaf=dict(GOOD_LEAF, **leaf))
    assert got == failed
    assert [r for r in ("signature_hash", "key_size", "hostname") if checks[r] == "unknown"] == unknown


def test_no_http_answer_fails_https_only():
    status, failed, checks, _r = judge(http_status=None, http_error="the server closed the connection")
    assert failed == ["https"] and checks["trust"] == "ok" and status == "tls_failed"


def test_every_ats_cipher_is_known_to_this_openssl():
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers(":".join(_ats.ATS_CIPHERS) + ":@SECLEVEL=0")
    names = {c["name"] for c in ctx.get_ciphers()}
    assert set(_ats.ATS_CIPHERS) <= names
    assert all(n.startswith(("ECDHE-", "TLS_")) for n in names)


@pytest.mark.parametrize("content", [None, b"not a certificate\n", b""])
def test_unusable_ca_path_is_a_value_error_before_any_connection(tmp_path, content):
    path = tmp_path / "anchors.pem"
    if content is not None:
        path.write_bytes(content)

    def connect(address, port, timeout):
        raise AssertionError("nothing may be sent with unusable trust anchors")
    with pytest.raises(ValueError) as err:
        _ats.ats_check("https://mdm.example.com/", ca_path=str(path), connect=connect)
    assert "ca_path" in str(err.value) and "PEM file" in str(err.value)

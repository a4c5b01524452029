"""ats_check over real TLS without any network: each lab ATS server profile (lab/ats.py), served
on the other end of a socketpair handed in through ``connect``.  No root, no lab, no port.

The lab test (tests/integration/apns/test_ats_lab.py) runs the same profiles over the lab network."""
from __future__ import annotations

import json
import socket
import ssl
import threading

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._apns import _ats
from lab import ats as labats
from lab import pki as labpki


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    """{profile: server context}, certificates issued as the lab issues them; and the CA file."""
    base = tmp_path_factory.mktemp("ats")
    lab_pki = labpki.AppleLabPKI()
    lab_pki.apple_server.write(str(base / "apple_server.pem"), str(base / "apple_server.key"))
    (base / "usertrust.pem").write_bytes(lab_pki.usertrust.cert_pem())
    paths = labats.write_profiles(str(base), str(base / "out"))
    contexts = {p: labats.server_context(p, *paths[p]) for p in labats.PROFILES}
    return contexts, str(base / "usertrust.pem"), paths


def _serve(sock, ctx, seen):
    try:
        with ctx.wrap_socket(sock, server_side=True) as tls:
            seen.append((tls.version(), tls.cipher()[0]))
            data = tls.recv(4096)
            if data:
                body = json.dumps({"ok": True}).encode()
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                            % (len(body), body))
    except (ssl.SSLError, OSError):
        seen.append(None)


def connector(ctx, calls, seen):
    def connect(address, port, timeout):
        calls.append((address, port))
        client, server = socket.socketpair()
        threading.Thread(target=_serve, args=(server, ctx, seen), daemon=True).start()
        return client
    return connect


def check(profiles, profile, url=None, ca="lab", **kw):
    contexts, ca_file, _paths = profiles
    calls, seen = [], []
    url = url or "https://%s/mdm/checkin" % labats.HOSTS[profile]
    res = _ats.ats_check(url, timeout=5, ca_path=ca_file if ca == "lab" else ca,
                         connect=connector(contexts[profile], calls, seen), **kw)
    return res, calls, seen


@pytest.mark.parametrize("profile", labats.PROFILES)
def test_each_profile_gets_its_verdict(profiles, profile):
    status, failed = labats.EXPECTED[profile]
    res, calls, _seen = check(profiles, profile)
    assert res["status"] == status, res["detail"]
    assert [f["requirement"] for f in res["failures"]] == failed, res["failures"]
    assert set(res["checks"]) == set(_ats.REQUIREMENTS)
    for req in failed:
        assert res["checks"][req] == "failed"
    assert all(f["detail"] and f["remedy"] for f in res["failures"])
    # the certificate is read whatever failed, and the URL answered HTTP
    assert res["key_type"] in ("rsa", "ec") and res["key_bits"] and res["signature_hash"]
    assert res["http_status"] == 200 and res["checks"]["https"] == "ok"
    assert res["host"] == labats.HOSTS[profile] and res["port"] == 443
    assert (res["remedy"] == "") == (status == "ok")
    assert res["latency_ms"] >= 0 and calls and all(c == (labats.HOSTS[profile], 443) for c in calls)


def test_good_is_one_connection_with_an_ats_suite(profiles):
    res, calls, seen = check(profiles, "good")
    assert len(calls) == 1 and res["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert res["signature_hash"] == "sha256" and res["key_type"] == "rsa" and res["key_bits"] == 2048
    assert all(v == "ok" for v in res["checks"].values())
    assert "meets App Transport Security" in res["detail"]


def test_ec_key_is_judged_as_ecc(profiles):
    res, _calls, _seen = check(profiles, "ec")
    assert res["status"] == "ok" and res["key_type"] == "ec" and res["key_bits"] == 256


@pytest.mark.skipif("tls11" not in labats.PROFILES, reason="this OpenSSL cannot serve TLS 1.1")
def test_tls11_names_the_version_the_server_speaks(profiles):
    res, calls, _seen = check(profiles, "tls11")
    fail = res["failures"][0]
    assert fail["requirement"] == "tls_version" and "TLSv1.1" in fail["detail"]
    assert res["tls_version"] == "TLSv1.1" and res["checks"]["forward_secrecy"] == "unknown"
    # the certificate is still judged: trusted, right name, SHA-256, 2048 bits
    assert res["checks"]["trust"] == res["checks"]["signature_hash"] == res["checks"]["key_size"] == "ok"
    assert len(calls) == 3 and "TLS 1.2" in res["remedy"]


def test_sha1_and_rsa1024_name_the_weakness(profiles):
    sha1, _c, _s = check(profiles, "sha1")
    assert sha1["signature_hash"] == "sha1" and "SHA1" in sha1["failures"][0]["detail"]
    assert sha1["checks"]["trust"] == "ok"          # judged apart: the chain itself is fine
    weak, _c, _s = check(profiles, "rsa1024")
    assert weak["key_bits"] == 1024 and "1024-bit RSA" in weak["failures"][0]["detail"]
    assert "2048" in weak["remedy"]


def test_nofs_names_the_suite_chosen(profiles):
    res, calls, _seen = check(profiles, "nofs")
    assert res["failures"][0]["requirement"] == "forward_secrecy"
    assert res["cipher"] in _ats.ATS_CIPHERS or res["cipher"].startswith("AES")
    assert res["cipher"] in res["failures"][0]["detail"] and res["tls_version"] == "TLSv1.2"
    assert len(calls) == 2


def test_expired_is_untrusted_for_expiry_only(profiles):
    res, _calls, _seen = check(profiles, "expired")
    assert res["checks"]["trust"] == "ok" and "expired on" in res["failures"][0]["detail"]


def test_every_failure_is_reported_not_just_the_first(profiles):
    # the SHA-1 server, reached by a name it does not carry and checked against the system store
    res, _calls, _seen = check(profiles, "sha1", url="https://mdm.other.example/", ca=None)
    assert [f["requirement"] for f in res["failures"]] == ["signature_hash", "trust", "hostname"]
    assert res["status"] == "ats_failed" and res["verify_error"]
    assert "mdm.other.example is not in the certificate's subjectAltName" in res["detail"]


def test_address_in_url_matches_an_ip_san(profiles):
    contexts, ca_file, _paths = profiles
    calls, seen = [], []
    url = "https://%s:8443/" % labats.ADDRESSES["good"]
    res = _ats.ats_check(url, timeout=5, ca_path=ca_file, connect=connector(contexts["good"], calls, seen))
    assert res["status"] == "ok", res["detail"]
    assert res["address"] == labats.ADDRESSES["good"] and calls == [(labats.ADDRESSES["good"], 8443)]


def test_address_skips_dns(profiles):
    res, calls, _seen = check(profiles, "good", address="192.0.2.77")
    assert res["address"] == "192.0.2.77" and calls == [("192.0.2.77", 443)]


@pytest.mark.parametrize("exc,status", [
    (ConnectionRefusedError(111, "Connection refused"), "refused"),
    (socket.timeout("timed out"), "timeout"),
    (OSError(113, "No route to host"), "unreachable"),
])
def test_network_failures(exc, status):
    def connect(address, port, timeout):
        raise exc
    res = _ats.ats_check("https://mdm.example.org/x", connect=connect)
    assert res["status"] == status and res["failures"][0]["requirement"] == "https"
    assert res["checks"]["https"] == "failed" and res["checks"]["tls_version"] == "unknown"
    assert "mdm.example.org:443" in res["remedy"]


def test_not_tls_at_all_is_tls_failed():
    def connect(address, port, timeout):
        client, server = socket.socketpair()

        def answer():
            server.recv(4096)
            server.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            server.close()
        threading.Thread(target=answer, daemon=True).start()
        return client
    res = _ats.ats_check("https://mdm.example.org/", connect=connect, timeout=5)
    assert res["status"] == "tls_failed" and [f["requirement"] for f in res["failures"]] == ["https"]
    assert res["checks"]["trust"] == "unknown"


def test_unresolvable_name_is_dns_failed(monkeypatch):
    # the lab test resolves for real (lab DNS, NXDOMAIN); here no resolver is asked
    def nxdomain(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    res = _ats.ats_check("https://no-such-host.invalid/mdm", timeout=2)
    assert res["status"] == "dns_failed" and res["address"] is None
    assert "does not resolve" in res["detail"] and res["failures"][0]["requirement"] == "https"

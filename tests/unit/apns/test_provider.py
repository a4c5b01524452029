"""The provider-API layer's pure parts: classification of APNs answers and of failures, remedies,
the request it would send, the client certificate input (no network, no lab)."""
from __future__ import annotations

import errno
import os
import socket
import ssl
import stat

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._apns import _provider as p
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import CertificateError, CertificateInput


@pytest.mark.parametrize("http_status,reason,status", [
    (400, "BadDeviceToken", "ok"),               # the expected answer to the dummy token
    (400, "DeviceTokenNotForTopic", "ok"),
    (200, None, "ok"),
    (410, "Unregistered", "ok"),
    (400, "TopicDisallowed", "topic_disallowed"),
    (400, "BadTopic", "topic_disallowed"),
    (400, "MissingTopic", "topic_disallowed"),
    (403, "BadCertificate", "certificate_rejected"),
    (403, "Forbidden", "certificate_rejected"),
    (403, "MissingProviderToken", "certificate_rejected"),
    (403, "BadCertificateEnvironment", "wrong_environment"),
    (429, "TooManyRequests", "throttled"),
    (429, "TooManyProviderTokenUpdates", "throttled"),
    (500, "InternalServerError", "apns_error"),
    (503, "ServiceUnavailable", "apns_error"),
    (503, "Shutdown", "apns_error"),
    (404, "BadPath", "error"),
    (405, "MethodNotAllowed", "error"),
    (400, "SomethingNew", "error"),
])
def test_classify_response(http_status, reason, status):
    assert p.classify_response(http_status, reason) == status
    assert status in p.STATUSES


def test_every_status_has_a_one_line_remedy():
    for status in p.STATUSES:
        text = p.remedy(status, host="api.push.apple.com", port=443, reason="R", topic="T", environment="production",
                        http_status=500)
        assert "\n" not in text
        assert bool(text) == (status != "ok")


def test_remedies_name_what_to_do():
    assert "Apple Push Certificates Portal" in p.remedy("certificate_rejected", host="h", port=1, reason="BadCertificate")
    assert "sandbox" in p.remedy("wrong_environment", host="api.sandbox.push.apple.com", port=443, environment="sandbox")
    assert "'com.apple.mgmt.External.x'" in p.remedy("topic_disallowed", host="h", port=1, topic="com.apple.mgmt.External.x",
                                                     reason="TopicDisallowed")
    assert "open TCP 2197" in p.remedy("refused", host="api.push.apple.com", port=2197)


def _ssl_error(reason, library="SSL"):
    exc = ssl.SSLError(1, "[%s: %s] %s (_ssl.c:2580)" % (library, reason, reason.lower().replace("_", " ")))
    exc.reason = reason
    exc.library = library
    return exc


def _wrapped(cause, name="ReadError"):
    wrapper = type(name, (Exception,), {})(str(cause))
    wrapper.__cause__ = cause
    return wrapper


@pytest.mark.parametrize("exc,status,word", [
    (_wrapped(_ssl_error("SSLV3_ALERT_CERTIFICATE_EXPIRED")), "certificate_rejected", "certificate_expired"),
    (_wrapped(_ssl_error("SSLV3_ALERT_CERTIFICATE_REVOKED")), "certificate_rejected", "certificate_revoked"),
    (_wrapped(_ssl_error("TLSV1_ALERT_UNKNOWN_CA")), "certificate_rejected", "unknown_ca"),
    (_wrapped(_ssl_error("TLSV13_ALERT_CERTIFICATE_REQUIRED")), "certificate_rejected", "certificate_required"),
    (_wrapped(_ssl_error("WRONG_VERSION_NUMBER")), "tls_failed", "WRONG_VERSION_NUMBER"),
    (_wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "ConnectError"), "refused", "refused"),
    (_wrapped(OSError(errno.EHOSTUNREACH, "No route to host"), "ConnectError"), "unreachable", "No route"),
    (_wrapped(socket.timeout("timed out"), "ConnectTimeout"), "timeout", "timeout"),
    (type("ReadTimeout", (Exception,), {})("The read operation timed out"), "timeout", "timeout"),
    (_wrapped(ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")), "tls_failed", "reset"),
    (type("RemoteProtocolError", (Exception,), {})("Server disconnected"), "tls_failed", "closed by the server"),
    (RuntimeError("odd"), "error", "RuntimeError"),
])
def test_classify_exception(exc, status, word):
    got, reason = p.classify_exception(exc)
    assert got == status and word in reason


def test_server_verification_failure_is_tls_failed_not_rejected():
    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_message = "unable to get local issuer certificate"
    status, reason = p.classify_exception(_wrapped(err, "ConnectError"))
    assert status == "tls_failed" and "server certificate not trusted" in reason


@pytest.mark.parametrize("body,reason", [
    (b'{"reason": "BadDeviceToken"}', "BadDeviceToken"),
    (b'{"reason":"Unregistered","timestamp":1}', "Unregistered"),
    (b"", None), (b"not json", None), (b"[1]", None), (b"\xff", None),
])
def test_parse_reason(body, reason):
    assert p.parse_reason(body) == reason


def test_request_headers_follow_the_topic():
    headers, body = p._headers("api.push.apple.com", 443, "com.apple.mgmt.External.abc")
    assert headers["apns-topic"] == "com.apple.mgmt.External.abc" and headers["apns-push-type"] == "mdm"
    assert headers["apns-expiration"] == "0" and b"mdm" in body
    headers, _body = p._headers("api.push.apple.com", 443, None)
    assert "apns-topic" not in headers and headers["apns-push-type"] == "background"
    assert len(p.DUMMY_TOKEN) == 64


def test_client_material_from_pkcs12(push, tmp_path):
    path = tmp_path / "push.p12"
    path.write_bytes(push.pkcs12(b"pw"))
    cert_pem, key_pem, topic, not_after = p.client_material(CertificateInput(path=str(path), certificate_password="pw"))
    assert topic == push.topic and cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert b"PRIVATE KEY" in key_pem and b"ENCRYPTED" not in key_pem and not_after.endswith("Z")


def test_client_material_needs_the_key(push):
    with pytest.raises(CertificateError, match="privatekey_path"):
        p.client_material(CertificateInput(content=push.cert_pem().decode()))


def test_client_context_leaves_no_key_file_behind(push, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    seen = []
    real = p.create_exclusive

    def spy(path, data, mode=0o600, option=None):
        out = real(path, data, mode, option)
        seen.append((path, stat.S_IMODE(os.stat(path).st_mode), stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)))
        return out
    monkeypatch.setattr(p, "create_exclusive", spy)
    ctx = p.client_context(push.cert_pem(), push.key_pem(), ca_path=None)
    assert isinstance(ctx, ssl.SSLContext)
    (path, mode, dir_mode), = seen
    assert mode == 0o600 and dir_mode == 0o700 and path.startswith(str(tmp_path))
    assert not os.path.exists(path) and list(tmp_path.iterdir()) == []


def test_missing_httpx_is_a_clear_error(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_h2(name, *args, **kw):
        if name == "h2":
            raise ImportError("No module named 'h2'")
        return real_import(name, *args, **kw)
    monkeypatch.setattr(builtins, "__import__", no_h2)
    with pytest.raises(p.ProviderUnavailable, match=r"httpx\[http2\]"):
        p.provider_probe("api.push.apple.com", 443, cert_pem=b"", key_pem=b"")


def test_an_encrypted_key_is_an_error_not_a_prompt(push):
    with pytest.raises(ssl.SSLError):
        p.client_context(push.cert_pem(), push.key_pem(b"pw"))


def test_no_certificate_is_an_error_result():
    res = p.provider_probe("api.push.apple.com", 443, address="192.0.2.1", cert_pem=None, key_pem=None, timeout=0.1)
    assert res["status"] == "error" and "private key" in res["detail"] and res["remedy"]

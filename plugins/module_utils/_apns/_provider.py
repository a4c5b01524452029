# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider-API layer of the push path: does APNs accept this push certificate and topic?

One HTTP/2 ``POST /3/device/<dummy token>`` per endpoint (never more: no retry,
no second attempt), with the push certificate as TLS client certificate and
``apns-topic`` set to the certificate's topic.  The token is a dummy, so no
device ever receives anything: ``400 BadDeviceToken`` is the answer that
proves the certificate, its environment and its topic were accepted.

Answers are read as Apple documents them in "Handling notification responses
from APNs"
(https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns):
``:status``, ``apns-id`` header, body ``{"reason": ...}``.

Statuses (each with a one-line remedy): ``ok`` (400 ``BadDeviceToken``, or
anything else that shows certificate and topic were accepted),
``certificate_rejected`` (403 ``BadCertificate``/``Forbidden``/
``MissingProviderToken``, or a TLS alert from the server about the client
certificate: expired, revoked, unknown CA), ``wrong_environment``
(``BadCertificateEnvironment``), ``topic_disallowed`` (``TopicDisallowed``,
``BadTopic``, ``MissingTopic``, ``DeviceTokenNotForTopic`` is not: it is ok),
``throttled`` (429), ``apns_error`` (5xx), ``timeout``, ``tls_failed``,
``refused``, ``intercepted`` (an answer over a server chain that does not end at
the expected roots: not from APNs), plus ``unreachable``/``blocked_locally``/
``error`` of ``_probe``.

``httpx`` (with ``h2``: ``pip install 'httpx[http2]'``) is imported when a probe
runs; without it, ``provider_probe`` raises :class:`ProviderUnavailable` with
the install hint (modules turn it into a ``msg``).

The client certificate and key go to ``ssl`` through a private temporary file
(0600 from creation, in a 0700 directory), deleted as soon as the context has
loaded it.  ``connect(address, port, timeout) -> socket`` (as in ``_tls``) lets
a caller hand in its own socket; ``proxy`` (``http://[user:pass@]host:port`` or a
``_proxy.ProxyConfig``) tunnels through an HTTP CONNECT proxy with
``_proxy.connector`` (the proxy resolves the name), so a proxy that refuses
is named (``proxy_refused``, ``proxy_auth_required``, ``proxy_unreachable``)
and one that re-signs TLS is ``intercepted``, naming its CA.

When the server's certificate does not validate, the chain is read once more
without validation (one more handshake, no request): a chain ending outside
``expected_roots`` is ``intercepted`` (naming the issuer found), anything else
stays ``tls_failed``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import tempfile
import time

from ansible_collections.mdmops.apple.plugins.module_utils._apns import _tls
from ansible_collections.mdmops.apple.plugins.module_utils._files import create_exclusive

#: 32 zero bytes: a well-formed token no device has; APNs answers BadDeviceToken.
DUMMY_TOKEN = "0" * 64
ENDPOINTS = {"production": "api.push.apple.com", "sandbox": "api.sandbox.push.apple.com"}
PORTS = (443, 2197)
STATUSES = ("ok", "certificate_rejected", "wrong_environment", "topic_disallowed", "throttled", "apns_error",
            "dns_failed", "timeout", "tls_failed", "intercepted", "proxy_auth_required", "proxy_refused", "refused",
            "unreachable", "proxy_unreachable", "blocked_locally", "error")

ACCEPTED_400 = ("BadDeviceToken", "DeviceTokenNotForTopic", "BadCollapseId", "BadExpirationDate",
                "BadMessageId", "BadPriority", "PayloadEmpty", "PayloadTooLarge", "InvalidPushType")
TOPIC_REASONS = ("TopicDisallowed", "BadTopic", "MissingTopic")
CERT_REASONS = ("BadCertificate", "Forbidden", "MissingProviderToken", "InvalidProviderToken",
                "ExpiredProviderToken")

REMEDIES = {
    "ok": "",
    "certificate_rejected": "APNs refused the push certificate ({reason}): renew it in the Apple Push Certificates "
                            "Portal (same Apple Account, same topic) and install the new certificate and its key.",
    "wrong_environment": "The certificate is not valid for APNs {environment} ({host}): probe the endpoint of the "
                         "certificate's environment, or use a certificate issued for {environment}.",
    "topic_disallowed": "APNs refused topic '{topic}' ({reason}): send the certificate's own topic (its subject UID); "
                        "a certificate renewed under another Apple Account has another topic, renew under the "
                        "original account.",
    "throttled": "APNs throttled this provider ({reason}): wait before retrying and find what else sends with this "
                 "certificate so often.",
    "apns_error": "APNs answered {http_status} {reason}: a problem on Apple's side; retry later and check "
                  "https://developer.apple.com/system-status/.",
    "timeout": "No answer from {host}:{port} within the timeout: a firewall drops TCP {port} to {host}, or something "
               "holds the request; allow it and rerun.",
    "tls_failed": "The TLS connection to {host}:{port} failed ({reason}): run the tls layer on it; whatever "
                  "intercepts or filters TLS must let {host} pass untouched.",
    "refused": _tls.REMEDIES["refused"],
    "unreachable": _tls.REMEDIES["unreachable"],
    "blocked_locally": _tls.REMEDIES["blocked_locally"],
    "intercepted": _tls.REMEDIES["intercepted"],
    "dns_failed": _tls.REMEDIES["dns_failed"],
    "proxy_refused": _tls.REMEDIES["proxy_refused"],
    "proxy_auth_required": _tls.REMEDIES["proxy_auth_required"],
    "proxy_unreachable": _tls.REMEDIES["proxy_unreachable"],
    "error": "Unexpected answer or error from {host}:{port} ({reason}); see detail.",
}

# Alerts a TLS server sends about the client's certificate (OpenSSL reason names).
_CERT_ALERTS = ("CERTIFICATE_EXPIRED", "CERTIFICATE_REVOKED", "UNKNOWN_CA", "BAD_CERTIFICATE",
                "CERTIFICATE_UNKNOWN", "UNSUPPORTED_CERTIFICATE", "CERTIFICATE_REQUIRED", "ACCESS_DENIED",
                "HANDSHAKE_FAILURE")


class ProviderUnavailable(RuntimeError):
    """httpx or h2 is missing on this host; the message says what to install."""


# ---------------------------------------------------------------- classification (pure)
def remedy(status, **kw):
    kw.setdefault("issuer", "")
    kw.setdefault("reason", "")
    kw.setdefault("topic", "")
    kw.setdefault("environment", "")
    kw.setdefault("http_status", "")
    return REMEDIES.get(status, REMEDIES["error"]).format(**kw)


def classify_response(http_status, reason):
    """Status of an APNs answer (``http_status`` int, ``reason`` str or None).  Pure."""
    if http_status == 200 or http_status == 410:
        return "ok"
    if http_status == 400:
        if reason in TOPIC_REASONS:
            return "topic_disallowed"
        if reason in ACCEPTED_400:
            return "ok"
        return "error"
    if http_status == 403:
        if reason == "BadCertificateEnvironment":
            return "wrong_environment"
        return "certificate_rejected"
    if http_status == 429:
        return "throttled"
    if http_status is not None and 500 <= http_status <= 599:
        return "apns_error"
    return "error"


def _causes(exc):
    seen = []
    while exc is not None and exc not in seen and len(seen) < 8:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def classify_exception(exc):
    """(status, reason) for an exception raised by the HTTP/2 exchange (httpx, ssl, socket).  Pure."""
    chain = _causes(exc)
    for err in chain:
        if getattr(err, "proxy_status", None):      # _proxy.ProxyError: classified by the proxy layer
            return err.proxy_status, str(err)
    names = [type(e).__name__ for e in chain]
    text = " ".join(str(e) for e in chain)
    upper = text.upper()
    if any(n.endswith("Timeout") or n in ("TimeoutError", "timeout") for n in names) or "TIMED OUT" in upper:
        return "timeout", "no answer within the timeout"
    for err in chain:
        if isinstance(err, ssl.SSLCertVerificationError):
            return "tls_failed", "server certificate not trusted: %s" % (err.verify_message or err)
    if "ALERT" in upper and any(a in upper for a in _CERT_ALERTS):
        alert = next(a for a in _CERT_ALERTS if a in upper)
        return "certificate_rejected", "TLS alert %s: the server refused the client certificate" % alert.lower()
    for err in chain:
        if isinstance(err, ssl.SSLError):
            return "tls_failed", err.reason or str(err)
    for err in chain:
        if isinstance(err, (ConnectionResetError, BrokenPipeError)):
            return "tls_failed", "connection reset (%s)" % err
        if isinstance(err, OSError) and getattr(err, "errno", None):
            from ansible_collections.mdmops.apple.plugins.module_utils._probe import classify_oserror
            return classify_oserror(err), str(err)
    if any(n in ("RemoteProtocolError", "ReadError", "WriteError") for n in names):
        return "tls_failed", "connection closed by the server: %s" % (text or names[0])
    return "error", "%s: %s" % (names[0], text)


def parse_reason(body):
    """``reason`` of an APNs JSON body, or None."""
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeError, AttributeError):
        return None
    return data.get("reason") if isinstance(data, dict) else None


# ---------------------------------------------------------------- material
def client_material(cert_input):
    """(cert_pem, key_pem, topic, not_after ISO) from a ``_push._material.CertificateInput``.

    Raises ``CertificateError`` with the option named when something is missing.
    """
    from cryptography.hazmat.primitives import serialization
    from ansible_collections.mdmops.apple.plugins.module_utils._push import _material as m
    material = cert_input.load()
    key = cert_input.load_key(material)
    if key is None:
        raise m.CertificateError("the push certificate's private key is needed for the provider layer: give "
                                 "privatekey_path or privatekey_content (or a PKCS#12 file holding it)")
    cert_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [material.certificate] + list(material.chain))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert_pem, key_pem, m.push_topic(material.certificate), m.iso8601(m.not_after(material.certificate))


def _import_httpx():
    try:
        import httpx
        import h2  # noqa: F401  (httpx needs it for http2=True)
    except ImportError as exc:
        raise ProviderUnavailable("the provider layer needs httpx with HTTP/2 on the host that runs the probe "
                                  "(%s): install it with 'pip install \"httpx[http2]\"' (or the distribution's "
                                  "python3-httpx and python3-h2)" % exc)
    return httpx


def client_context(cert_pem, key_pem, ca_path=None):
    """An ssl client context verifying the server against ``ca_path`` (default: the system store), holding
    the client certificate; the PEM goes through a 0600 temporary file that is deleted at once."""
    if not cert_pem or not key_pem:
        raise ValueError("the provider layer needs the push certificate and its private key")
    ctx = _tls._new_context(["h2"], True, ca_path)
    workdir = tempfile.mkdtemp(prefix="mdmops-apns-")      # 0700
    path = os.path.join(workdir, "client.pem")
    try:
        create_exclusive(path, bytes(key_pem) + b"\n" + bytes(cert_pem))
        # never let OpenSSL prompt on a terminal for an encrypted key: the key given must be decrypted
        ctx.load_cert_chain(path, password=lambda: b"")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return ctx


def _backend(address, target_port, target_host, connect):
    """An httpcore network backend dialling ``address`` (or ``connect``) for ``target_host``:``target_port``."""
    import httpcore
    from httpcore._backends.sync import SyncStream

    class Backend(httpcore.SyncBackend):
        def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            if host == target_host and port == target_port:
                try:
                    sock = (connect or _tls.default_connect)(address or host, port, timeout)
                except socket.timeout as exc:
                    raise httpcore.ConnectTimeout(str(exc) or "timed out") from exc
                except OSError as exc:
                    raise httpcore.ConnectError(str(exc)) from exc
                return SyncStream(sock)
            return super().connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                       socket_options=socket_options)
    return Backend()


def _headers(host, port, topic):
    mdm = (topic or "").startswith("com.apple.mgmt.")
    headers = {"apns-push-type": "mdm" if mdm else "background", "apns-priority": "10" if mdm else "5",
               "apns-expiration": "0"}
    if topic:
        headers["apns-topic"] = topic
    body = {"mdm": "mdmops-probe"} if mdm else {"aps": {"content-available": 1}}
    return headers, json.dumps(body).encode()


def provider_probe(host, port, address=None, cert_pem=None, key_pem=None, topic=None, environment=None,
                   timeout=5.0, ca_path=None, proxy=None, connect=None, token=DUMMY_TOKEN,
                   expected_roots=_tls.DEFAULT_EXPECTED_ROOTS):
    """One ``POST /3/device/<token>`` to ``host``:``port`` (dialled at ``address`` if given).

    ``cert_pem`` (the certificate, then its chain) and ``key_pem`` (unencrypted)
    are bytes, see :func:`client_material`.  ``proxy`` (``http://[user:pass@]host:port``
    or a ``_proxy.ProxyConfig``; ValueError when malformed) tunnels through that HTTP
    CONNECT proxy, which resolves ``host`` (``address`` is then not used);
    ``connect(address, port, timeout) -> socket`` replaces the TCP connection.  ``expected_roots``
    as in ``_tls``: an answer over a server chain ending elsewhere did not come
    from APNs, the status is then ``intercepted``.

    Returns a dict: status, http_status, reason, apns_id, latency_ms, remedy,
    detail, plus host, port, address, topic, environment, http_version,
    tls_version, root (the root the server chain ends at, by name), and with a
    proxy: proxy (``http://host:port``, never the credentials).
    Raises :class:`ProviderUnavailable` when httpx/h2 are missing.
    """
    httpx = _import_httpx()
    proxy_cfg = None
    if proxy:
        from ansible_collections.mdmops.apple.plugins.module_utils._apns import _proxy
        proxy_cfg = _proxy.parse_proxy(proxy)
        connect, address = _proxy.connector(proxy_cfg), None
    environment = environment or ("sandbox" if "sandbox" in (host or "") else "production")
    result = {"host": host, "port": port, "address": address, "topic": topic, "environment": environment,
              "status": None, "http_status": None, "reason": None, "apns_id": None, "http_version": None,
              "tls_version": None, "root": None, "latency_ms": None, "remedy": "", "detail": ""}
    if proxy_cfg is not None:
        result["proxy"] = proxy_cfg.display
    fmt = dict(host=host, port=port, topic=topic or "", environment=environment)
    start = time.monotonic()
    try:
        ctx = client_context(cert_pem, key_pem, ca_path)
    except (ssl.SSLError, ValueError, OSError) as exc:
        result.update(status="error", detail="the client certificate or ca_path cannot be used: %s" % exc,
                      remedy=remedy("error", reason="unusable certificate, key or ca_path", **fmt))
        return result
    headers, body = _headers(host, port, topic)
    url = "https://%s:%d/3/device/%s" % (host, port, token)
    try:
        transport = httpx.HTTPTransport(verify=ctx, http1=False, http2=True, retries=0)
        if address or connect:
            pool = getattr(transport, "_pool", None)
            if not hasattr(pool, "_network_backend"):   # httpx/httpcore changed: never dial another address
                raise ProviderUnavailable("this httpx/httpcore version (httpx %s) cannot dial a given address; "
                                          "install httpx 0.27 or 0.28" % getattr(httpx, "__version__", "?"))
            pool._network_backend = _backend(address, port, host, connect)
        with httpx.Client(transport=transport, timeout=httpx.Timeout(timeout), trust_env=False) as client:
            response = client.post(url, headers=headers, content=body)
            content = response.read()
            stream = response.extensions.get("network_stream")
            sslobj = stream.get_extra_info("ssl_object") if stream is not None else None
            if sslobj is not None:
                der, _source = _tls.peer_chain(sslobj)
                root, _dn = _tls.chain_root([_tls.parse_der(d) for d in der])
                result.update(tls_version=sslobj.version(), root=root)
        status_code = response.status_code
        reason = parse_reason(content) if content else None
        status = classify_response(status_code, reason)
        result.update(http_status=status_code, reason=reason, apns_id=response.headers.get("apns-id"),
                      http_version=response.http_version)
        fmt.update(reason=reason or "no reason", http_status=status_code)
        detail = "POST /3/device/<dummy> to %s:%s (%s) answered %s %s" % (
            host, port, environment, status_code, reason or "(empty body)")
        if status == "ok" and reason == "BadDeviceToken":
            detail += ": certificate and topic '%s' accepted (the dummy token is not a device)" % topic
        root = result["root"]
        if root and expected_roots and not _tls.root_matches(root, None, expected_roots):
            status = "intercepted"
            fmt.update(issuer=root)
            detail = ("HTTPS inspection on %s:%s: the server chain ends at '%s', not at %s, so this answer (%s %s) "
                      "did not come from APNs; Apple requires these hosts not be inspected"
                      % (host, port, root, " or ".join("'%s'" % r for r in expected_roots), status_code,
                         reason or "no reason"))
    except ProviderUnavailable:
        raise
    except Exception as exc:  # classified below: every network, TLS and HTTP/2 failure becomes a status
        status, reason = classify_exception(exc)
        fmt.update(reason=reason, http_status="")
        detail = "POST /3/device/<dummy> to %s:%s (%s): %s" % (host, port, environment, reason)
        proxy_err = next((e for e in _causes(exc) if getattr(e, "proxy_status", None)), None)
        if proxy_err is not None and getattr(proxy_err, "remedy", None):
            fmt["fixed_remedy"] = proxy_err.remedy
        if status == "tls_failed" and reason.startswith("server certificate not trusted"):
            issuer = _reread_root(host, port, address, timeout, connect, expected_roots)
            if issuer:
                status = "intercepted"
                fmt.update(issuer=issuer)
                detail = ("HTTPS inspection on %s:%s: the server chain ends at '%s', not at %s (%s); Apple requires "
                          "these hosts not be inspected" % (host, port, issuer, " or ".join(
                              "'%s'" % r for r in expected_roots), reason))
        if status == "tls_failed" and any(w in reason.lower() for w in ("eof", "reset", "closed")):
            detail += ("; under TLS 1.3 a server that refuses the client certificate can also close this way: "
                       "check the certificate's validity and issuer too")
    fixed = fmt.pop("fixed_remedy", None)
    result.update(status=status, latency_ms=round((time.monotonic() - start) * 1000.0, 1),
                  remedy=fixed or remedy(status, **fmt), detail=detail)
    return result


def _reread_root(host, port, address, timeout, connect, expected_roots):
    """After a failed server validation: the root the chain ends at when it is not an expected one, else None.

    One more handshake (no request), without validation, over the same path
    (``address`` or ``connect``: the same proxy tunnel)."""
    if not expected_roots:
        return None
    hs = _tls._handshake(address or host, port, host, ["h2"], timeout, False, None, connect or _tls.default_connect)
    chain = [_tls.parse_der(d) for d in hs.get("chain_der") or []]
    name, dn = _tls.chain_root(chain)
    if hs.get("chain_source") == "leaf_only" or not chain or _tls.root_matches(name, dn, expected_roots):
        return None
    return name

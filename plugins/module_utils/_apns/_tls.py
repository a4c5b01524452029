# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The TLS layer of the push path: one handshake, the chain presented, and a verdict.

Pure Python on the standard ``ssl`` module; no Ansible imports, no third-party
package (certificates are read by the small DER reader below, so hosts without
``cryptography`` run it too).

How the chain is obtained (Python's ``getpeercert`` only gives the leaf):

* Python 3.13+: ``SSLSocket.get_unverified_chain()``;
* Python 3.10 to 3.12: the same call on the underlying ``_ssl._SSLSocket``
  (present since 3.10, made public in 3.13);
* older Pythons: the leaf only (``chain_source: leaf_only``); the root cannot
  be seen, so interception is then judged by chain validation alone.

Two separate questions are answered:

* **interception** (push hosts): does the presented chain end at one of
  ``expected_roots`` (by name: the issuer of the top certificate, or its
  subject when it is self-signed)?  If not, some device re-signed the
  traffic: ``intercepted``, naming the issuer found.
* **validation**: does the chain validate, with the host name, against
  ``ca_path`` (default: the system store)?  The first handshake verifies; when
  verification fails, a second handshake without verification reads the chain
  (so a failed validation costs one more connection, a good one does not).

Statuses: ``ok``, ``intercepted``, ``untrusted`` (validation failed, chain not
re-signed as far as names show), ``tls_failed`` (handshake error, alert,
wrong or no ALPN), plus the TCP ones of ``_probe`` (``refused``, ``timeout``,
``unreachable``, ``blocked_locally``, ``error``).  Each result carries a
one-line ``remedy``.

``tls_probe`` takes an optional ``connect(address, port, timeout)`` callable
that returns a connected socket: ``_proxy.connector(proxy)`` hands in a socket
tunnelled through an HTTP CONNECT proxy (give no ``address``: the proxy then
resolves the name).  A proxy's failure (``_proxy.ProxyError``) becomes the
status it names (``proxy_refused``, ``proxy_auth_required``,
``proxy_unreachable``, or the target's ``refused``/``timeout``/``unreachable``/
``dns_failed`` as the proxy saw it) with the proxy's detail and remedy; a proxy
that re-signs TLS is ``intercepted`` like any other inspecting middlebox.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import ssl
import stat
import threading
import time

from ansible_collections.mdmops.apple.plugins.module_utils._files import file_kind

COURIER_SNI = "courier.push.apple.com"
APNS_ALPN = "apns-security-v3"
PROVIDER_HOSTS = ("api.push.apple.com", "api.sandbox.push.apple.com")
# The provider API chains to USERTrust since February 2025 (AAA Certificate Services before). Apple's
# own roots are listed too: no inspection proxy can issue under them, and Apple serves some push hosts
# (couriers) from its own PKI; a chain ending at any of these is not interception.
DEFAULT_EXPECTED_ROOTS = ("USERTrust RSA Certification Authority", "AAA Certificate Services",
                          "Apple Root CA", "Apple Root CA - G2", "Apple Root CA - G3")
# TCP ports of the catalog that speak TLS (HTTPS, APNs couriers, APNs provider API)
TLS_PORTS = (443, 2197, 5223, 8443)
STATUSES = ("ok", "dns_failed", "intercepted", "untrusted", "tls_failed", "proxy_auth_required", "proxy_refused",
            "refused", "timeout", "unreachable", "proxy_unreachable", "blocked_locally", "error")

REMEDIES = {
    "ok": "",
    "refused": "The connection was refused (reset or rejected): open TCP {port} to {host} on the firewalls "
               "between this host and Apple.",
    "timeout": "No answer within the timeout: a firewall silently drops TCP {port} to {host} (or the TLS "
               "handshake stalls); allow it.",
    "unreachable": "No route to {host}: check this host's routing and the upstream firewall's ICMP rejects.",
    "blocked_locally": "This host's own firewall refused to send to {host}:{port}; allow it locally.",
    "error": "Unexpected error connecting to {host}:{port}; see detail.",
    "tls_failed": "The TLS handshake with {host}:{port} failed ({reason}): a middlebox that filters or "
                  "rewrites TLS, or a server that is not {host}; let {host}:{port} pass untouched.",
    "untrusted": "The chain of {host}:{port} does not validate against {anchors}: update the trust store "
                 "(ca-certificates) or set ca_path to the right anchors; if a proxy re-signs it, exempt "
                 "{host} from TLS inspection.",
    "intercepted": "Exempt {host} from TLS/HTTPS inspection on the proxy or firewall whose CA is '{issuer}': "
                   "Apple requires push hosts not be inspected.",
    # through an HTTP CONNECT proxy (_proxy.ProxyError carries a remedy naming the proxy; these are the fallback)
    "dns_failed": "{host} does not resolve for the proxy: fix the DNS the proxy uses.",
    "proxy_refused": "The proxy refused CONNECT to {host}:{port}: allow CONNECT to {host} on port {port} in its rules.",
    "proxy_auth_required": "The proxy wants credentials for CONNECT, or refused the ones given: set proxy_username "
                           "and proxy_password.",
    "proxy_unreachable": "This host cannot reach its proxy: check the proxy address, that it runs, and the "
                         "firewalls between this host and the proxy.",
}

ALPN_REMEDY = ("{host}:{port} did not negotiate ALPN {alpn}: something between this host and Apple terminates or "
               "rewrites TLS (a proxy, a load balancer, a firewall's TLS feature); let {host}:{port} pass untouched.")


# ---------------------------------------------------------------- endpoints
def is_courier(host):
    host = (host or "").lower().rstrip(".")
    return host == COURIER_SNI or (host.endswith("-courier.push.apple.com") and host.count(".") == 3)


def endpoint_profile(host, port=None):
    """SNI, ALPN offered and whether interception is checked, for ``host`` (``port`` is informative).

    Couriers (``N-courier.push.apple.com``, ``courier.push.apple.com``):
    SNI ``courier.push.apple.com``, ALPN ``apns-security-v3``.  The provider
    API (``api.push.apple.com``, ``api.sandbox.push.apple.com``): ALPN ``h2``.
    Any other host: SNI the host, ALPN ``h2``, ``http/1.1``.  Push hosts
    (those and anything under ``push.apple.com``) are checked for interception.
    """
    name = (host or "").lower().rstrip(".")
    if is_courier(name):
        return {"role": "courier", "sni": COURIER_SNI, "alpn": [APNS_ALPN], "push": True,
                "alpn_required": True}
    if name in PROVIDER_HOSTS:
        return {"role": "provider_api", "sni": name, "alpn": ["h2"], "push": True, "alpn_required": True}
    return {"role": "other", "sni": name or None, "alpn": ["h2", "http/1.1"],
            "push": name == "push.apple.com" or name.endswith(".push.apple.com"), "alpn_required": False}


def is_tls_port(port, protocol="tcp"):
    return protocol == "tcp" and port in TLS_PORTS


# ---------------------------------------------------------------- DER reader
_ATTRS = {b"\x55\x04\x03": "CN", b"\x55\x04\x0a": "O", b"\x55\x04\x0b": "OU", b"\x55\x04\x06": "C",
          b"\x55\x04\x07": "L", b"\x55\x04\x08": "ST", b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x01": "UID"}


class DERError(ValueError):
    pass


def _tlv(data, i, end=None):
    """(tag, content start, content end) of the element at ``i``."""
    end = len(data) if end is None else end
    if i + 2 > end:
        raise DERError("truncated")
    tag, length = data[i], data[i + 1]
    i += 2
    if length & 0x80:
        n = length & 0x7F
        if not 0 < n <= 4 or i + n > end:
            raise DERError("bad length")
        length = int.from_bytes(data[i:i + n], "big")
        i += n
    if i + length > end:
        raise DERError("truncated")
    return tag, i, i + length


def _children(data, start, end):
    out = []
    while start < end:
        tag, s, e = _tlv(data, start, end)
        out.append((tag, s, e))
        start = e
    return out


def _string(tag, raw):
    if tag == 0x1E:
        return raw.decode("utf-16-be", "replace")
    if tag == 0x1C:
        return raw.decode("utf-32-be", "replace")
    return raw.decode("utf-8" if tag == 0x0C else "latin-1", "replace")


def _name(data, start, end):
    """[(attr, value)] in DER order (most significant first)."""
    attrs = []
    for tag, s, e in _children(data, start, end):
        if tag != 0x31:
            raise DERError("name: not a SET")
        for tag2, s2, e2 in _children(data, s, e):
            parts = _children(data, s2, e2)
            if tag2 != 0x30 or len(parts) < 2 or parts[0][0] != 0x06:
                raise DERError("name: bad attribute")
            oid = bytes(data[parts[0][1]:parts[0][2]])
            attrs.append((_ATTRS.get(oid, "OID." + oid.hex()), _string(parts[1][0], bytes(data[parts[1][1]:parts[1][2]]))))
    return attrs


def _time(tag, raw):
    text = raw.decode("ascii")
    if tag == 0x17:          # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    return "%s-%s-%sT%s:%s:%sZ" % (text[:4], text[4:6], text[6:8], text[8:10], text[10:12], text[12:14])


def dn_string(attrs):
    """``CN=..., O=..., C=...`` (most specific first, as people read it)."""
    return ", ".join("%s=%s" % (k, v.replace(",", "\\,")) for k, v in reversed(attrs))


def _cn(attrs):
    for key, value in attrs:
        if key == "CN":
            return value
    return dn_string(attrs)


def parse_der(der):
    """What a person needs of one certificate: subject, issuer, not_after, sha256 (and the CNs).

    Never raises: a certificate the reader cannot parse still gets its
    fingerprint and a ``parse_error``.
    """
    info = {"subject": None, "issuer": None, "subject_cn": None, "issuer_cn": None, "not_before": None,
            "not_after": None, "sha256": hashlib.sha256(der).hexdigest(), "self_signed": None,
            "parse_error": None}
    try:
        data = memoryview(der)
        tag, s, e = _tlv(data, 0)
        tag, s, e = _tlv(data, s, e)            # tbsCertificate
        fields = _children(data, s, e)
        if fields and fields[0][0] == 0xA0:     # [0] version
            fields = fields[1:]
        if len(fields) < 5:
            raise DERError("tbsCertificate: too few fields")
        issuer = _name(data, fields[2][1], fields[2][2])
        validity = _children(data, fields[3][1], fields[3][2])
        subject = _name(data, fields[4][1], fields[4][2])
        info.update(subject=dn_string(subject), issuer=dn_string(issuer), subject_cn=_cn(subject),
                    issuer_cn=_cn(issuer), self_signed=subject == issuer,
                    not_before=_time(validity[0][0], bytes(data[validity[0][1]:validity[0][2]])),
                    not_after=_time(validity[1][0], bytes(data[validity[1][1]:validity[1][2]])))
    except (DERError, IndexError, ValueError, UnicodeError) as exc:
        info["parse_error"] = "certificate not parsed: %s" % exc
    return info


# ---------------------------------------------------------------- verdict
def chain_root(chain):
    """(name, full DN) of the root the presented chain ends at, or (None, None) if unknown.

    The top certificate's issuer (servers do not send the root), or its own
    subject when it is self-signed.
    """
    if not chain:
        return None, None
    top = chain[-1]
    if top.get("self_signed"):
        return top.get("subject_cn"), top.get("subject")
    return top.get("issuer_cn"), top.get("issuer")


def root_matches(name, dn, expected_roots):
    wanted = [r.strip().lower() for r in expected_roots or () if r and r.strip()]
    return any(w in ((name or "").lower(), (dn or "").lower()) for w in wanted)


def _fmt_remedy(status, **kw):
    return REMEDIES[status].format(**kw)


def classify(hs, host, port, expected_roots=DEFAULT_EXPECTED_ROOTS, check_roots=True, alpn_required=False,
             anchors="the system trust store"):
    """Verdict for a handshake record ``hs``: ``(status, detail, remedy)``.  Pure.

    ``hs`` keys: ``tcp_status`` (``ok`` or a TCP status), ``tcp_error``,
    ``tls_error`` (None when the handshake completed), ``tls_timeout`` (bool),
    ``alpn_offered``, ``alpn``, ``chain`` (parse_der dicts, leaf first),
    ``chain_source``, ``verified`` (True/False/None), ``verify_error``.

    Order: TCP failure, handshake failure, interception (it is the headline
    even when ALPN is also wrong), wrong ALPN, failed validation, ok.
    """
    if hs.get("tcp_status", "ok") != "ok":
        status = hs["tcp_status"]
        if hs.get("tcp_remedy"):        # a proxy's error: its detail names the proxy and the target
            return status, hs.get("tcp_error") or status, hs["tcp_remedy"]
        detail = "TCP %s:%s: %s" % (host, port, hs.get("tcp_error") or status)
        return status, detail, _fmt_remedy(status if status in REMEDIES else "error", host=host, port=port)
    if hs.get("tls_error"):
        if hs.get("tls_timeout"):
            detail = "TCP connected but the TLS handshake with %s:%s got no answer: %s" % (host, port, hs["tls_error"])
            return "timeout", detail, _fmt_remedy("timeout", host=host, port=port)
        detail = "TLS handshake with %s:%s failed: %s" % (host, port, hs["tls_error"])
        return "tls_failed", detail, _fmt_remedy("tls_failed", host=host, port=port, reason=hs["tls_error"])
    chain = hs.get("chain") or []
    alpn_note = ""
    offered = hs.get("alpn_offered") or []
    if alpn_required and hs.get("alpn") not in offered:
        alpn_note = "; the server negotiated ALPN %s, not %s" % (
            "none" if hs.get("alpn") is None else repr(hs.get("alpn")), " or ".join(offered))
    name, dn = chain_root(chain)
    if check_roots and expected_roots and hs.get("chain_source") != "leaf_only" and chain \
            and not root_matches(name, dn, expected_roots):
        leaf = chain[0]
        detail = ("HTTPS inspection on %s:%s: the certificate chain ends at '%s' (%s), not at %s; "
                  "the leaf '%s' was issued by '%s'. Apple requires these hosts not be inspected; exempt them "
                  "from TLS inspection on the proxy or firewall whose CA is '%s'%s"
                  % (host, port, name, dn, " or ".join("'%s'" % r for r in expected_roots),
                     leaf.get("subject_cn"), leaf.get("issuer_cn"), name, alpn_note))
        return "intercepted", detail, _fmt_remedy("intercepted", host=host, issuer=name)
    if alpn_note:
        detail = "TLS with %s:%s completed but is unusable for push%s" % (host, port, alpn_note)
        return "tls_failed", detail, ALPN_REMEDY.format(host=host, port=port, alpn=" or ".join(offered))
    if hs.get("verified") is False:
        detail = "chain of %s:%s (ending at '%s') does not validate against %s: %s" % (
            host, port, name, anchors, hs.get("verify_error"))
        return "untrusted", detail, _fmt_remedy("untrusted", host=host, port=port, anchors=anchors)
    detail = "TLS %s with %s:%s, ALPN %s, chain ends at '%s'%s" % (
        hs.get("tls_version"), host, port, hs.get("alpn"), name,
        "" if hs.get("verified") else " (chain not validated: %s)" % (hs.get("verify_error") or "leaf only"))
    return "ok", detail, ""


# ---------------------------------------------------------------- handshake
def default_connect(address, port, timeout):
    return socket.create_connection((address, port), timeout=timeout)


def _tcp_status(exc):
    from ansible_collections.mdmops.apple.plugins.module_utils._probe import classify_oserror
    return classify_oserror(exc)


def peer_chain(sslsock):
    """(DER certificates leaf first, how they were obtained)."""
    getter = getattr(sslsock, "get_unverified_chain", None)
    source = "get_unverified_chain"
    if getter is None:
        getter = getattr(getattr(sslsock, "_sslobj", None), "get_unverified_chain", None)
        source = "_ssl.get_unverified_chain"
    if getter is not None:
        certs = getter() or []
        der = [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in certs]
        if der:
            return der, source
    leaf = sslsock.getpeercert(binary_form=True)
    return ([leaf] if leaf else []), "leaf_only"


_CONTEXTS = {}
_CONTEXTS_LOCK = threading.Lock()


def context(alpn, verify, ca_path=None):
    """A client context (shared between threads: loading the trust store once per run, not per probe)."""
    key = (tuple(alpn or ()), bool(verify), ca_path)
    with _CONTEXTS_LOCK:
        ctx = _CONTEXTS.get(key)
        if ctx is None:
            ctx = _CONTEXTS[key] = _new_context(alpn, verify, ca_path)
    return ctx


def ca_path_error(ca_path, load=True):
    """None when ``ca_path`` can serve as trust anchors, else the message for the user.

    A PEM file or an OpenSSL hashed directory; with ``load`` the anchors are loaded once (a file
    without a CA certificate, or one OpenSSL cannot parse, is an error before anything is sent).
    """
    try:
        mode = os.stat(ca_path).st_mode
    except OSError as exc:
        what = "does not exist" if isinstance(exc, FileNotFoundError) else "cannot be read (%s)" % exc.strerror
        return ("ca_path %s %s; give the trust anchors to validate chains with (a PEM file or a certificate "
                "directory), or leave it unset for the system store" % (ca_path, what))
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return ("ca_path %s is %s, neither a PEM file nor a certificate directory; give the trust anchors "
                "to validate chains with, or leave it unset for the system store" % (ca_path, file_kind(mode)))
    if load:
        try:
            context(["h2"], True, ca_path)
        except (ssl.SSLError, OSError, ValueError) as exc:
            return ("ca_path %s holds no usable trust anchors (%s); give a PEM file of CA certificates "
                    "or an OpenSSL hashed directory" % (ca_path, exc))
    return None


def _new_context(alpn, verify, ca_path=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        if ca_path and os.path.isdir(ca_path):
            ctx.load_verify_locations(capath=ca_path)
        elif ca_path:
            ctx.load_verify_locations(cafile=ca_path)
            if not ctx.get_ca_certs():
                raise ValueError("no CA certificate in %s" % ca_path)
        else:
            ctx.load_default_certs()
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def _handshake(target, port, sni, alpn, timeout, verify, ca_path, connect):
    """One TCP connection and one handshake: a partial ``hs`` record (raises nothing)."""
    hs = {"tcp_status": "ok"}
    try:
        sock = connect(target, port, timeout)
    except (OSError, socket.timeout) as exc:
        hs.update(tcp_status=_tcp_status(exc), tcp_error=str(exc) or "timed out",
                  tcp_remedy=getattr(exc, "remedy", None))
        return hs
    try:
        sock.settimeout(timeout)
        ctx = context(alpn, verify, ca_path)
        tls = ctx.wrap_socket(sock, server_hostname=sni, do_handshake_on_connect=False)
        sock = tls
        tls.do_handshake()
        der, source = peer_chain(tls)
        cipher = tls.cipher()
        hs.update(tls_error=None, tls_version=tls.version(), alpn=tls.selected_alpn_protocol(),
                  cipher=cipher[0] if cipher else None, chain_der=der, chain_source=source)
    except ssl.SSLCertVerificationError as exc:
        hs.update(verify_failed=True, verify_error=exc.verify_message or str(exc))
    except socket.timeout as exc:
        hs.update(tls_error="no TLS answer within %ss (%s)" % (timeout, exc or "timed out"), tls_timeout=True)
    except ssl.SSLError as exc:
        hs.update(tls_error="%s%s" % (exc.reason or exc.__class__.__name__,
                                      " (%s)" % exc.library if getattr(exc, "library", None) else ""))
    except ConnectionResetError:
        hs.update(tls_error="connection reset during the handshake (a firewall filtering on SNI?)")
    except OSError as exc:
        if getattr(exc, "errno", None) == errno.ETIMEDOUT:
            hs.update(tls_error="no TLS answer (%s)" % exc, tls_timeout=True)
        else:
            hs.update(tls_error="connection closed during the handshake: %s" % (exc or exc.__class__.__name__))
    finally:
        try:
            sock.close()
        except OSError:
            pass
    return hs


def tls_probe(host, port, address=None, sni=None, alpn=None, timeout=3.0,
              expected_roots=DEFAULT_EXPECTED_ROOTS, ca_path=None, check_roots=None, connect=None):
    """Handshake with ``host``:``port`` (at ``address`` if given) and classify it.

    ``sni``/``alpn`` default from ``endpoint_profile(host)``; ``check_roots``
    (interception check) defaults to True for push hosts.  ``connect``:
    ``connect(address, port, timeout) -> socket``, e.g. through a proxy.
    Returns a dict: status, detail, remedy, sni, alpn_offered, alpn,
    tls_version, cipher, chain (leaf first), chain_source, root,
    chain_verified, verify_error, latency_ms.
    """
    profile = endpoint_profile(host, port)
    sni = sni or profile["sni"]
    alpn = list(alpn) if alpn else profile["alpn"]
    if check_roots is None:
        check_roots = profile["push"]
    connect = connect or default_connect
    target = address or host
    start = time.monotonic()
    hs = _handshake(target, port, sni, alpn, timeout, True, ca_path, connect)
    verified = True
    if hs.get("verify_failed"):
        verify_error = hs["verify_error"]
        hs = _handshake(target, port, sni, alpn, timeout, False, None, connect)
        hs["verify_error"] = verify_error
        verified = False
    hs["verified"] = verified if hs.get("tls_error") is None and hs.get("tcp_status") == "ok" else None
    hs["alpn_offered"] = alpn
    hs["chain"] = [parse_der(d) for d in hs.pop("chain_der", [])]
    anchors = ("'%s'" % ca_path) if ca_path else "the system trust store"
    status, detail, remedy = classify(hs, host, port, expected_roots, check_roots,
                                      profile["alpn_required"] and bool(alpn), anchors)
    root, _dn = chain_root(hs["chain"])
    return {"status": status, "detail": detail, "remedy": remedy, "sni": sni, "alpn_offered": alpn,
            "alpn": hs.get("alpn"), "tls_version": hs.get("tls_version"), "cipher": hs.get("cipher"),
            "chain": hs["chain"], "chain_source": hs.get("chain_source"), "root": root,
            "chain_verified": hs["verified"], "verify_error": hs.get("verify_error"),
            "latency_ms": round((time.monotonic() - start) * 1000.0, 1)}

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MDM server readiness: does an https URL meet Apple's App Transport Security (ATS) requirements?

Apple devices talk to the MDM server (check-in and server URLs, enrollment URL)
under ATS.  Apple's "Preventing Insecure Network Connections"
(https://developer.apple.com/documentation/security/preventing-insecure-network-connections)
lists what a server must offer:

* ``https``: the URL is https and the server answers TLS (and HTTP over it);
* ``tls_version``: TLS 1.2 or later;
* ``forward_secrecy``: a forward-secret (ECDHE) suite from Apple's list
  (``ATS_CIPHERS``; every TLS 1.3 suite qualifies);
* ``signature_hash``: the leaf certificate signed with SHA-256 or better;
* ``key_size``: the leaf's key RSA 2048 bits or more, or ECC 256 bits or more;
* ``trust``: a chain to an anchor the device trusts (here: ``ca_path``, else
  this host's system store), judged without the time and the name;
* ``hostname``: the URL's host in the leaf's subjectAltName (iOS 13 and
  later ignore the common name);
* ``expiry``: every certificate of the chain inside its validity period.

Every requirement is evaluated, not just the first that fails; ``checks``
maps each to ``ok``, ``failed`` or ``unknown`` (could not be judged, e.g. no
TLS 1.2 handshake to judge forward secrecy on).

How (a few handshakes, at most six, usually one):

1. the ATS handshake: TLS 1.2+, only Apple's suites, chain verified against
   the anchors (time and name left to 4. and 5.; security level 0 so a SHA-1
   or 1024-bit certificate is judged by 4., not refused by OpenSSL);
2. if 1 fails: TLS 1.2+ with any suite: it works -> ``forward_secrecy``
   fails (the suite the server chose is named); it fails too -> the server
   cannot do TLS 1.2: ``tls_version`` fails;
3. if 2 fails: any version from TLS 1.0 with any suite, to still read the
   certificate and name the version the server does speak;
   (each of these is repeated without verification if only verification
   failed, so the certificate is always read);
4. the leaf is inspected with ``cryptography`` when it is installed, else by
   the small DER reader here (``leaf_parser`` says which);
5. one ``GET <path>`` over the first connection that succeeded:
   ``http_status`` (any HTTP answer shows the URL is served over https).

Statuses: ``ok``; ``ats_failed`` (one of tls_version, forward_secrecy,
signature_hash, key_size failed); ``untrusted`` (only trust, hostname or
expiry failed); ``tls_failed`` (no TLS handshake at all); and the network
ones of ``_probe``/``_tls``: ``dns_failed``, ``refused``, ``timeout``,
``unreachable``, ``blocked_locally``, ``error``.

Pure Python on the standard ``ssl`` module; no Ansible imports.  OpenSSL may
lack TLS 1.0/1.1 (or refuse them even at security level 0) on some builds: a
server that speaks only those then reads as ``tls_failed`` with
``tls_version`` ``unknown``.
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import os
import socket
import ssl
import threading
import time

from urllib.parse import urlsplit

REQUIREMENTS = ("https", "tls_version", "forward_secrecy", "signature_hash", "key_size", "trust", "hostname",
                "expiry")
ATS_REQUIREMENTS = ("tls_version", "forward_secrecy", "signature_hash", "key_size")
TRUST_REQUIREMENTS = ("trust", "hostname", "expiry")
STATUSES = ("ok", "ats_failed", "untrusted", "tls_failed", "dns_failed", "refused", "timeout", "unreachable",
            "blocked_locally", "error")
NETWORK_STATUSES = ("dns_failed", "refused", "timeout", "unreachable", "blocked_locally", "error")

# Apple's list of the TLS 1.2 suites ATS accepts ("Preventing Insecure Network Connections"), OpenSSL names.
# TLS 1.3 suites are all forward secret and accepted.
ATS_CIPHERS = (
    "ECDHE-ECDSA-AES256-GCM-SHA384",   # TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    "ECDHE-ECDSA-AES128-GCM-SHA256",   # TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    "ECDHE-ECDSA-AES256-SHA384",       # TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384
    "ECDHE-ECDSA-AES256-SHA",          # TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
    "ECDHE-ECDSA-AES128-SHA256",       # TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
    "ECDHE-ECDSA-AES128-SHA",          # TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
    "ECDHE-RSA-AES256-GCM-SHA384",     # TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    "ECDHE-RSA-AES128-GCM-SHA256",     # TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    "ECDHE-RSA-AES256-SHA384",         # TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384
    "ECDHE-RSA-AES128-SHA256",         # TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256
    "ECDHE-RSA-AES128-SHA",            # TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
)
GOOD_HASHES = ("sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512")
# Hash-free signature schemes (the hash is part of the scheme): not weak.
HASHLESS = ("ed25519", "ed448")
MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
# X509_V_FLAG_NO_CHECK_TIME: the trust handshake judges the chain, expiry is judged from the dates
_NO_CHECK_TIME = 0x200000

REMEDIES = {
    "https": "make {host}:{port} answer HTTPS (TLS, then HTTP) to devices",
    "tls_version": "enable TLS 1.2 (or 1.3) on {host}:{port}",
    "forward_secrecy": "enable an ECDHE suite from Apple's ATS list (e.g. ECDHE-RSA-AES128-GCM-SHA256) "
                       "on {host}:{port}",
    "signature_hash": "reissue the certificate of {host} signed with SHA-256 or better",
    "key_size": "reissue the certificate of {host} with an RSA key of 2048 bits or more (or ECC P-256 or more)",
    "trust": "serve a chain (with its intermediates) from a CA the devices trust, or install its root "
             "on the devices with a profile",
    "hostname": "reissue the certificate with {host} in its subjectAltName",
    "expiry": "renew the expired (or not yet valid) certificate of {host}",
}
NETWORK_REMEDIES = {
    "dns_failed": "{host} does not resolve from this host: fix its DNS record (devices resolve it too)",
    "refused": "the connection to {host}:{port} was refused: start the MDM server's https listener or open "
               "TCP {port} on the firewalls in between",
    "timeout": "no answer from {host}:{port} within the timeout: a firewall drops TCP {port}, or the server "
               "stalls; allow it",
    "unreachable": "no route to {host}:{port}: check routing and the upstream firewall's rejects",
    "blocked_locally": "this host's own firewall refused to send to {host}:{port}; allow it locally",
    "error": "unexpected error connecting to {host}:{port}; see detail",
}


# ---------------------------------------------------------------- URL
def parse_url(url):
    """``(host, port, path)`` of an https URL; ValueError (saying what to write) for anything else."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("MDM URL %r: give an https URL such as https://mdm.example.com/mdm/checkin" % (url,))
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError("MDM URL %r is not a valid URL (%s): give https://host[:port]/path" % (url, exc))
    if parts.scheme.lower() != "https":
        raise ValueError("MDM URL %r: devices reach the MDM server over https only (App Transport Security); "
                         "give an https:// URL" % (url,))
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError("MDM URL %r has no host: give https://host[:port]/path" % (url,))
    if parts.username is not None or parts.password is not None:     # the URL itself is not repeated
        raise ValueError("MDM URL https://...@%s carries credentials: give the URL without user:password@"
                         % parts.netloc.rpartition("@")[2])
    if port == 0:
        raise ValueError("MDM URL %r: port 0 is not a port" % (url,))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return host, port or 443, path


def _is_ip(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- leaf inspection
_SIG_OIDS = {
    "1.2.840.113549.1.1.4": "md5", "1.2.840.113549.1.1.5": "sha1", "1.2.840.113549.1.1.14": "sha224",
    "1.2.840.113549.1.1.11": "sha256", "1.2.840.113549.1.1.12": "sha384", "1.2.840.113549.1.1.13": "sha512",
    "1.2.840.10045.4.1": "sha1", "1.2.840.10045.4.3.1": "sha224", "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384", "1.2.840.10045.4.3.4": "sha512", "1.2.840.10040.4.3": "sha1",
    "2.16.840.1.101.3.4.3.2": "sha256", "1.3.101.112": "ed25519", "1.3.101.113": "ed448",
}
_HASH_OIDS = {"1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.4": "sha224", "2.16.840.1.101.3.4.2.1": "sha256",
              "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512"}
_CURVES = {"1.2.840.10045.3.1.7": 256, "1.3.132.0.34": 384, "1.3.132.0.35": 521, "1.3.132.0.10": 256,
           "1.2.840.10045.3.1.1": 192, "1.3.132.0.33": 224}
_RSA = "1.2.840.113549.1.1.1"
_RSA_PSS = "1.2.840.113549.1.1.10"
_EC = "1.2.840.10045.2.1"
_SAN = "2.5.29.17"


def _oid(raw):
    raw = bytes(raw)
    if not raw:
        return ""
    first = raw[0]
    parts = [str(min(first // 40, 2)), str(first - 40 * min(first // 40, 2))]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(str(value))
            value = 0
    return ".".join(parts)


def _der_leaf(der):
    """Signature hash, key type/bits and subjectAltName from DER with the standard library alone."""
    from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import _children, _tlv
    data = memoryview(der)
    _t, s, e = _tlv(data, 0)
    top = _children(data, s, e)                       # tbsCertificate, signatureAlgorithm, signature
    sig_alg = _children(data, top[1][1], top[1][2])
    sig_oid = _oid(data[sig_alg[0][1]:sig_alg[0][2]])
    sig_hash = _SIG_OIDS.get(sig_oid)
    if sig_oid == _RSA_PSS:
        sig_hash = "sha1"                              # RFC 4055 default when no hashAlgorithm is given
        if len(sig_alg) > 1:
            for tag, ps, pe in _children(data, sig_alg[1][1], sig_alg[1][2]):
                if tag == 0xA0:                        # [0] hashAlgorithm
                    _t2, hs, he = _tlv(data, ps, pe)
                    alg = _children(data, hs, he)
                    sig_hash = _HASH_OIDS.get(_oid(data[alg[0][1]:alg[0][2]]), "unknown")
    fields = _children(data, top[0][1], top[0][2])
    if fields and fields[0][0] == 0xA0:
        fields = fields[1:]
    spki = _children(data, fields[5][1], fields[5][2])
    alg = _children(data, spki[0][1], spki[0][2])
    key_oid = _oid(data[alg[0][1]:alg[0][2]])
    key_type, key_bits = key_oid, None
    if key_oid in (_RSA, _RSA_PSS):
        key_type = "rsa"
        bits = bytes(data[spki[1][1] + 1:spki[1][2]])  # BIT STRING: skip the unused-bits byte
        _t, ks, ke = _tlv(bits, 0)
        modulus = _children(bits, ks, ke)[0]
        key_bits = int.from_bytes(bits[modulus[1]:modulus[2]], "big").bit_length()
    elif key_oid == _EC:
        key_type = "ec"
        if len(alg) > 1 and alg[1][0] == 0x06:
            key_bits = _CURVES.get(_oid(data[alg[1][1]:alg[1][2]]))
    elif key_oid in ("1.3.101.112", "1.3.101.113"):
        key_type, key_bits = ("ed25519", 256) if key_oid.endswith("112") else ("ed448", 456)
    san_dns, san_ip = [], []
    for tag, fs, fe in fields[6:]:
        if tag != 0xA3:                                # [3] extensions
            continue
        _t, xs, xe = _tlv(data, fs, fe)
        for _tag, es, ee in _children(data, xs, xe):
            ext = _children(data, es, ee)
            if _oid(data[ext[0][1]:ext[0][2]]) != _SAN:
                continue
            _t, ns, ne = _tlv(data, ext[-1][1], ext[-1][2])
            for ntag, vs, ve in _children(data, ns, ne):
                if ntag == 0x82:
                    san_dns.append(bytes(data[vs:ve]).decode("ascii", "replace"))
                elif ntag == 0x87:
                    san_ip.append(str(ipaddress.ip_address(bytes(data[vs:ve]))))
    return {"signature_hash": sig_hash or "unknown (%s)" % sig_oid, "key_type": key_type, "key_bits": key_bits,
            "san_dns": san_dns, "san_ip": san_ip}


def _crypto_leaf(der):
    """The same facts through ``cryptography``; ImportError when it is not installed."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    cert = x509.load_der_x509_certificate(der)
    try:
        algo = cert.signature_hash_algorithm
        sig_hash = algo.name if algo is not None else None
    except Exception:  # an algorithm cryptography does not know
        sig_hash = "unknown (%s)" % cert.signature_algorithm_oid.dotted_string
    if sig_hash is None:
        oid = cert.signature_algorithm_oid.dotted_string
        sig_hash = _SIG_OIDS.get(oid, "unknown (%s)" % oid)
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key_type, key_bits = "rsa", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key_type, key_bits = "ec", key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type, key_bits = "ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        key_type, key_bits = "ed448", 456
    else:
        key_type, key_bits = key.__class__.__name__.lower().replace("publickey", "").lstrip("_"), \
            getattr(key, "key_size", None)
    san_dns, san_ip = [], []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san_dns = list(san.get_values_for_type(x509.DNSName))
        san_ip = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    return {"signature_hash": sig_hash, "key_type": key_type, "key_bits": key_bits,
            "san_dns": san_dns, "san_ip": san_ip}


def inspect_leaf(der, prefer_cryptography=True):
    """Signature hash, key type and bits, SAN names of a DER certificate, and which parser read it.

    Never raises: a certificate neither parser reads gets ``parse_error``.
    """
    errors = []
    parsers = ((("cryptography", _crypto_leaf),) if prefer_cryptography else ()) + (("der", _der_leaf),)
    for name, parser in parsers:
        try:
            info = parser(der)
        except ImportError:
            errors.append("cryptography not installed")
            continue
        except Exception as exc:  # malformed certificates must not end the check
            errors.append("%s: %s" % (name, exc))
            continue
        info["parser"] = name
        info["parse_error"] = None
        return info
    return {"signature_hash": None, "key_type": None, "key_bits": None, "san_dns": [], "san_ip": [],
            "parser": None, "parse_error": "; ".join(errors)}


def hostname_matches(host, san_dns, san_ip):
    """RFC 6125 matching of ``host`` against subjectAltName entries (one leftmost ``*`` label)."""
    host = host.lower().rstrip(".")
    if _is_ip(host):
        want = ipaddress.ip_address(host)
        return any(ipaddress.ip_address(a) == want for a in san_ip)
    for name in san_dns:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == name[2:] and "*" not in rest and rest.count(".") >= 1:
                return True
    return False


# ---------------------------------------------------------------- evaluation (pure)
def _utc(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def evaluate(host, port, hs, now=None):
    """Requirement verdicts from the handshake facts ``hs``.  Pure (``now``: a naive UTC datetime).

    ``hs`` keys: ``ats`` (dict: ok, tls_version, cipher, verify_error, error), ``tls12_any`` (same, or
    None if not tried), ``any_version`` (same, or None), ``leaf`` (inspect_leaf dict or None),
    ``chain`` (parse_der dicts, leaf first), ``http_status`` (int or None), ``http_error``.
    Returns ``(checks, failures)``: checks maps each requirement to ok/failed/unknown, failures
    lists {requirement, detail, remedy} in REQUIREMENTS order.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    checks, details = {}, {}
    ats, any12, anyv = hs.get("ats") or {}, hs.get("tls12_any"), hs.get("any_version")

    def fail(req, detail):
        checks[req] = "failed"
        details[req] = detail

    # tls_version / forward_secrecy
    if ats.get("ok"):
        checks["tls_version"] = checks["forward_secrecy"] = "ok"
    elif any12 and any12.get("ok"):
        checks["tls_version"] = "ok"
        fail("forward_secrecy", "with only Apple's forward-secret suites offered the handshake failed (%s); "
             "offering any suite, the server chose %s over %s, which is not on Apple's ATS list"
             % (ats.get("error"), any12.get("cipher"), any12.get("tls_version")))
    elif anyv and anyv.get("ok"):
        fail("tls_version", "the server does not complete a TLS 1.2 or 1.3 handshake (%s); its best is %s"
             % ((any12 or {}).get("error") or ats.get("error"), anyv.get("tls_version")))
        checks["forward_secrecy"] = "unknown"
    else:
        checks["tls_version"] = checks["forward_secrecy"] = "unknown"

    # https: any TLS at all, then an HTTP answer
    done = next((r for r in (ats, any12, anyv) if r and r.get("ok")), None)
    if done is None:
        fail("https", "no TLS handshake with %s:%s succeeded: %s"
             % (host, port, (anyv or any12 or ats).get("error")))
    elif hs.get("http_status") is None and hs.get("http_error"):
        fail("https", "TLS with %s:%s works but no HTTP answer came: %s" % (host, port, hs["http_error"]))
    else:
        checks["https"] = "ok"

    # trust: the verified handshake that completed (ATS first)
    if done is None:
        checks["trust"] = "unknown"
    elif done.get("verify_error"):
        fail("trust", "the chain of %s:%s does not validate against %s: %s"
             % (host, port, hs.get("anchors") or "the system trust store", done["verify_error"]))
    else:
        checks["trust"] = "ok"

    # the leaf
    leaf = hs.get("leaf")
    if not leaf or leaf.get("parse_error") or leaf.get("parser") is None:
        for req in ("signature_hash", "key_size", "hostname"):
            checks[req] = "unknown"
    else:
        sig = leaf.get("signature_hash")
        if sig in GOOD_HASHES or sig in HASHLESS:
            checks["signature_hash"] = "ok"
        elif sig and not sig.startswith("unknown"):
            fail("signature_hash", "the certificate of %s is signed with %s; ATS requires SHA-256 or better"
                 % (host, sig.upper()))
        else:
            checks["signature_hash"] = "unknown"
        ktype, bits = leaf.get("key_type"), leaf.get("key_bits")
        if ktype == "rsa" and bits:
            if bits >= MIN_RSA_BITS:
                checks["key_size"] = "ok"
            else:
                fail("key_size", "the certificate of %s has a %d-bit RSA key; ATS requires 2048 bits or more"
                     % (host, bits))
        elif ktype in ("ec", "ed25519", "ed448") and bits:
            if bits >= MIN_EC_BITS:
                checks["key_size"] = "ok"
            else:
                fail("key_size", "the certificate of %s has a %d-bit ECC key; ATS requires 256 bits or more"
                     % (host, bits))
        elif ktype and ktype not in ("rsa", "ec"):
            fail("key_size", "the certificate of %s has a %s key; ATS accepts RSA (2048 bits or more) or ECC "
                 "(256 bits or more)" % (host, ktype))
        else:
            checks["key_size"] = "unknown"
        if hostname_matches(host, leaf.get("san_dns") or [], leaf.get("san_ip") or []):
            checks["hostname"] = "ok"
        else:
            names = (leaf.get("san_dns") or []) + (leaf.get("san_ip") or [])
            fail("hostname", "%s is not in the certificate's subjectAltName (%s)"
                 % (host, ", ".join(names) if names else "none: devices ignore the common name"))

    # expiry: every certificate presented
    chain = hs.get("chain") or []
    if not chain or any(c.get("parse_error") for c in chain[:1]):
        checks["expiry"] = "unknown"
    else:
        bad = []
        for cert in chain:
            try:
                nb, na = _utc(cert["not_before"]), _utc(cert["not_after"])
            except (KeyError, TypeError, ValueError):
                continue
            if na < now:
                bad.append("'%s' expired on %s" % (cert.get("subject_cn"), cert["not_after"]))
            elif nb > now:
                bad.append("'%s' is not valid before %s" % (cert.get("subject_cn"), cert["not_before"]))
        if bad:
            fail("expiry", "; ".join(bad))
        else:
            checks["expiry"] = "ok"

    failures = [{"requirement": req, "detail": details[req], "remedy": REMEDIES[req].format(host=host, port=port)}
                for req in REQUIREMENTS if checks.get(req) == "failed"]
    return {req: checks.get(req, "unknown") for req in REQUIREMENTS}, failures


def verdict(host, port, checks, failures):
    """``(status, remedy)`` from evaluate()'s output: one line saying what to fix."""
    failed = [f["requirement"] for f in failures]
    if not failed:
        return "ok", ""
    if "https" in failed and checks.get("trust") == "unknown":
        status = "tls_failed"
    elif any(r in ATS_REQUIREMENTS for r in failed):
        status = "ats_failed"
    elif any(r in TRUST_REQUIREMENTS for r in failed):
        status = "untrusted"
    else:
        status = "tls_failed"
    remedy = "MDM server %s:%s: %s." % (host, port, "; ".join(f["remedy"] for f in failures))
    return status, remedy


# ---------------------------------------------------------------- handshakes
def _default_connect(address, port, timeout):
    return socket.create_connection((address, port), timeout=timeout)


_CONTEXTS = {}
_LOCK = threading.Lock()


def _context(profile, verify, ca_path):
    """Client contexts: ``ats`` (TLS 1.2+, Apple's suites), ``tls12_any``, ``any_version`` (TLS 1.0+)."""
    key = (profile, verify, ca_path)
    with _LOCK:
        ctx = _CONTEXTS.get(key)
        if ctx is None:
            ctx = _CONTEXTS[key] = _new_context(profile, verify, ca_path)
    return ctx


def _new_context(profile, verify, ca_path):
    import warnings
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False             # judged from the subjectAltName (hostname), not by OpenSSL
    if profile == "ats":
        ctx.set_ciphers(":".join(ATS_CIPHERS) + ":@SECLEVEL=0")
    else:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():        # TLSv1 is deprecated in Python: here on purpose, to see old servers
        warnings.simplefilter("ignore", DeprecationWarning)
        if profile == "any_version":
            try:
                ctx.minimum_version = ssl.TLSVersion.TLSv1
            except (ValueError, AttributeError, ssl.SSLError):
                pass
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # no ALPN: a server that knows only h2 might refuse a list without it; without ALPN every server speaks HTTP/1.1
    if verify:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.verify_flags |= _NO_CHECK_TIME
        if ca_path and os.path.isdir(ca_path):
            ctx.load_verify_locations(capath=ca_path)
        elif ca_path:
            ctx.load_verify_locations(cafile=ca_path)
            if not ctx.get_ca_certs():
                raise ValueError("no CA certificate in %s" % ca_path)
        else:
            ctx.load_default_certs()
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _NetworkError(Exception):
    def __init__(self, status, detail):
        Exception.__init__(self, detail)
        self.status = status
        self.detail = detail


def _tcp_status(exc):
    from ansible_collections.mdmops.apple.plugins.module_utils._probe import classify_oserror
    return classify_oserror(exc)


def _http_get(tls, host, port, path, timeout):
    """(status, error) of one GET over an established TLS socket."""
    authority = ("[%s]" % host if ":" in host else host) + ("" if port == 443 else ":%d" % port)
    path = path.replace(" ", "%20").replace("\r", "").replace("\n", "")
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mdmops.apple ats_check\r\nAccept: */*\r\n"
           "Connection: close\r\n\r\n" % (path, authority)).encode("latin-1", "replace")
    try:
        tls.settimeout(timeout)
        tls.sendall(req)
        buf = b""
        while b"\r\n" not in buf and len(buf) < 8192:
            chunk = tls.recv(4096)
            if not chunk:
                break
            buf += chunk
    except (OSError, ssl.SSLError) as exc:
        return None, "no HTTP answer: %s" % (exc or exc.__class__.__name__)
    line = buf.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = line.split(" ")
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return int(parts[1]), None
    return None, "the server did not answer HTTP (%r)" % line[:60] if line else "the server closed the connection"


def _handshake(profile, target, host, port, timeout, verify, ca_path, connect, http_path=None):
    """One connection and handshake.  Raises _NetworkError for TCP-level failures."""
    try:
        sock = connect(target, port, timeout)
    except (OSError, socket.timeout) as exc:
        raise _NetworkError(_tcp_status(exc), "TCP %s:%s: %s" % (host, port, str(exc) or "timed out"))
    rec = {"ok": False, "tls_version": None, "cipher": None, "verify_error": None, "error": None}
    try:
        sock.settimeout(timeout)
        tls = _context(profile, verify, ca_path).wrap_socket(
            sock, server_hostname=None if _is_ip(host) else host, do_handshake_on_connect=False)
        sock = tls
        tls.do_handshake()
        cipher = tls.cipher()
        from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import peer_chain
        der, _source = peer_chain(tls)
        rec.update(ok=True, tls_version=tls.version(), cipher=cipher[0] if cipher else None, chain_der=der)
        if http_path is not None:
            rec["http_status"], rec["http_error"] = _http_get(tls, host, port, http_path, timeout)
    except ssl.SSLCertVerificationError as exc:
        rec.update(verify_failed=True, verify_error=exc.verify_message or str(exc))
    except socket.timeout as exc:
        raise _NetworkError("timeout", "TCP %s:%s connected but the TLS handshake got no answer within %ss (%s)"
                            % (host, port, timeout, exc or "timed out"))
    except ssl.SSLError as exc:
        rec["error"] = "%s%s" % (exc.reason or exc.__class__.__name__,
                                 " (%s)" % exc.library if getattr(exc, "library", None) else "")
    except ConnectionResetError:
        rec["error"] = "connection reset during the handshake"
    except OSError as exc:
        if getattr(exc, "errno", None) == errno.ETIMEDOUT:
            raise _NetworkError("timeout", "TLS handshake with %s:%s: %s" % (host, port, exc))
        rec["error"] = "connection closed during the handshake: %s" % (exc or exc.__class__.__name__)
    finally:
        try:
            sock.close()
        except OSError:
            pass
    return rec


def _attempt(profile, target, host, port, timeout, ca_path, connect, http_path):
    """A verified handshake; if only verification failed, the same again unverified to read the chain."""
    rec = _handshake(profile, target, host, port, timeout, True, ca_path, connect, http_path)
    if rec.get("verify_failed"):
        again = _handshake(profile, target, host, port, timeout, False, None, connect, http_path)
        again["verify_error"] = rec["verify_error"]
        rec = again
    return rec


def ats_check(url, timeout=5.0, ca_path=None, connect=None, address=None):
    """Check one MDM/enrollment URL against Apple's ATS requirements.  See the module docstring.

    ``connect(address, port, timeout) -> socket`` (e.g. a proxy tunnel); with it and no ``address``
    the host name is handed to ``connect`` unresolved (the proxy resolves it).  ``address`` skips DNS.
    ValueError for a URL that is not https or has no host, or a ``ca_path`` that holds no CA certificate.
    """
    host, port, path = parse_url(url)
    try:  # the trust anchors are read once, before anything is sent: a bad ca_path is the caller's error
        _context("ats", True, ca_path)
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise ValueError("ca_path %r cannot be used as trust anchors (%s): give a PEM file or an OpenSSL hashed "
                         "directory of CA certificates" % (ca_path, exc))
    start = time.monotonic()
    result = {"url": url, "host": host, "port": port, "address": address, "status": None, "failures": [],
              "checks": {}, "tls_version": None, "cipher": None, "signature_hash": None, "key_type": None,
              "key_bits": None, "leaf_parser": None, "subject": None, "issuer": None, "not_after": None,
              "san": [], "http_status": None, "verify_error": None, "latency_ms": None, "detail": "",
              "remedy": ""}

    def finish():
        result["latency_ms"] = round((time.monotonic() - start) * 1000.0, 1)
        return result

    def network(status, detail):
        result.update(status=status, detail=detail,
                      remedy=NETWORK_REMEDIES.get(status, NETWORK_REMEDIES["error"]).format(host=host, port=port),
                      checks={req: "unknown" for req in REQUIREMENTS})
        result["checks"]["https"] = "failed"
        result["failures"] = [{"requirement": "https", "detail": detail, "remedy": result["remedy"]}]
        return finish()

    target = address
    if target is None:
        if _is_ip(host):
            target = result["address"] = host
        elif connect is not None:
            target = host
        else:
            from ansible_collections.mdmops.apple.plugins.module_utils._probe import resolve
            addrs, err = resolve(host)
            if not addrs:
                return network("dns_failed", "%s does not resolve: %s" % (host, err))
            target = result["address"] = addrs[0]
    connect = connect or _default_connect
    anchors = ("'%s'" % ca_path) if ca_path else "the system trust store"
    hs = {"anchors": anchors, "ats": None, "tls12_any": None, "any_version": None}
    try:
        hs["ats"] = _attempt("ats", target, host, port, timeout, ca_path, connect, path)
        if not hs["ats"]["ok"]:
            hs["tls12_any"] = _attempt("tls12_any", target, host, port, timeout, ca_path, connect, path)
            if not hs["tls12_any"]["ok"]:
                hs["any_version"] = _attempt("any_version", target, host, port, timeout, ca_path, connect, path)
    except _NetworkError as exc:
        return network(exc.status, exc.detail)
    done = next((r for r in (hs["ats"], hs["tls12_any"], hs["any_version"]) if r and r["ok"]), None)
    from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import parse_der
    if done is not None:
        der = done.get("chain_der") or []
        hs["chain"] = [parse_der(d) for d in der]
        hs["leaf"] = inspect_leaf(der[0]) if der else None
        hs["http_status"], hs["http_error"] = done.get("http_status"), done.get("http_error")
        leaf = hs["leaf"] or {}
        first = hs["chain"][0] if hs["chain"] else {}
        result.update(tls_version=done["tls_version"], cipher=done["cipher"], verify_error=done.get("verify_error"),
                      signature_hash=leaf.get("signature_hash"), key_type=leaf.get("key_type"),
                      key_bits=leaf.get("key_bits"), leaf_parser=leaf.get("parser"),
                      san=(leaf.get("san_dns") or []) + (leaf.get("san_ip") or []),
                      subject=first.get("subject"), issuer=first.get("issuer"), not_after=first.get("not_after"),
                      http_status=hs["http_status"])
    checks, failures = evaluate(host, port, hs)
    status, remedy = verdict(host, port, checks, failures)
    result.update(status=status, checks=checks, failures=failures, remedy=remedy)
    if status == "ok":
        result["detail"] = ("%s:%s meets App Transport Security: %s %s, certificate %s with %s %s-bit key, "
                            "chain trusted, HTTP %s" % (host, port, result["tls_version"], result["cipher"],
                                                        result["signature_hash"], result["key_type"],
                                                        result["key_bits"], result["http_status"]))
    else:
        result["detail"] = "%s:%s fails App Transport Security (%s): %s" % (
            host, port, ", ".join(f["requirement"] for f in failures),
            "; ".join(f["detail"] for f in failures))
    return finish()

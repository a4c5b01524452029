# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent reachability probes: DNS, then TCP connect or a UDP exchange (or a TLS handshake).

Pure Python (standard library only), no Ansible imports.  Each probe is
classified so a human can act on it: a refused TCP connection, a silent drop
(timeout), a local firewall (EPERM/EACCES) and a missing route are different
problems with different owners.  With ``tls``, TCP endpoints on TLS ports get
the TLS layer (``_apns._tls.tls_probe``) instead of a bare connect.  With
``proxy``, TCP and TLS probes go through an HTTP CONNECT proxy
(``_apns._proxy``), which then also resolves the names.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

# Status of one probe, from best to worst.
OK = "ok"
STATUSES = ("ok", "no_answer", "skipped", "dns_failed", "intercepted", "untrusted", "tls_failed",
            "proxy_auth_required", "proxy_refused", "refused", "timeout", "unreachable", "proxy_unreachable",
            "blocked_locally", "error")
TLS_KEYS = ("sni", "alpn_offered", "alpn", "tls_version", "cipher", "chain", "chain_source", "root", "chain_verified",
            "verify_error", "detail", "remedy")


def concrete_name(host, names=None, catalog_names=None):
    """The name to resolve for a catalog host, or None for an unmapped wildcard.

    ``names`` (the user's) win over ``catalog_names`` (the rows' ``probe_name``,
    by default those of the bundled catalog).
    """
    if not host.startswith("*."):
        return host
    names = names or {}
    if catalog_names is None:
        from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
        catalog_names = load_bundled().probe_names()
    return names.get(host) or catalog_names.get(host)


def _ntp_request():
    # LI=0, VN=4, mode=3 (client), then zeros; 48 bytes.
    return struct.pack("!B47x", (0 << 6) | (4 << 3) | 3)


def resolve(name, family=0, timeout=None):
    """Return ``(addresses, error)``; addresses keep getaddrinfo's order, IPv4 first."""
    try:
        infos = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return [], "dns: %s" % (exc.strerror or exc)
    except (OSError, UnicodeError) as exc:
        return [], "dns: %s" % exc
    addrs = []
    for info in infos:
        addr = info[4][0]
        if addr not in addrs:
            addrs.append(addr)
    addrs.sort(key=lambda a: ":" in a)
    return addrs, None


def classify_oserror(exc):
    proxy_status = getattr(exc, "proxy_status", None)     # _apns._proxy.ProxyError: already classified
    if proxy_status:
        return proxy_status
    code = getattr(exc, "errno", None)
    if isinstance(exc, socket.timeout) or code in (errno.ETIMEDOUT,):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return "refused"
    if code in (errno.EPERM, errno.EACCES):
        return "blocked_locally"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN):
        return "unreachable"
    return "error"


def tcp_connect(address, port, timeout):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    start = time.monotonic()
    try:
        sock.connect((address, port))
        return OK, round((time.monotonic() - start) * 1000.0, 1), None
    except (OSError, socket.timeout) as exc:
        return classify_oserror(exc), round((time.monotonic() - start) * 1000.0, 1), str(exc) or "timed out"
    finally:
        sock.close()


def udp_exchange(address, port, timeout):
    """Send one datagram (an NTP request on 123) and wait for any answer.

    UDP has no handshake: no answer is inconclusive (``no_answer``), not a failure.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    start = time.monotonic()
    try:
        sock.connect((address, port))
        sock.send(_ntp_request() if port == 123 else b"\x00")
        sock.recv(2048)
        return OK, round((time.monotonic() - start) * 1000.0, 1), None
    except socket.timeout:
        return "no_answer", round((time.monotonic() - start) * 1000.0, 1), "no UDP answer (inconclusive)"
    except OSError as exc:
        return classify_oserror(exc), round((time.monotonic() - start) * 1000.0, 1), str(exc)
    finally:
        sock.close()


def _tls_job(tls_options, connect=None):
    from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import tls_probe

    def run(name, address, port, timeout):
        res = tls_probe(name, port, address=address, timeout=timeout, connect=connect, **tls_options)
        tls = dict((k, res[k]) for k in TLS_KEYS)
        return res["status"], res["latency_ms"], None if res["status"] == OK else res["detail"], tls
    return run


def _tunnel_job(connect):
    """The TCP layer through a proxy: a CONNECT tunnel opened (and closed) is ``ok``."""
    def run(name, port, timeout):
        start = time.monotonic()
        try:
            sock = connect(name, port, timeout)
        except (OSError, socket.timeout) as exc:
            return (classify_oserror(exc), round((time.monotonic() - start) * 1000.0, 1), str(exc) or "timed out",
                    getattr(exc, "remedy", None))
        sock.close()
        return OK, round((time.monotonic() - start) * 1000.0, 1), None, ""
    return run


def probe_all(endpoints, names=None, timeout=3.0, concurrency=32, ip_version=0, catalog_names=None, tls=None,
              proxy=None):
    """Probe catalog endpoints (dicts with service, host, port, protocol).

    Names are resolved once each; endpoints sharing a (name, port, protocol)
    are probed once.  Results keep the order of ``endpoints``.
    ``ip_version`` is 4, 6 or 0 (either: the first address getaddrinfo gives).
    ``tls``: None (TCP connect only) or the TLS layer's options (a dict with
    ``expected_roots``, ``ca_path``): TCP endpoints on a TLS port then get a
    handshake (SNI and ALPN from the name), layer ``tls``, and a ``tls`` record.
    ``proxy`` (``http://[user:pass@]host:port`` or a ``_proxy.ProxyConfig``):
    TCP and TLS probes go through that HTTP CONNECT proxy.  The proxy resolves
    the names (CONNECT to the name: local DNS is not used, ``addresses`` stays
    empty and ``resolved_by`` says ``proxy``; ``ip_version`` does not apply);
    the TCP layer is a tunnel opened, the TLS layer a handshake inside it.  A
    proxy's failure is one of ``proxy_refused``, ``proxy_auth_required``,
    ``proxy_unreachable``, or what the proxy reports of the target (``refused``,
    ``timeout``, ``unreachable``, ``dns_failed``); those results get a ``remedy``.
    UDP cannot cross an HTTP proxy: UDP endpoints are probed directly
    (``proxy`` null, ``resolved_by`` ``local``).
    """
    connect = None
    if proxy is not None:
        from ansible_collections.mdmops.apple.plugins.module_utils._apns._proxy import connector
        connect = connector(proxy)
    if tls is not None:
        from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import is_tls_port
        tls_run = _tls_job(tls, connect)
    else:
        is_tls_port = tls_run = None
    tunnel_run = _tunnel_job(connect) if connect else None

    def layer(ep):
        if ep["protocol"] != "tcp":
            return ep["protocol"]
        return "tls" if tls_run and is_tls_port(ep["port"]) else "tcp"

    def proxied(ep):
        return connect is not None and ep["protocol"] == "tcp"

    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(ip_version, 0)
    concrete = [concrete_name(ep["host"], names, catalog_names) for ep in endpoints]
    workers = max(1, min(int(concurrency), 256))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        unique_names = sorted({n for n, ep in zip(concrete, endpoints) if n and not proxied(ep)})
        resolved = dict(zip(unique_names, pool.map(lambda n: resolve(n, family), unique_names)))
        jobs = {}

        def job_key(ep, name, lay):
            if proxied(ep):
                return (name, ep["port"], ep["protocol"], lay)
            # a TLS probe depends on the name too (SNI, ALPN, interception check)
            return (resolved[name][0][0], ep["port"], ep["protocol"], name if lay == "tls" else None)

        for ep, name in zip(endpoints, concrete):
            if not name or not (proxied(ep) or resolved[name][0]):
                continue
            lay = layer(ep)
            key = job_key(ep, name, lay)
            if key in jobs:
                continue
            if lay == "tls":
                jobs[key] = pool.submit(tls_run, name, None if proxied(ep) else key[0], ep["port"], timeout)
            elif proxied(ep):
                jobs[key] = pool.submit(tunnel_run, name, ep["port"], timeout)
            else:
                fn = tcp_connect if ep["protocol"] == "tcp" else udp_exchange
                jobs[key] = pool.submit(fn, key[0], key[1], timeout)
        results = []
        for ep, name in zip(endpoints, concrete):
            lay = layer(ep)
            res = {"service": ep["service"], "host": ep["host"], "name": name, "port": ep["port"],
                   "protocol": ep["protocol"], "addresses": [], "address": None, "status": None,
                   "latency_ms": None, "error": None}
            if tls_run:
                res.update(layer=lay, tls=None)
            if connect is not None:
                res.update(proxy=connect.proxy.display if proxied(ep) else None,
                           resolved_by="proxy" if proxied(ep) else "local")
            if not name:
                res.update(status="skipped", error="wildcard host: give a concrete name for it in `names`")
            elif proxied(ep):
                out = jobs[job_key(ep, name, lay)].result()
                res.update(status=out[0], latency_ms=out[1], error=out[2])
                if lay == "tls":
                    res["tls"] = out[3]
                    res["remedy"] = out[3]["remedy"]
                else:
                    res["remedy"] = out[3] or ""
            else:
                addrs, err = resolved[name]
                res["addresses"] = addrs
                if err:
                    res.update(status="dns_failed", error=err)
                else:
                    out = jobs[job_key(ep, name, lay)].result()
                    res.update(address=addrs[0], status=out[0], latency_ms=out[1], error=out[2])
                    if lay == "tls":
                        res["tls"] = out[3]
            results.append(res)
    return results


def summarise(results):
    counts = dict((s, 0) for s in STATUSES)
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return dict((k, v) for k, v in counts.items() if v)


def table(results):
    """Fixed-width lines for humans (the demo prints them); PROTO says ``tls`` for a TLS-layer result."""
    lines = ["%-44s %-6s %-5s %-40s %-19s %s" % ("NAME", "PROTO", "PORT", "ADDRESS", "STATUS", "MS")]
    for r in results:
        address = r["address"] or ("(by the proxy)" if r.get("resolved_by") == "proxy" else "-")
        lines.append("%-44s %-6s %-5s %-40s %-19s %s" % (
            (r["name"] or r["host"])[:44], r.get("layer") or r["protocol"], r["port"], address[:40], r["status"],
            "" if r["latency_ms"] is None else r["latency_ms"]))
    return lines

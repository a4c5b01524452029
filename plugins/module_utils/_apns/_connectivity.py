# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The push path, end to end: selection -> endpoints -> layers -> probes -> summary, ok, fail_on.

The orchestrator behind the ``push_connectivity`` module.  Pure Python, no
Ansible imports; the network work is done by the engines that exist for each
layer (``_probe.resolve``/``tcp_connect``/``udp_exchange``, ``_tls.tls_probe``,
``_provider.provider_probe``, ``_ats.ats_check``, the ``_proxy`` tunnel), so
this file only decides *what* to probe, in which order, and how to report it.

Layers, in the order a connection goes through them::

    dns -> tcp | udp -> tls -> provider          (each catalog or extra endpoint)
    ats                                           (each MDM URL)

* one ``dns`` probe per (service, name): the name resolved, its addresses;
* one ``tcp`` (or ``udp``) probe per endpoint: a connection to the first address;
* one ``tls`` probe per endpoint on a TLS port (443, 2197, 5223, 8443): the
  handshake with the SNI and ALPN of its role, chain, HTTPS interception;
* one ``provider`` probe per APNs provider-API endpoint (``api.push.apple.com``,
  ``api.sandbox.push.apple.com`` on 443 and 2197) when a push certificate is
  given: one HTTP/2 ``POST /3/device/<dummy>``; at most one request per
  endpoint per run, whatever the selection repeats;
* one ``ats`` probe per MDM URL: App Transport Security requirements.

A layer runs only when the layers before it passed for that endpoint: a name
that does not resolve, a port that refuses or a chain that is re-signed gives
one finding, and the later layers of that endpoint are ``skipped`` (with a
``detail`` that names the layer that stopped them), so one broken thing is
reported once, at the layer that is broken, and a blackholed endpoint costs
one timeout, not one per layer.

Every probe has the same keys (``service, host, name, address, port, layer,
status, latency_ms, remedy, detail``) plus the layer's record (``addresses``
for dns, ``tls``, ``provider``, ``ats``), which is the input the report
writers (``plugin_utils/_report``) read as is.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

LAYERS = ("dns", "tcp", "udp", "tls", "provider", "ats")
DEFAULT_LAYERS = ("dns", "tcp", "tls")
ENVIRONMENTS = {"production": "api.push.apple.com", "sandbox": "api.sandbox.push.apple.com"}
PROVIDER_PORTS = (443, 2197)
# Statuses that are not a failure: success, inconclusive (UDP without answer), not run.
BENIGN = ("ok", "no_answer", "skipped")
# The status vocabulary of every layer (best to worst, roughly): fail_on is checked against it.
STATUSES = ("ok", "no_answer", "skipped", "dns_failed", "intercepted", "untrusted", "tls_failed", "ats_failed",
            "certificate_rejected", "wrong_environment", "topic_disallowed", "throttled", "apns_error",
            "proxy_refused", "proxy_auth_required", "proxy_unreachable", "refused", "timeout", "unreachable",
            "blocked_locally", "error")
FAIL_ON_ANY = "any"
# Catalog service used for the probes of extra endpoints and of MDM URLs.
ENDPOINT_SERVICE = "endpoints"
MDM_URL_SERVICE = "mdm_server"

MAX_ENDPOINTS = 1000
_HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
                      r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$")
_SERVICE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

DNS_REMEDY = ("{name} does not resolve from this host: check its resolvers, and that DNS filtering or a split horizon "
              "does not hide Apple's names.")
TCP_REMEDIES = {
    "refused": "The connection was refused (reset or rejected): open {protocol} {port} to {name} on the firewalls "
               "between this host and Apple.",
    "timeout": "No answer within the timeout: a firewall silently drops {protocol} {port} to {name}; allow it.",
    "unreachable": "No route to {name}: check this host's routing and the upstream firewall's ICMP rejects.",
    "blocked_locally": "This host's own firewall refused to send to {name}:{port}; allow it locally.",
    "no_answer": "No UDP answer (inconclusive): if {name} must answer on {port}, allow UDP {port} both ways.",
    "error": "Unexpected error connecting to {name}:{port}; see the detail.",
    "proxy_refused": "The proxy refused to open a tunnel to {name}:{port}: allow CONNECT to {name} on port {port} "
                     "in the proxy's rules.",
    "proxy_auth_required": ("The proxy asks for credentials: give them in proxy_username and proxy_password "
                            "(never in the proxy URL)."),
    "proxy_unreachable": "The proxy itself did not answer: check the proxy address and port, and that this host may "
                         "reach it.",
}


class ConnectivityError(ValueError):
    """Bad input: the message says what was wrong and what to give instead."""


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------- options
def check_layers(layers, certificate_given=False, mdm_urls=None, proxy=None):
    """The layers to run, in connection order.

    ``layers`` None means the default: dns, tcp, tls, plus ``provider`` when a
    certificate is given and ``ats`` when MDM URLs are; behind a proxy the
    default leaves ``dns`` out (the proxy resolves the names).  An explicit
    list is taken as given (checked, sorted into connection order).
    """
    if layers is None:
        out = [lay for lay in DEFAULT_LAYERS if not (proxy and lay == "dns")]
        if certificate_given:
            out.append("provider")
        if mdm_urls:
            out.append("ats")
        return out
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ConnectivityError("layers is empty: list at least one of %s (or leave it unset for %s)"
                                % (", ".join(LAYERS), ", ".join(DEFAULT_LAYERS)))
    wanted = []
    for lay in layers:
        if lay not in LAYERS:
            raise ConnectivityError("unknown layer %s in layers: valid layers are %s" % (_short(lay), ", ".join(LAYERS)))
        if lay not in wanted:
            wanted.append(lay)
    if "provider" in wanted and not certificate_given:
        raise ConnectivityError("the provider layer needs the push certificate and its key: give certificate_path or "
                                "certificate_content (with privatekey_path or privatekey_content unless the "
                                "certificate input holds the key), or drop provider from layers")
    if "ats" in wanted and not mdm_urls:
        raise ConnectivityError("the ats layer checks the MDM server's URLs: give them in mdm_urls, or drop ats from "
                                "layers")
    if mdm_urls and "ats" not in wanted:
        raise ConnectivityError("mdm_urls is given but layers does not include ats: add ats to layers (or leave "
                                "layers unset), or drop mdm_urls")
    return [lay for lay in LAYERS if lay in wanted]


def check_fail_on(fail_on):
    """``fail_on``: statuses, layers or ``any``; returns the list (deduplicated)."""
    if fail_on is None:
        return []
    if isinstance(fail_on, str):
        fail_on = [fail_on]
    out = []
    for item in fail_on:
        if not isinstance(item, str) or not (item in STATUSES or item in LAYERS or item == FAIL_ON_ANY):
            raise ConnectivityError("fail_on: %s is neither a status (%s), a layer (%s) nor 'any'"
                                    % (_short(item), ", ".join(s for s in STATUSES if s not in BENIGN),
                                       ", ".join(LAYERS)))
        if item in BENIGN:
            raise ConnectivityError("fail_on: %s is not a finding (ok, no_answer and skipped never fail); name the "
                                    "statuses or layers that should fail the task" % item)
        if item not in out:
            out.append(item)
    return out


def is_finding(probe, fail_on):
    """Whether ``probe`` is one of the findings ``fail_on`` names."""
    if not fail_on or probe["status"] in BENIGN:
        return False
    return FAIL_ON_ANY in fail_on or probe["status"] in fail_on or probe["layer"] in fail_on


def _port(value, where):
    if isinstance(value, bool):
        raise ConnectivityError("%s: port %s is not a port number (1 to 65535)" % (where, _short(value)))
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConnectivityError("%s: port %s is not a port number (1 to 65535)" % (where, _short(value)))
    if isinstance(value, float) and value != port or not 1 <= port <= 65535:
        raise ConnectivityError("%s: port %s is not a port number (1 to 65535)" % (where, _short(value)))
    return port


def _address(value, where):
    import ipaddress
    try:
        return str(ipaddress.ip_address(str(value).strip("[]")))
    except ValueError:
        raise ConnectivityError("%s: address %s is not an IPv4 or IPv6 address" % (where, _short(value)))


def _host(value, where):
    if not isinstance(value, str) or not value.strip():
        raise ConnectivityError("%s: host %s is not a host name" % (where, _short(value)))
    host = value.strip().lower()
    if host.startswith("[") or ":" in host:
        return _address(host, where)
    if host.startswith("*"):
        raise ConnectivityError("%s: %s is a wildcard; give a concrete name it covers (for example "
                                "1-courier.push.apple.com for *.push.apple.com)" % (where, _short(value)))
    if not _HOST_RE.match(host):
        raise ConnectivityError("%s: %s is not a host name or an address" % (where, _short(value)))
    return host.rstrip(".")


def parse_endpoint(item, index=0):
    """One extra endpoint: ``"host:port"`` (``"[v6]:port"``) or ``{host, port}`` (optionally ``address``: the
    address to connect to instead of resolving ``host``; ``service``: the label in results; ``tls``: run the tls
    layer on this port even if it is not a usual TLS port, or not on it).

    Returns ``{service, host, port, protocol, address, tls}``; raises ConnectivityError.
    """
    where = "endpoints[%d]" % index
    if isinstance(item, str):
        text = item.strip()
        m = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", text) or re.match(r"^([^:\[\]\s]+):(\d+)$", text)
        if not m:
            raise ConnectivityError("%s: %s is not 'host:port' (an IPv6 address in brackets: '[2001:db8::1]:443'), "
                                    "or give a mapping {host: ..., port: ...}" % (where, _short(item)))
        return {"service": ENDPOINT_SERVICE, "host": _host(m.group(1), where), "port": _port(m.group(2), where),
                "protocol": "tcp", "address": None, "tls": None}
    if isinstance(item, dict):
        unknown = sorted(set(item) - {"host", "port", "address", "service", "tls", "protocol"})
        if unknown:
            raise ConnectivityError("%s: unknown key(s) %s; an endpoint takes host, port and optionally address, "
                                    "service, protocol, tls" % (where, ", ".join(map(str, unknown))))
        if "host" not in item or "port" not in item:
            raise ConnectivityError("%s: an endpoint mapping needs host and port, got %s" % (where, _short(item)))
        service = item.get("service") or ENDPOINT_SERVICE
        if not isinstance(service, str) or not _SERVICE_RE.match(service):
            raise ConnectivityError("%s: service %s must be a short label (letters, digits, _ . : -)"
                                    % (where, _short(service)))
        protocol = item.get("protocol") or "tcp"
        if protocol not in ("tcp", "udp"):
            raise ConnectivityError("%s: protocol %s must be tcp or udp" % (where, _short(protocol)))
        tls = item.get("tls")
        if tls is not None and not isinstance(tls, bool):
            raise ConnectivityError("%s: tls must be true or false, got %s" % (where, _short(tls)))
        if tls and protocol != "tcp":
            raise ConnectivityError("%s: tls needs protocol tcp" % where)
        address = item.get("address")
        return {"service": service, "host": _host(item["host"], where), "port": _port(item["port"], where),
                "protocol": protocol, "address": _address(address, where) if address not in (None, "") else None,
                "tls": tls}
    raise ConnectivityError("%s: %s is neither 'host:port' nor a mapping {host, port}" % (where, _short(item)))


def parse_endpoints(items):
    if items is None:
        return []
    if not isinstance(items, (list, tuple)):
        raise ConnectivityError("endpoints must be a list of 'host:port' strings or {host, port} mappings")
    if len(items) > MAX_ENDPOINTS:
        raise ConnectivityError("endpoints: %d given, at most %d" % (len(items), MAX_ENDPOINTS))
    return [parse_endpoint(item, i) for i, item in enumerate(items)]


def parse_mdm_url(url, index=0):
    """``(url, host, port)`` of an MDM URL (https only, as ``_ats.parse_url`` reads it); raises ConnectivityError."""
    from ansible_collections.mdmops.apple.plugins.module_utils._apns._ats import parse_url
    try:
        host, port, _path = parse_url(url)
    except ValueError as exc:
        raise ConnectivityError("mdm_urls[%d]: %s" % (index, exc))
    return url.strip(), host.lower(), port


def default_services(catalog):
    """The push services: every service with a row on Apple's APNs ranges (the catalog's ``apns_range``), i.e.
    the device-management table (``*.push.apple.com``) and the provider API (``api.push.apple.com``)."""
    out = []
    for e in catalog.entries:
        if e.get("apns_range") and not e.get("retired") and e["service"] not in out:
            out.append(e["service"])
    return out


def catalog_targets(catalog, environment="production", layers=DEFAULT_LAYERS):
    """Endpoints of a (selected) catalog as targets.

    Wildcard hosts are probed through the row's ``probe_name`` (unmapped ones
    are kept, ``name`` None: reported skipped).  The provider-API rows
    (``api.push.apple.com``) are probed at the host of ``environment``.
    UDP rows are kept only when the ``udp`` layer runs.
    """
    names = catalog.probe_names()
    provider_host = ENVIRONMENTS[environment]
    out = []
    for ep in catalog.endpoints():
        if ep["protocol"] == "udp" and "udp" not in layers:
            continue
        host = ep["host"]
        if host in ENVIRONMENTS.values():
            host = provider_host
        name = names.get(host) if host.startswith("*.") else host
        out.append({"service": ep["service"], "host": host, "name": name, "port": ep["port"],
                    "protocol": ep["protocol"], "address": None, "tls": None})
    return out


def extra_targets(endpoints, layers=DEFAULT_LAYERS):
    out = []
    for ep in endpoints:
        if ep["protocol"] == "udp" and "udp" not in layers:
            raise ConnectivityError("endpoint %s:%s is udp: add udp to layers to probe it" % (ep["host"], ep["port"]))
        out.append(dict(ep, name=ep["host"]))
    return out


def plan_layers(target, layers):
    """The connection layers of one target after dns: e.g. ``["tcp", "tls", "provider"]``."""
    from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import is_tls_port
    out = []
    if target["protocol"] == "udp":
        return ["udp"] if "udp" in layers else []
    if "tcp" in layers:
        out.append("tcp")
    tls_port = target["tls"] if target["tls"] is not None else is_tls_port(target["port"])
    if "tls" in layers and tls_port:
        out.append("tls")
    if "provider" in layers and target["name"] in ENVIRONMENTS.values() and target["port"] in PROVIDER_PORTS:
        out.append("provider")
    return out


# ---------------------------------------------------------------- results
def probe_record(target, layer, **kw):
    rec = {"service": target["service"], "host": target["host"], "name": target.get("name"),
           "address": None, "port": target.get("port"), "layer": layer, "status": None, "latency_ms": None,
           "remedy": "", "detail": ""}
    rec.update(kw)
    return rec


def skipped(target, layer, why, address=None):
    return probe_record(target, layer, status="skipped", address=address, detail="not run: %s" % why)


def summarise(probes, fail_on=None):
    """Counts: total, ok, not_ok, inconclusive, failed (the fail_on findings), by status, by layer, by service
    and layer (service -> layer -> status -> count)."""
    by_status, by_layer, per = {}, {}, {}
    for p in probes:
        s = p["status"]
        by_status[s] = by_status.get(s, 0) + 1
        layer = by_layer.setdefault(p["layer"], {})
        layer[s] = layer.get(s, 0) + 1
        cell = per.setdefault(p["service"], {}).setdefault(p["layer"], {})
        cell[s] = cell.get(s, 0) + 1
    return {
        "total": len(probes),
        "ok": by_status.get("ok", 0),
        "not_ok": sum(1 for p in probes if p["status"] not in BENIGN),
        "inconclusive": sum(1 for p in probes if p["status"] in BENIGN and p["status"] != "ok"),
        "failed": sum(1 for p in probes if is_finding(p, fail_on)),
        "by_status": by_status,
        "by_layer": by_layer,
        "by_service_layer": per,
    }


def endpoint_label(probe):
    name = probe.get("name") or probe.get("host") or ""
    if ":" in name:
        name = "[%s]" % name
    return name if probe.get("port") is None else "%s:%s" % (name, probe["port"])


def remedies(probes):
    """One line per distinct failed (endpoint, layer): ``host:port layer status: remedy``."""
    seen, out = set(), []
    for p in probes:
        if p["status"] in BENIGN or not p.get("remedy"):
            continue
        line = "%s %s %s: %s" % (endpoint_label(p), p["layer"], p["status"], p["remedy"])
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


def failure_message(findings, probes, fail_on):
    """The task's msg when fail_on names findings: HTTPS inspection first (Apple's must-not), then the list."""
    inspected = [p for p in findings if p["status"] == "intercepted"]
    head = inspected[0]["detail"].rstrip(".") + ". " if inspected else ""
    items = ", ".join("%s %s %s" % (endpoint_label(p), p["layer"], p["status"]) for p in findings[:10])
    more = " (and %d more)" % (len(findings) - 10) if len(findings) > 10 else ""
    first = next((p for p in findings if p.get("remedy")), None)
    fix = " First fix: %s" % first["remedy"] if first else ""
    return "%s%d of %d probes are findings of fail_on [%s]: %s%s.%s" % (
        head, len(findings), len(probes), ", ".join(fail_on), items, more, fix)


def table(probes):
    """Fixed-width lines for humans."""
    lines = ["%-18s %-40s %-8s %-24s %-20s %s" % ("SERVICE", "ENDPOINT", "LAYER", "ADDRESS", "STATUS", "MS")]
    for p in probes:
        lines.append("%-18s %-40s %-8s %-24s %-20s %s" % (
            (p["service"] or "")[:18], endpoint_label(p)[:40], p["layer"], (p.get("address") or "-")[:24],
            p["status"], "" if p["latency_ms"] is None else p["latency_ms"]))
    return lines


# ---------------------------------------------------------------- engines
def _ms(start):
    return round((time.monotonic() - start) * 1000.0, 1)


class Engines(object):
    """The network work of each layer, one method each (tests may hand in another object with the same methods).

    ``options``: timeout, expected_roots, ca_path, proxy (a ProxyConfig or None),
    cert_pem, key_pem, topic.
    """

    def __init__(self, timeout=3.0, expected_roots=None, ca_path=None, proxy=None, cert_pem=None, key_pem=None,
                 topic=None):
        self.timeout = timeout
        self.expected_roots = expected_roots
        self.ca_path = ca_path
        self.proxy = proxy
        self.cert_pem, self.key_pem, self.topic = cert_pem, key_pem, topic
        self._connect = None
        self.proxy_display = None
        if proxy is not None:
            from ansible_collections.mdmops.apple.plugins.module_utils._apns._proxy import connector
            self._connect = connector(proxy)
            self.proxy_display = self._connect.proxy.display

    def resolve(self, name):
        from ansible_collections.mdmops.apple.plugins.module_utils._probe import resolve
        return resolve(name)

    def tcp(self, name, address, port):
        """(status, latency_ms, detail, remedy or None for the default of the status)."""
        if self._connect is None:
            from ansible_collections.mdmops.apple.plugins.module_utils._probe import tcp_connect
            status, latency, error = tcp_connect(address, port, self.timeout)
            return status, latency, ("TCP %s:%s (%s): %s" % (name, port, address, error) if error
                                     else "TCP %s:%s (%s) connected" % (name, port, address)), None
        start = time.monotonic()
        target = address or name
        try:
            sock = self._connect(target, port, self.timeout)
        except (OSError, socket.timeout) as exc:
            status = getattr(exc, "status", None)
            if not status:
                from ansible_collections.mdmops.apple.plugins.module_utils._probe import classify_oserror
                status = classify_oserror(exc)
            return (status, _ms(start), getattr(exc, "detail", None) or "CONNECT %s:%s through %s: %s" % (
                target, port, self.proxy_display, exc or "timed out"), getattr(exc, "remedy", None) or None)
        try:
            sock.close()
        except OSError:
            pass
        return "ok", _ms(start), "CONNECT %s:%s through %s: tunnel open%s" % (
            target, port, self.proxy_display, "" if address else " (the proxy resolved the name)"), None

    def udp(self, name, address, port):
        """UDP cannot cross an HTTP proxy: always direct."""
        from ansible_collections.mdmops.apple.plugins.module_utils._probe import udp_exchange
        status, latency, error = udp_exchange(address, port, self.timeout)
        return status, latency, ("UDP %s:%s (%s): %s" % (name, port, address, error) if error
                                 else "UDP %s:%s (%s) answered" % (name, port, address)), None

    def tls(self, name, address, port):
        from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import tls_probe
        kw = dict(address=address, timeout=self.timeout, ca_path=self.ca_path)
        if self.expected_roots is not None:
            kw["expected_roots"] = self.expected_roots
        if self._connect is not None:
            kw["connect"] = self._connect
        return tls_probe(name, port, **kw)

    def provider(self, name, address, port):
        from ansible_collections.mdmops.apple.plugins.module_utils._apns._provider import provider_probe
        kw = dict(address=address, cert_pem=self.cert_pem, key_pem=self.key_pem, topic=self.topic,
                  timeout=self.timeout, ca_path=self.ca_path)
        if self.expected_roots is not None:
            kw["expected_roots"] = self.expected_roots
        if self._connect is not None:
            kw["proxy"] = self._connect.proxy
        return provider_probe(name, port, **kw)

    def ats(self, url, address=None):
        from ansible_collections.mdmops.apple.plugins.module_utils._apns._ats import ats_check
        kw = dict(timeout=self.timeout, ca_path=self.ca_path, address=address)
        if self._connect is not None:
            kw["connect"] = self._connect
        return ats_check(url, **kw)


class _Memo(object):
    """Run each keyed job once, whoever asks first; later askers wait for the same result (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._events = {}
        self._values = {}

    def get(self, key, fn):
        with self._lock:
            event = self._events.get(key)
            owner = event is None
            if owner:
                event = self._events[key] = threading.Event()
        if owner:
            try:
                self._values[key] = (True, fn())
            except BaseException as exc:  # handed to every asker, raised in each
                self._values[key] = (False, exc)
            finally:
                event.set()
        else:
            event.wait()
        ok, value = self._values[key]
        if not ok:
            raise value
        return value


TLS_KEYS = ("sni", "alpn_offered", "alpn", "tls_version", "cipher", "chain", "chain_source", "root", "chain_verified",
            "verify_error", "detail", "remedy")
PROVIDER_KEYS = ("http_status", "reason", "apns_id", "topic", "environment", "http_version", "tls_version", "root")
ATS_KEYS = ("url", "failures", "checks", "tls_version", "cipher", "signature_hash", "key_type", "key_bits", "subject",
            "issuer", "not_after", "san", "http_status", "verify_error")


def _fmt(template, name, port, protocol="tcp"):
    return template.format(name=name, port=port, protocol=protocol.upper())


def _run_chain(target, chain, engines, memo, address, dns_note):
    """Probes of one target's connection layers, in order; stops (skipped) after the first that is not ok."""
    out = []
    name, port = target["name"], target["port"]
    stop = None
    for layer in chain:
        if stop:
            out.append(skipped(target, layer, stop, address))
            continue
        key = (layer, name, address, port)
        if layer in ("tcp", "udp"):
            status, latency, detail, fix = memo.get(key, lambda lay=layer: getattr(engines, lay)(name, address, port))
            template = TCP_REMEDIES.get(status)
            if status == "ok":
                fix = ""
            elif not fix:
                fix = _fmt(template, name, port, layer) if template else ""
            rec = probe_record(target, layer, address=address, status=status, latency_ms=latency, remedy=fix,
                               detail=detail + dns_note)
        elif layer == "tls":
            res = memo.get(key, lambda: engines.tls(name, address, port))
            rec = probe_record(target, layer, address=address, status=res["status"], latency_ms=res["latency_ms"],
                               remedy=res.get("remedy") or "", detail=res.get("detail") or "")
            rec["tls"] = dict((k, res.get(k)) for k in TLS_KEYS)
        else:  # provider
            res = memo.get(key, lambda: engines.provider(name, address, port))
            rec = probe_record(target, layer, address=address, status=res["status"], latency_ms=res["latency_ms"],
                               remedy=res.get("remedy") or "", detail=res.get("detail") or "",
                               topic=res.get("topic"), environment=res.get("environment"))
            rec["provider"] = dict((k, res.get(k)) for k in PROVIDER_KEYS)
        if getattr(engines, "proxy_display", None) and layer != "udp":
            rec["proxy"] = engines.proxy_display
        out.append(rec)
        if rec["status"] != "ok" and not (layer == "udp" and rec["status"] == "no_answer"):
            stop = "%s %s" % (layer, rec["status"])
    return out


def _dns_probe(target, resolved, latency):
    addrs, err = resolved
    if err:
        return probe_record(target, "dns", port=None, status="dns_failed", latency_ms=latency, addresses=[],
                            remedy=DNS_REMEDY.format(name=target["name"]), detail="%s: %s" % (target["name"], err))
    return probe_record(target, "dns", port=None, address=addrs[0], status="ok", latency_ms=latency,
                        addresses=addrs, detail="%s resolves to %s" % (target["name"], ", ".join(addrs[:8])))


def run(targets, layers, engines, concurrency=32, mdm_urls=(), proxied=False):
    """Probe ``targets`` (see :func:`catalog_targets`, :func:`extra_targets`) through ``layers`` with ``engines``.

    Returns the probes, in target order (dns first for each target's name,
    then its connection layers), then the ats probes of ``mdm_urls``
    (``[(url, host, port)]``).  ``proxied``: connections go through a proxy
    that resolves the names, so the dns layer (when asked) is reported but
    does not stop the later layers, and no local address is used.
    """
    targets = _unique(targets)
    workers = max(1, min(int(concurrency), 256))
    memo = _Memo()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # names to resolve: those of targets without a pinned address (needed to connect), and every name when the
        # dns layer is asked for (reported)
        def direct(t):
            return not proxied or t["protocol"] == "udp"
        need = sorted({t["name"] for t in targets if t["name"] and (
            "dns" in layers or (direct(t) and not t["address"] and plan_layers(t, layers)))})

        def timed_resolve(n):
            start = time.monotonic()
            res = engines.resolve(n)
            return res, _ms(start)
        resolved = dict(zip(need, pool.map(timed_resolve, need)))

        jobs = []
        for t in targets:
            dns = []
            chain = plan_layers(t, layers)
            if not t["name"]:
                why = "wildcard host %s has no concrete name to probe; give one in endpoints" % t["host"]
                if "dns" in layers:
                    dns.append(skipped(t, "dns", why))
                    dns[-1]["port"] = None
                jobs.append((dns, None, [skipped(t, lay, why) for lay in chain]))
                continue
            address, stop, note = t["address"], None, ""
            if t["name"] in resolved:
                (addrs, err), latency = resolved[t["name"]]
                if "dns" in layers:
                    dns.append(_dns_probe(t, (addrs, err), latency))
                if direct(t) and not address:
                    if err:
                        stop = "dns dns_failed for %s" % t["name"]
                    else:
                        address = addrs[0]
            if not direct(t) and not t["address"]:
                address = None
            if t["address"]:
                note = " (address given in endpoints)"
            if stop:
                jobs.append((dns, None, [skipped(t, lay, stop) for lay in chain]))
            else:
                jobs.append((dns, pool.submit(_run_chain, t, chain, engines, memo, address, note), None))
        ats_jobs = [(u, pool.submit(engines.ats, u[0])) for u in mdm_urls]
        probes = []
        for dns, future, fixed in jobs:
            probes.extend(dns)
            probes.extend(future.result() if future is not None else fixed)
        for (url, host, port), future in ats_jobs:
            res = future.result()
            rec = {"service": MDM_URL_SERVICE, "host": host, "name": host, "address": res.get("address"),
                   "port": res.get("port") or port, "layer": "ats", "status": res["status"],
                   "latency_ms": res.get("latency_ms"), "remedy": res.get("remedy") or "",
                   "detail": res.get("detail") or ""}
            rec["ats"] = dict((k, res.get(k)) for k in ATS_KEYS)
            rec["ats"]["url"] = url
            if getattr(engines, "proxy_display", None):
                rec["proxy"] = engines.proxy_display
            probes.append(rec)
    return _dedupe_dns(probes)


def _unique(targets):
    """Targets without repeats (the same endpoint given twice for the same service is reported once)."""
    seen, out = set(), []
    for t in targets:
        key = tuple(t.get(k) for k in ("service", "host", "name", "port", "protocol", "address", "tls"))
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _dedupe_dns(probes):
    """One dns probe per (service, name): the catalog repeats a host on several ports."""
    seen, out = set(), []
    for p in probes:
        if p["layer"] == "dns":
            key = (p["service"], p["name"] or p["host"])
            if key in seen:
                continue
            seen.add(key)
        out.append(p)
    return out


# ---------------------------------------------------------------- certificate
def certificate_facts(cert_input, now=None):
    """``(facts, cert_pem, key_pem)`` of a push certificate input; ``key_pem`` None when no key is given or held.

    ``facts``: topic, not_after (ISO 8601 UTC), days_left (negative once
    expired), environment (``production``, ``sandbox``, ``both`` from Apple's
    push certificate extensions, or null when it carries neither).  Never any
    key material.  Raises ``_push._material.CertificateError``.
    """
    from cryptography.hazmat.primitives import serialization
    from ansible_collections.mdmops.apple.plugins.module_utils._push import _material as m
    material = cert_input.load()
    key = cert_input.load_key(material)
    cert = material.certificate
    oids = set(ext.oid.dotted_string for ext in cert.extensions)
    dev, prod = "1.2.840.113635.100.6.3.1" in oids, "1.2.840.113635.100.6.3.2" in oids
    environment = "both" if dev and prod else "sandbox" if dev else "production" if prod else None
    expiry = m.not_after(cert)
    days_left = int((expiry - m.utc(now)).total_seconds() // 86400)
    facts = {"topic": m.push_topic(cert), "not_after": m.iso8601(expiry), "days_left": days_left,
             "environment": environment}
    cert_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert] + list(material.chain))
    key_pem = None
    if key is not None:
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    return facts, cert_pem, key_pem


def certificate_input(params):
    """A ``CertificateInput`` over the module's option names (certificate_path, certificate_content, ...)."""
    from ansible_collections.mdmops.apple.plugins.module_utils._push._material import CertificateInput

    class _Input(CertificateInput):
        def option(self, name):
            return {"path": "certificate_path", "content": "certificate_content"}.get(name, name)

    return _Input(path=params.get("certificate_path"), content=params.get("certificate_content"),
                  certificate_password=params.get("certificate_password"),
                  privatekey_path=params.get("privatekey_path"), privatekey_content=params.get("privatekey_content"),
                  privatekey_passphrase=params.get("privatekey_passphrase"))

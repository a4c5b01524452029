# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report writers for probe results: JSON, JUnit XML, HTML, Prometheus textfile.

Controller-side and pure Python (standard library, and Jinja2 for the HTML).
Every writer takes the same :class:`Report`, built by :func:`build_report`
from either

* the probes of ``push_connectivity`` (``service, host, name, address, port,
  layer, status, latency_ms, remedy, detail``), or
* the results of ``network_probe`` (``service, host, name, port, protocol,
  address, status, latency_ms, error`` and, with ``tls``, ``layer`` and a
  ``tls`` record holding ``detail`` and ``remedy``),

given as a list of probes or as the registered result of either module.

``fail_on`` names the statuses that fail the run (default: none, so a report
never fails a pipeline unless asked to).  Writers return text; :func:`write`
puts it in a file atomically (temporary file in the same directory, then
rename), which is what node_exporter's textfile collector needs.
"""
from __future__ import annotations

import datetime
import math
import os
from collections import OrderedDict

from ansible_collections.mdmops.apple.plugins.module_utils._apns._connectivity import DNS_REMEDY, TCP_REMEDIES

# Layers in the order a connection goes through them; unknown layers sort after.
LAYERS = ("dns", "tcp", "udp", "tls", "provider", "ats")
# Statuses that are not a failure and not a success: nothing was (or could be) shown.
INCONCLUSIVE = ("no_answer", "skipped")
OK = "ok"
# Statuses that only exist as DNS outcomes: a network_probe result with one of them failed at the DNS layer.
DNS_STATUSES = ("dns_failed", "nxdomain", "servfail", "no_address")

# A one-line remedy for results that carry none (network_probe without tls): what to do, by status.
DEFAULT_REMEDIES = dict(
    {status: text for status, text in TCP_REMEDIES.items() if not status.startswith("proxy_")},
    dns_failed=DNS_REMEDY,
    nxdomain="{name} does not exist for this host's resolvers: check DNS filtering or a split horizon.",
    skipped="Not probed: {host} is a wildcard; give a concrete name for it in `names`.",
    error="Unexpected error probing {name}:{port}; see the detail.",
)


class ReportError(ValueError):
    """The input cannot be turned into a report; the message says what was wrong and what to give instead."""


def _text(value):
    """A value as text for a report (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "%s" % (value,)


def _port(value):
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ReportError("port %r is not a port number" % (value,))
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ReportError("port %.40r is not a port number" % (value,))
    if not 0 <= port <= 65535:
        raise ReportError("port %d is out of range (0 to 65535)" % port)
    return port


def _latency(value):
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ReportError("latency_ms %r is not a number" % (value,))
    try:
        ms = float(value)
    except (TypeError, ValueError):
        raise ReportError("latency_ms %.40r is not a number" % (value,))
    if math.isnan(ms) or math.isinf(ms) or ms < 0:
        raise ReportError("latency_ms %r is not a duration" % (value,))
    return ms


def probes_from(data):
    """The list of probe dicts in ``data`` and where it came from.

    ``data``: a list of probes, or the registered result of push_connectivity
    (``probes``) or network_probe (``results``).  Returns ``(probes, source)``.
    """
    if isinstance(data, dict):
        if isinstance(data.get("probes"), list):
            return data["probes"], "push_connectivity"
        if isinstance(data.get("results"), list):
            items = data["results"]
            if items and all(isinstance(i, dict) and "status" not in i
                             and isinstance(i.get("probes", i.get("results")), list) for i in items):
                # a looped task's registered result: one module result per item
                parts = [probes_from(i) for i in items]
                sources = sorted({source for _p, source in parts})
                return [p for probes, _s in parts for p in probes], "+".join(sources)
            return items, "network_probe"
        if data.get("skipped"):
            raise ReportError("the registered result is of a skipped task: it holds no probes")
        raise ReportError("expected a list of probes, or the registered result of mdmops.apple.push_connectivity "
                          "(with `probes`) or mdmops.apple.network_probe (with `results`); got a mapping with keys "
                          "%s" % ", ".join(sorted("%s" % k for k in data)[:10]))
    if isinstance(data, (list, tuple)):
        source = "network_probe" if data and all(isinstance(p, dict) and "protocol" in p and "remedy" not in p
                                                 for p in data) else "push_connectivity"
        return list(data), source
    raise ReportError("expected a list of probes, or the registered result of push_connectivity or network_probe; "
                      "got %s" % type(data).__name__)


def normalize(probe, index=0):
    """One probe in the push_connectivity shape, whichever module produced it.

    network_probe results are mapped: ``layer`` is their layer (``tcp``,
    ``udp`` or ``tls``), or ``dns`` when the name did not resolve (that is the
    layer that failed); ``detail`` is their ``error`` (or the TLS record's
    detail); ``remedy`` is the TLS record's, or a one-line default by status.
    """
    if not isinstance(probe, dict):
        raise ReportError("probe %d is %s, not a mapping with service, host, port, layer and status"
                          % (index + 1, type(probe).__name__))
    status = _text(probe.get("status"))
    if not status:
        raise ReportError("probe %d (%s) has no status" % (index + 1, _text(probe.get("host")) or "no host"))
    tls = probe.get("tls") if isinstance(probe.get("tls"), dict) else {}
    protocol = _text(probe.get("protocol"))
    layer = _text(probe.get("layer")) or protocol
    if status in DNS_STATUSES and "remedy" not in probe:
        layer = "dns"      # a network_probe result that failed before any connection
    if not layer:
        raise ReportError("probe %d (%s) has neither layer nor protocol" % (index + 1, _text(probe.get("host"))))
    host = _text(probe.get("host")) or _text(probe.get("name")) or ""
    name = _text(probe.get("name"))
    port = _port(probe.get("port"))
    detail = _text(probe.get("detail")) or _text(tls.get("detail")) or _text(probe.get("error")) or ""
    remedy = _text(probe.get("remedy"))
    if remedy is None:
        remedy = _text(tls.get("remedy"))
    if remedy is None and status != OK:      # network_probe without a TLS record: a default by status
        template = DEFAULT_REMEDIES.get(status)
        if template:
            remedy = template.format(name=name or host, host=host, port=port if port is not None else "",
                                     protocol=(protocol or ("udp" if layer == "udp" else "tcp")).upper())
    out = OrderedDict([
        ("service", _text(probe.get("service")) or "other"),
        ("host", host),
        ("name", name),
        ("address", _text(probe.get("address"))),
        ("port", port),
        ("layer", layer),
        ("status", status),
        ("latency_ms", _latency(probe.get("latency_ms"))),
        ("remedy", remedy or ""),
        ("detail", detail),
    ])
    for key in ("protocol", "topic", "environment"):
        if probe.get(key) is not None:
            out[key] = _text(probe.get(key))
    for key, name in (("sni", "tls_sni"), ("alpn", "tls_alpn"), ("tls_version", "tls_version"), ("root", "tls_root")):
        if tls.get(key) is not None:
            out.setdefault(name, _text(tls[key]))
    return out


def _epoch(value, what):
    """Seconds since the epoch for an ISO 8601 string, a datetime or a number."""
    if isinstance(value, bool) or value is None:
        raise ReportError("%s: %r is not a date" % (what, value))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = _text(value).strip()
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ReportError("%s: %.60r is not an ISO 8601 date (for example 2026-03-01T10:00:00Z)" % (what, value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def certificates_from(data):
    """Certificate facts (``topic``, ``not_after``) from a dict, a list of them, or push_certificate_info results.

    Returns a list of ``{topic, not_after (ISO 8601 UTC), not_after_epoch}``.
    """
    if data is None or data == "" or data == []:
        return []
    items = data if isinstance(data, (list, tuple)) else [data]
    out = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ReportError("certificate %d is %s, not a mapping with topic and not_after"
                              % (number, type(item).__name__))
        if item.get("failed") or item.get("skipped"):
            continue
        if not item.get("topic") or item.get("not_after") in (None, ""):
            raise ReportError("certificate %d needs `topic` and `not_after` (the registered result of "
                              "mdmops.apple.push_certificate_info has both)" % number)
        epoch = _epoch(item["not_after"], "certificate %d not_after" % number)
        iso = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(OrderedDict([("topic", _text(item["topic"])), ("not_after", iso), ("not_after_epoch", epoch)]))
    return out


def _fail_on(value):
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple, set)) or not all(isinstance(v, str) and v for v in value):
        raise ReportError("fail_on must be a list of statuses (for example [refused, timeout, intercepted]), got %.80r"
                          % (value,))
    seen = []
    for item in value:
        if item not in seen:
            seen.append(item)
    return seen


def layer_key(layer):
    return (LAYERS.index(layer) if layer in LAYERS else len(LAYERS), layer)


def severity(status):
    """0 ok, 1 inconclusive, 2 failed (not ok)."""
    if status == OK:
        return 0
    if status in INCONCLUSIVE:
        return 1
    return 2


class Report(object):
    """Normalised probes and what the writers need around them."""

    def __init__(self, probes, source, fail_on, certificates, generated_at, title, hostname):
        self.probes = probes
        self.source = source
        self.fail_on = fail_on
        self.certificates = certificates
        self.generated_at = generated_at
        self.title = title
        self.hostname = hostname

    @property
    def generated_iso(self):
        return self.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def failed(self, probe):
        """Whether this probe fails the run (its status is in fail_on)."""
        return probe["status"] in self.fail_on

    @property
    def failures(self):
        return [p for p in self.probes if self.failed(p)]

    @property
    def ok(self):
        return not self.failures

    def by_status(self):
        counts = {}
        for p in self.probes:
            counts[p["status"]] = counts.get(p["status"], 0) + 1
        return OrderedDict(sorted(counts.items(), key=lambda kv: (severity(kv[0]), kv[0])))

    def layers(self):
        return sorted({p["layer"] for p in self.probes}, key=layer_key)

    def services(self):
        seen = []
        for p in self.probes:
            if p["service"] not in seen:
                seen.append(p["service"])
        return seen

    def summary(self):
        """Counts: total, by status, not ok, failing (fail_on), and per service and layer."""
        per = OrderedDict()
        for p in self.probes:
            cell = per.setdefault(p["service"], OrderedDict()).setdefault(p["layer"], OrderedDict())
            cell[p["status"]] = cell.get(p["status"], 0) + 1
        return OrderedDict([
            ("total", len(self.probes)),
            ("ok", sum(1 for p in self.probes if p["status"] == OK)),
            ("not_ok", sum(1 for p in self.probes if severity(p["status"]) == 2)),
            ("inconclusive", sum(1 for p in self.probes if severity(p["status"]) == 1)),
            ("failed", len(self.failures)),
            ("by_status", self.by_status()),
            ("by_service_layer", per),
        ])

    def intercepted(self):
        return [p for p in self.probes if p["status"] == "intercepted"]


def _moment(value):
    if value is None:
        return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)).astimezone(
            datetime.timezone.utc)
    return datetime.datetime.fromtimestamp(_epoch(value, "generated_at"), datetime.timezone.utc)


def build_report(data, fail_on=None, certificates=None, generated_at=None, title=None, hostname=None):
    """A :class:`Report` from probes (see the module docstring); raises :class:`ReportError` on bad input."""
    if isinstance(data, Report):
        return data
    raw, source = probes_from(data)
    probes = [normalize(p, i) for i, p in enumerate(raw)]
    return Report(probes, source, _fail_on(fail_on), certificates_from(certificates), _moment(generated_at),
                  _text(title) or "Apple push connectivity", _text(hostname))


def endpoint(probe):
    """``host:port`` as a human reads it (IPv6 literals bracketed; no port for a port-less probe)."""
    host = probe["host"] or probe.get("name") or ""
    if ":" in host:
        host = "[%s]" % host
    return host if probe["port"] is None else "%s:%s" % (host, probe["port"])


def write(path, content, mode=0o644, option=None):
    """Write ``content`` (text) to ``path`` atomically unless it already holds exactly that.

    Returns True when the file was (re)written.  The temporary file is created
    in the target's directory with ``mode``, fsynced, then renamed over it, so a
    reader (node_exporter, a CI job, a browser) never sees part of a file.
    """
    from ansible_collections.mdmops.apple.plugins.module_utils._files import write_atomic

    data = content.encode("utf-8", "replace") if isinstance(content, str) else content
    if os.path.isfile(path) and not os.path.islink(path):
        try:
            with open(path, "rb") as handle:
                if handle.read(len(data) + 1) == data:
                    return False
        except (OSError, IOError):
            pass
    write_atomic(os.fspath(path), data, mode=mode, option=option)
    return True

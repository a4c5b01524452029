# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus text exposition for node_exporter's textfile collector.

Metrics (gauges; no sample timestamps, which the textfile collector refuses):

* ``mdmops_apple_probe_ok{service,host,port,layer}``: 1 when the probe's
  status is ``ok``, else 0.  Probes that did not run (``skipped``) are left
  out, so "not probed" never looks like "broken".
* ``mdmops_apple_probe_status{service,host,port,layer,status}``: 1 for the
  status each probe ended with (the reason behind a 0 above).
* ``mdmops_apple_probe_failed{service,host,port,layer}``: 1 when the status is
  in ``fail_on`` (only written when ``fail_on`` is given).
* ``mdmops_apple_probe_latency_seconds{service,host,port,layer}``: time to
  connect, handshake or answer.
* ``mdmops_apple_push_certificate_expiry_timestamp_seconds{topic}``: the
  certificate's notAfter, for each certificate given.
* ``mdmops_apple_probe_last_run_timestamp_seconds``: when the report was made,
  so an alert can catch a probe job that stopped running.

Two probes with the same labels (network_probe can return one endpoint for two
catalog rows) become one series: ok only if both are, the larger latency.
``host`` is the catalog host (a wildcard stays a wildcard); ``port`` is empty
for a port-less probe.
"""
from __future__ import annotations

from collections import OrderedDict

from ansible_collections.mdmops.apple.plugins.plugin_utils._report import OK, build_report

PREFIX = "mdmops_apple_"
LABELS = ("service", "host", "port", "layer")


def label_value(value):
    """A label value escaped for the text format: backslash, double quote and line feed."""
    text = "" if value is None else "%s" % (value,)
    return text.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def help_text(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def labels(pairs):
    return "{%s}" % ",".join('%s="%s"' % (k, label_value(v)) for k, v in pairs)


def number(value):
    """A sample value: integers without a fraction, others with full precision."""
    if float(value).is_integer() and abs(value) < 2 ** 53:
        return "%d" % value
    return repr(float(value))


class _Family(object):
    def __init__(self, name, help_, kind="gauge"):
        self.name = PREFIX + name
        self.help = help_
        self.kind = kind
        self.samples = OrderedDict()

    def lines(self):
        if not self.samples:
            return []
        out = ["# HELP %s %s" % (self.name, help_text(self.help)), "# TYPE %s %s" % (self.name, self.kind)]
        out.extend("%s%s %s" % (self.name, labels(key) if key else "", number(value))
                   for key, value in self.samples.items())
        return out


def render_prometheus(data, **kwargs):
    """The textfile as text (ends with a line feed, as the format requires)."""
    report = build_report(data, **kwargs)
    ok = _Family("probe_ok", "Whether the last probe of this endpoint and layer succeeded (1) or not (0).")
    status = _Family("probe_status", "Status the last probe of this endpoint and layer ended with (1 for the status).")
    failed = _Family("probe_failed", "Whether the last probe's status is one of fail_on (1) or not (0).")
    latency = _Family("probe_latency_seconds", "Time the last probe of this endpoint and layer took, in seconds.")
    expiry = _Family("push_certificate_expiry_timestamp_seconds",
                     "Expiry (notAfter) of the MDM push certificate for this topic, in seconds since the epoch.")
    last_run = _Family("probe_last_run_timestamp_seconds", "When the probe report was made, in seconds since the epoch.")
    for probe in report.probes:
        key = tuple((name, probe[name]) for name in LABELS)
        skipped = probe["status"] == "skipped"
        if not skipped:
            ok.samples[key] = min(ok.samples.get(key, 1), 1 if probe["status"] == OK else 0)
        if report.fail_on:
            failed.samples[key] = max(failed.samples.get(key, 0), 1 if report.failed(probe) else 0)
        status.samples[key + (("status", probe["status"]),)] = 1
        if probe["latency_ms"] is not None and not skipped:
            latency.samples[key] = max(latency.samples.get(key, 0.0), round(probe["latency_ms"] / 1000.0, 6))
    for cert in report.certificates:
        key = (("topic", cert["topic"]),)
        # two results for one topic: the earlier expiry is the one to alert on
        expiry.samples[key] = min(expiry.samples.get(key, cert["not_after_epoch"]), cert["not_after_epoch"])
    last_run.samples[()] = int(report.generated_at.timestamp())
    lines = []
    for family in (ok, status, failed, latency, expiry, last_run):
        lines.extend(family.lines())
    return "\n".join(lines) + "\n"

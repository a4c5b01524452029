# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JUnit XML report: one test suite per service, one test case per probe.

``classname`` is the service and ``name`` is ``host:port/layer``; a probe whose
status is in ``fail_on`` is a ``<failure>`` (type: the status, message: the
remedy), status ``skipped`` (nothing was probed) is a ``<skipped>``, every
other probe passes.  Each case carries its status, address, latency, detail and
remedy in ``<system-out>``.  The output validates against the Jenkins JUnit
schema (junit-10) and reads with junitparser, GitLab, GitHub and Jenkins.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ansible_collections.mdmops.apple.plugins.plugin_utils._report import build_report, endpoint

# Characters XML 1.0 cannot carry at all (not even as character references).
_NOT_XML = re.compile(u"[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value):
    """Text safe for XML 1.0: characters it cannot hold become U+FFFD (escaping is ElementTree's)."""
    if value is None:
        return ""
    return _NOT_XML.sub(u"\ufffd", "%s" % (value,))


def case_name(probe):
    return "%s/%s" % (endpoint(probe), probe["layer"])


def _seconds(probe):
    return "%.3f" % (probe["latency_ms"] / 1000.0) if probe["latency_ms"] is not None else "0.000"


def _out(probe, failed):
    lines = ["status: %s%s" % (probe["status"], " (fails the run: in fail_on)" if failed else "")]
    if probe.get("name") and probe["name"] != probe["host"]:
        lines.append("name: %s" % probe["name"])
    lines.append("address: %s" % (probe["address"] or "-"))
    lines.append("latency_ms: %s" % ("-" if probe["latency_ms"] is None else probe["latency_ms"]))
    if probe["detail"]:
        lines.append("detail: %s" % probe["detail"])
    if probe["remedy"]:
        lines.append("remedy: %s" % probe["remedy"])
    return "\n".join(lines) + "\n"


def el(tag, parent):
    return ET.SubElement(parent, tag)


def render_junit(data, **kwargs):
    """The JUnit XML document as text (UTF-8 declared)."""
    report = build_report(data, **kwargs)
    root = ET.Element("testsuites")
    totals = {"tests": 0, "failures": 0, "skipped": 0, "time": 0.0}
    for service in report.services():
        probes = [p for p in report.probes if p["service"] == service]
        suite = el("testsuite", root)
        counts = {"tests": len(probes), "failures": 0, "skipped": 0, "time": 0.0}
        names = {}
        for probe in probes:
            case = el("testcase", suite)
            name = case_name(probe)
            names[name] = names.get(name, 0) + 1
            if names[name] > 1:           # CI tools merge cases of one name: keep each visible
                name = "%s #%d" % (name, names[name])
            case.set("classname", xml_text(service))
            case.set("name", xml_text(name))
            case.set("time", _seconds(probe))
            counts["time"] += probe["latency_ms"] / 1000.0 if probe["latency_ms"] is not None else 0.0
            failed = report.failed(probe)
            if failed:
                counts["failures"] += 1
                failure = el("failure", case)
                failure.set("type", xml_text(probe["status"]))
                failure.set("message", xml_text("%s: %s" % (probe["status"], probe["remedy"] or probe["detail"]
                                                            or "status %s is in fail_on" % probe["status"])))
                failure.text = xml_text("%s %s\n%s" % (case_name(probe), probe["status"], probe["detail"]))
            elif probe["status"] == "skipped":
                counts["skipped"] += 1
                skipped = el("skipped", case)
                skipped.set("message", xml_text(probe["detail"] or "not probed"))
            out = el("system-out", case)
            out.text = xml_text(_out(probe, failed))
        suite.set("name", xml_text(service))
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", "0")
        suite.set("skipped", str(counts["skipped"]))
        suite.set("time", "%.3f" % counts["time"])
        suite.set("timestamp", report.generated_at.strftime("%Y-%m-%dT%H:%M:%S"))
        if report.hostname:
            suite.set("hostname", xml_text(report.hostname))
        for key in totals:
            totals[key] += counts[key]
    root.set("name", xml_text(report.title))
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", "0")
    root.set("time", "%.3f" % totals["time"])
    if hasattr(ET, "indent"):      # Python 3.9 and later; the document is the same without it
        ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

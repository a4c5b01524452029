"""Prometheus textfile: HELP/TYPE, escaped labels, parsed by prometheus_client (and promtool when present)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.mdmops.apple.plugins.plugin_utils._report._prometheus import (
    label_value, render_prometheus,
)

from . import samples

NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def render(probes=None, **kwargs):
    kwargs.setdefault("generated_at", samples.GENERATED_AT)
    return render_prometheus(samples.push_probes() if probes is None else probes, **kwargs)


def hostile_probes():
    return [samples._p(samples.HOSTILE, 'h"o\\s\nt', 443, "tls", "intercepted", 12.5, remedy=samples.HOSTILE),
            samples._p("device_management", "api.push.apple.com", 443, "tcp", "ok", 0.25)]


def parse(text):
    parser = pytest.importorskip("prometheus_client.parser")
    families = dict((f.name, f) for f in parser.text_string_to_metric_families(text))
    return families


def samples_of(families, name):
    return [(s.labels, s.value) for s in families[name].samples]


def test_strict_format():
    """What the textfile collector insists on: HELP and TYPE before each family, no duplicate series, final LF."""
    text = render(fail_on=samples.FAIL_ON, certificates=samples.CERTIFICATE)
    assert text.endswith("\n") and not text.endswith("\n\n")
    seen_series, declared = set(), {}
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split(" ")[2]
            assert NAME.match(current) and current not in declared
            declared[current] = None
        elif line.startswith("# TYPE "):
            name, kind = line.split(" ")[2:]
            assert name == current and kind == "gauge"
            declared[name] = kind
        else:
            series, value = line.rsplit(" ", 1)
            assert series.split("{")[0] == current and declared[current] == "gauge"
            assert series not in seen_series, "duplicate series: " + series
            seen_series.add(series)
            float(value)
    assert set(declared) == {
        "mdmops_apple_probe_ok", "mdmops_apple_probe_status", "mdmops_apple_probe_failed",
        "mdmops_apple_probe_latency_seconds", "mdmops_apple_push_certificate_expiry_timestamp_seconds",
        "mdmops_apple_probe_last_run_timestamp_seconds"}


def test_values_parsed_by_prometheus_client():
    probes = samples.push_probes()
    families = parse(render(probes, certificates=samples.CERTIFICATE))
    ok = samples_of(families, "mdmops_apple_probe_ok")
    assert len(ok) == len(probes)
    courier_tls = {"service": "device_management", "host": "*.push.apple.com", "port": "5223", "layer": "tls"}
    intercepted = [v for labels, v in ok if labels == courier_tls]
    assert intercepted == [0.0]
    assert sum(v for _l, v in ok) == sum(1 for p in probes if p["status"] == "ok")
    dns = [labels for labels, _v in ok if labels["layer"] == "dns"]
    assert dns and all(labels["port"] == "" for labels in dns)
    latency = dict((tuple(sorted(l.items())), v) for l, v in samples_of(families, "mdmops_apple_probe_latency_seconds"))
    key = tuple(sorted({"service": "device_management", "host": "*.push.apple.com", "port": "2197",
                        "layer": "tcp"}.items()))
    assert latency[key] == pytest.approx(3.0)
    status = samples_of(families, "mdmops_apple_probe_status")
    assert {"service": "push_provider", "host": "api.push.apple.com", "port": "2197", "layer": "provider",
            "status": "wrong_environment"} in [l for l, _v in status]
    expiry = samples_of(families, "mdmops_apple_push_certificate_expiry_timestamp_seconds")
    assert expiry == [({"topic": samples.CERTIFICATE["topic"]}, 1799575200.0)]
    assert "mdmops_apple_probe_failed" not in families, "no fail_on, no failed metric"


def test_failed_metric_with_fail_on():
    families = parse(render(fail_on=["timeout"]))
    failed = samples_of(families, "mdmops_apple_probe_failed")
    assert [l["port"] for l, v in failed if v == 1] == ["2197"]


def test_hostile_label_values_round_trip():
    families = parse(render(hostile_probes()))
    labels = [l for l, _v in samples_of(families, "mdmops_apple_probe_ok")]
    assert {"service": samples.HOSTILE, "host": 'h"o\\s\nt', "port": "443", "layer": "tls"} in labels


def test_label_value_escaping():
    assert label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert label_value(None) == ""


def test_skipped_probes_are_not_reported_broken():
    families = parse(render(samples.network_probe_result()))
    ok_hosts = [l["host"] for l, _v in samples_of(families, "mdmops_apple_probe_ok")]
    assert "*.appattest.apple.com" not in ok_hosts
    assert ("*.appattest.apple.com", "skipped") in [
        (l["host"], l["status"]) for l, _v in samples_of(families, "mdmops_apple_probe_status")]


def test_same_labels_merge_into_one_series():
    probes = [samples._p("s", "h", 443, "tcp", "ok", 5.0), samples._p("s", "h", 443, "tcp", "refused", 9.0)]
    families = parse(render(probes))
    series = {"service": "s", "host": "h", "port": "443", "layer": "tcp"}
    assert samples_of(families, "mdmops_apple_probe_ok") == [(series, 0.0)]
    assert samples_of(families, "mdmops_apple_probe_latency_seconds")[0][1] == pytest.approx(0.009)


def promtool():
    return os.environ.get("MDMOPS_PROMTOOL") or shutil.which("promtool")


@pytest.mark.skipif(not promtool(), reason="promtool (Debian package prometheus) not installed; MDMOPS_PROMTOOL names it")
@pytest.mark.parametrize("which", ["push", "hostile"])
def test_promtool_check_metrics(which):
    text = render(samples.push_probes() if which == "push" else hostile_probes(), fail_on=samples.FAIL_ON,
                  certificates=samples.CERTIFICATE)
    proc = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr

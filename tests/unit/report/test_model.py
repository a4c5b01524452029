"""The report model: both modules' shapes, fail_on, certificates, bad input, atomic writes."""
from __future__ import annotations

import os

import pytest

from ansible_collections.mdmops.apple.plugins.plugin_utils import _report
from ansible_collections.mdmops.apple.plugins.plugin_utils._report import ReportError, build_report

from . import samples


def test_push_connectivity_probes_pass_through():
    probes = samples.push_probes()
    report = build_report(probes)
    assert report.source == "push_connectivity"
    assert len(report.probes) == len(probes)
    for given, got in zip(probes, report.probes):
        for key in ("service", "host", "name", "address", "port", "layer", "status", "latency_ms", "remedy", "detail"):
            assert got[key] == (given[key] if given[key] is not None or key not in ("remedy", "detail") else "")


def test_network_probe_result_is_mapped():
    result = samples.network_probe_result()
    report = build_report(result)
    assert report.source == "network_probe"
    by_host = dict((p["host"], p) for p in report.probes if p["port"] != 80)
    tls = by_host["*.push.apple.com"]
    assert tls["layer"] == "tls" and tls["status"] == "intercepted"
    assert tls["remedy"] == result["results"][0]["tls"]["remedy"]
    assert tls["detail"].startswith("HTTPS inspection on")
    assert tls["tls_root"] == "Corp Inspection CA"
    refused = by_host["gdmf.apple.com"]
    assert refused["layer"] == "tcp" and "open TCP 443 to gdmf.apple.com" in refused["remedy"]
    assert refused["detail"] == "[Errno 111] Connection refused"
    dns = by_host["mdmenrollment.apple.com"]
    assert dns["layer"] == "dns", "a name that did not resolve failed at the DNS layer"
    assert "does not resolve" in dns["remedy"]
    skipped = by_host["*.appattest.apple.com"]
    assert skipped["status"] == "skipped" and skipped["name"] is None and "wildcard" in skipped["remedy"]


def test_looped_task_result_is_flattened():
    one, two = samples.network_probe_result(), samples.network_probe_result()
    two["results"] = two["results"][:2]
    report = build_report({"changed": False, "results": [dict(one, item="a"), dict(two, item="b")]})
    assert report.source == "network_probe"
    assert len(report.probes) == len(one["results"]) + 2


def test_network_probe_without_tls_uses_protocol_as_layer():
    rows = [{"service": "dns", "host": "time.apple.com", "name": "time.apple.com", "port": 123, "protocol": "udp",
             "addresses": [], "address": "17.253.14.125", "status": "no_answer", "latency_ms": 3000.0,
             "error": "no UDP answer (inconclusive)"}]
    report = build_report(rows)
    assert report.source == "network_probe"
    assert report.probes[0]["layer"] == "udp"
    assert report.ok and report.summary()["inconclusive"] == 1


def test_fail_on_decides_the_verdict():
    probes = samples.push_probes()
    assert build_report(probes).ok, "no fail_on: a report never fails"
    report = build_report(probes, fail_on=["timeout"])
    assert not report.ok
    assert [p["status"] for p in report.failures] == ["timeout"]
    summary = report.summary()
    assert summary["total"] == len(probes)
    assert summary["failed"] == 1
    assert summary["ok"] + summary["not_ok"] + summary["inconclusive"] == summary["total"]
    assert sum(summary["by_status"].values()) == summary["total"]
    assert build_report(probes, fail_on="timeout").fail_on == ["timeout"]


@pytest.mark.parametrize("fail_on", [[1], {"a": 1}, [""], 3])
def test_bad_fail_on(fail_on):
    with pytest.raises(ReportError, match="fail_on must be a list of statuses"):
        build_report([], fail_on=fail_on)


@pytest.mark.parametrize("data,message", [
    ("text", "expected a list of probes"),
    ({"msg": "x"}, "got a mapping with keys msg"),
    ({"skipped": True}, "skipped task"),
    ([42], "probe 1 is int"),
    ([{"host": "a"}], "has no status"),
    ([{"host": "a", "status": "ok"}], "neither layer nor protocol"),
    ([{"host": "a", "status": "ok", "layer": "tcp", "port": "http"}], "not a port number"),
    ([{"host": "a", "status": "ok", "layer": "tcp", "port": 70000}], "out of range"),
    ([{"host": "a", "status": "ok", "layer": "tcp", "latency_ms": float("nan")}], "not a duration"),
])
def test_bad_input_says_what_is_wrong(data, message):
    with pytest.raises(ReportError, match=message):
        build_report(data)


def test_certificates_from_push_certificate_info():
    report = build_report([], certificates=[samples.CERTIFICATE, {"failed": True, "msg": "no file"}])
    assert len(report.certificates) == 1
    cert = report.certificates[0]
    assert cert["topic"] == samples.CERTIFICATE["topic"]
    assert cert["not_after"] == "2027-01-10T10:00:00Z"
    assert cert["not_after_epoch"] == 1799575200.0
    assert build_report([], certificates={"topic": "t", "not_after": 1799575200}).certificates[0]["not_after"] \
        == "2027-01-10T10:00:00Z"


@pytest.mark.parametrize("cert,message", [
    ({"topic": "t"}, "needs `topic` and `not_after`"),
    ({"topic": "t", "not_after": "next tuesday"}, "not an ISO 8601 date"),
    ("t", "not a mapping"),
])
def test_bad_certificates(cert, message):
    with pytest.raises(ReportError, match=message):
        build_report([], certificates=cert)


def test_generated_at_is_utc():
    report = build_report([], generated_at="2026-11-25T22:30:00+01:00")
    assert report.generated_iso == "2026-11-25T21:30:00Z"


def test_endpoint_brackets_ipv6():
    assert _report.endpoint({"host": "2620:149:a44::1", "port": 443}) == "[2620:149:a44::1]:443"
    assert _report.endpoint({"host": "api.push.apple.com", "port": None}) == "api.push.apple.com"


def test_write_is_atomic_and_idempotent(tmp_path):
    target = tmp_path / "report.prom"
    assert _report.write(str(target), u"a 1\n") is True
    assert target.read_text() == "a 1\n"
    assert oct(os.stat(str(target)).st_mode & 0o777) == oct(0o644)
    assert _report.write(str(target), u"a 1\n") is False, "same content: not rewritten"
    assert _report.write(str(target), u"a 2\n") is True
    assert target.read_text() == "a 2\n"
    assert sorted(os.listdir(str(tmp_path))) == ["report.prom"], "no temporary file left behind"


def test_write_refuses_a_directory(tmp_path):
    from ansible_collections.mdmops.apple.plugins.module_utils._files import FileError
    (tmp_path / "d").mkdir()
    with pytest.raises(FileError, match="directory"):
        _report.write(str(tmp_path / "d"), u"new")

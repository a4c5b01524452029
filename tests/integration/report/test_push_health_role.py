"""playbooks/verify_push.yml (the push_health role) on the lab, in one ansible-playbook run over both lab hosts.

corp writes its reports on the controller, dev on the host. The lab's push path answers (the lab root as
ca_path; a push certificate the lab's APNs accepts, so the provider layer runs and the textfile gets its expiry),
plus one extra endpoint on a port nothing listens on (refused). With push_health_fail_on naming `refused` the run
must fail with a readable summary, and only after every report is written: per host a JSON report, a JUnit file
that validates against the Jenkins JUnit schema and that junitparser reads, an HTML page with the matrix, and a
Prometheus textfile that prometheus_client parses.
(The HTML page in a real browser is test_html_browser.py's.)
"""
from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from lab import apns
from tests.lib.ansible_run import run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(REPO, "playbooks", "verify_push.yml")
SCHEMA = os.path.join(REPO, "tests", "unit", "report", "junit-10.xsd")
REFUSED = {"host": "1-courier.push.apple.com", "port": 5224}   # a port no lab listener has: net answers RST
HOSTS = ("corp", "dev")


def test_verify_push_writes_every_report_then_fails_on_what_was_asked(lab, tmp_path):
    reports = tmp_path / "reports"
    cert = apns.lab_push_pki(lab).push()      # accepted by the lab's APNs emulator: the provider layer says ok
    cert_path, key_path = tmp_path / "push.pem", tmp_path / "push.key"
    cert_path.write_bytes(cert.cert_pem() + cert.chain_pem())
    key_path.write_bytes(cert.key_pem())
    key_path.chmod(0o600)
    proc = run_playbook(PLAYBOOK, inventory=lab.inventory, extra_vars={
        "push_health_ca_path": lab.ca_path,
        "push_health_timeout": 3,
        "push_health_certificate_path": str(cert_path),
        "push_health_privatekey_path": str(key_path),
        "push_health_endpoints": ["%(host)s:%(port)d" % REFUSED],
        "push_health_fail_on": ["refused", "timeout", "intercepted", "untrusted", "tls_failed", "dns_failed"],
        "push_health_report_dir": str(reports),
        # corp's reports are written on the controller (the default), dev's on the host (the lab's hosts share
        # the file system, so both land in the same directory)
        "push_health_report_on": "{{ 'host' if inventory_hostname == 'dev' else 'controller' }}",
        "push_health_prometheus_textfile": str(tmp_path) + "/{{ inventory_hostname }}.prom",
    })
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-4000:]
    assert "Traceback" not in out
    # the failure names what failed, the status and its remedy, and where the reports are
    assert "are findings of fail_on [refused, timeout" in out, out[-4000:]
    assert "%(host)s:%(port)d tcp refused" % REFUSED in out, out[-4000:]
    assert "Reports: %s." % reports in out

    xmlschema = pytest.importorskip("xmlschema")
    junitparser = pytest.importorskip("junitparser")
    parser = pytest.importorskip("prometheus_client.parser")
    schema = xmlschema.XMLSchema(SCHEMA)
    for host in HOSTS:
        report = json.loads((reports / ("push_health_%s.json" % host)).read_text())
        assert report["hostname"] == host and report["source"] == "push_connectivity"
        assert report["ok"] is False
        failing = [p for p in report["probes"] if p["status"] in report["fail_on"]]
        assert failing and {(p["host"], p["port"], p["status"]) for p in failing} == {
            (REFUSED["host"], REFUSED["port"], "refused")}, failing
        assert all(p["remedy"] for p in failing)
        ok = [p for p in report["probes"] if p["status"] == "ok"]
        assert {"dns", "tcp", "tls", "provider"} <= {p["layer"] for p in ok}
        assert [c["topic"] for c in report["certificates"]] == [cert.topic]

        junit = reports / ("push_health_%s.junit.xml" % host)
        schema.validate(str(junit))
        xml = junitparser.JUnitXml.fromfile(str(junit))
        assert xml.tests == report["summary"]["total"] and xml.failures == len(failing)

        page = (reports / ("push_health_%s.html" % host)).read_text()
        assert '<table id="matrix">' in page and REFUSED["host"] in page

        textfile = tmp_path / ("%s.prom" % host)
        families = {f.name: f for f in parser.text_string_to_metric_families(textfile.read_text())}
        probe_ok = {(s.labels["host"], s.labels["port"], s.labels["layer"]): s.value
                    for s in families["mdmops_apple_probe_ok"].samples}
        assert probe_ok[(REFUSED["host"], str(REFUSED["port"]), "tcp")] == 0
        assert sum(1 for v in probe_ok.values() if v == 1) > 0
        assert "mdmops_apple_probe_latency_seconds" in families
        expiry = families["mdmops_apple_push_certificate_expiry_timestamp_seconds"].samples
        assert [s.labels["topic"] for s in expiry] == [cert.topic] and expiry[0].value > 0
        for path in (junit, textfile):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_bad_settings_fail_before_anything_is_written(tmp_path):
    """Two local hosts in one run: a textfile path node_exporter would never read, and a fail_on the module does not
    know. Each fails with a message saying what to give instead, no traceback, and no report is written."""
    reports = tmp_path / "reports"
    proc = run_playbook(PLAYBOOK, inventory="textfile,failon,", extra_vars={
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "push_health_services": [], "push_health_endpoints": ["1-courier.push.apple.com:5223"],
        "push_health_report_dir": str(reports),
        "push_health_prometheus_textfile": "{{ 'metrics.txt' if inventory_hostname == 'textfile' else '' }}",
        "push_health_fail_on": "{{ ['nonsense'] if inventory_hostname == 'failon' else [] }}",
    })
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-4000:]
    assert "Traceback" not in out
    assert "push_health_prometheus_textfile must be an absolute path ending in .prom" in out, out[-4000:]
    assert "fail_on: 'nonsense' is neither a status" in out, out[-4000:]
    assert not reports.exists()

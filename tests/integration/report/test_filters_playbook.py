"""The report filters in a real ansible-playbook run: probes registered as a task result, the four files written
with ansible.builtin.copy, then read by the consumers (junitparser, prometheus_client, a JSON parser), and a bad
input failing the task with the filter's message (not a traceback)."""
from __future__ import annotations

import json
import sys

import pytest

from tests.lib.ansible_run import run_playbook
from tests.unit.report import samples

HEAD = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Stand-in for a probe module's registered result
      ansible.builtin.set_fact:
        probe: "{{ lookup('ansible.builtin.file', probes_file) | from_json }}"
        cert: {topic: "%(topic)s", not_after: "%(not_after)s"}
"""
WRITE = """
    - name: Write {file}
      ansible.builtin.copy:
        content: "{{{{ probe | mdmops.apple.{filter}(fail_on=fail_on, certificates=cert, hostname=inventory_hostname) }}}}"
        dest: "{{{{ out }}}}/{file}"
        mode: "0644"
"""
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def write_playbook(tmp_path, body):
    path = tmp_path / "play.yml"
    path.write_text(body)
    return path


@pytest.fixture
def inputs(tmp_path):
    probes = tmp_path / "probes.json"
    probes.write_text(json.dumps(samples.network_probe_result()))
    return probes


def test_reports_from_a_playbook(tmp_path, inputs):
    body = HEAD % {"topic": samples.CERTIFICATE["topic"], "not_after": samples.CERTIFICATE["not_after"]}
    for name, filename in (("probe_json", "report.json"), ("probe_junit", "junit.xml"), ("probe_html", "report.html"),
                           ("probe_prometheus", "push.prom")):
        body += WRITE.format(filter=name, file=filename)
    play = write_playbook(tmp_path, body)
    out = tmp_path / "out"
    out.mkdir()
    proc = run_playbook(str(play), inventory="localhost,", extra_vars=dict({
        "probes_file": str(inputs), "out": str(out), "fail_on": ["intercepted", "refused", "dns_failed"]}, **LOCAL))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = samples.network_probe_result()["results"]
    text = (out / "report.json").read_text()
    assert text.startswith('{\n  "format": "mdmops.apple.probe_report"'), "written as the filter made it"
    report = json.loads(text)
    assert report["source"] == "network_probe" and report["hostname"] == "localhost"
    assert report["summary"]["failed"] == 3 and report["ok"] is False
    assert len(report["probes"]) == len(results)
    assert "<table id=\"matrix\">" in (out / "report.html").read_text()
    junitparser = pytest.importorskip("junitparser")
    xml = junitparser.JUnitXml.fromfile(str(out / "junit.xml"))
    assert xml.tests == len(results) and xml.failures == 3
    parser = pytest.importorskip("prometheus_client.parser")
    names = [f.name for f in parser.text_string_to_metric_families((out / "push.prom").read_text())]
    assert "mdmops_apple_push_certificate_expiry_timestamp_seconds" in names


def test_bad_input_fails_the_task_with_a_message(tmp_path):
    play = write_playbook(tmp_path, """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "{{ {'msg': 'not a probe result'} | mdmops.apple.probe_junit }}"
""")
    proc = run_playbook(str(play), inventory="localhost,", extra_vars=LOCAL)
    assert proc.returncode != 0
    assert "mdmops.apple.probe_junit: expected a list of probes" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr

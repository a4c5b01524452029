"""JUnit XML: schema-valid (Jenkins junit-10), read by junitparser, failures only for fail_on, hostile text safe."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.mdmops.apple.plugins.plugin_utils._report._junit import render_junit, xml_text

from . import samples

XSD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "junit-10.xsd")


def hostile_probes():
    probes = samples.push_probes()
    probes.append(samples._p('svc "quoted" <b>', samples.HOSTILE, 443, "tls", "intercepted", 1.0,
                             remedy=samples.HOSTILE, detail=samples.HOSTILE + "\x00\x1b[31m\ud800"))
    return probes


def render(probes=None, **kwargs):
    kwargs.setdefault("fail_on", samples.FAIL_ON)
    kwargs.setdefault("generated_at", samples.GENERATED_AT)
    return render_junit(samples.push_probes() if probes is None else probes, **kwargs)


def test_one_case_per_probe_classname_service_name_endpoint_layer():
    probes = samples.push_probes()
    root = ET.fromstring(render(probes).encode("utf-8"))
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(probes)
    assert [c.get("classname") for c in cases] == [p["service"] for p in probes]
    names = [c.get("name") for c in cases]
    assert "*.push.apple.com:5223/tls" in names
    assert "api.push.apple.com:2197/provider" in names
    assert "mdmenrollment.apple.com/dns" in names, "a port-less DNS probe is named host/dns"
    assert len(set((c.get("classname"), c.get("name")) for c in cases)) == len(cases)
    assert [s.get("name") for s in root.findall("testsuite")] == ["device_management", "push_provider", "mdm_server",
                                                                  "ntp"]


def test_failures_only_for_fail_on():
    probes = samples.push_probes()
    root = ET.fromstring(render(probes, fail_on=["timeout", "intercepted"]).encode("utf-8"))
    failed = [(c.get("name"), c.find("failure").get("type")) for c in root.iter("testcase") if c.find("failure") is not None]
    assert sorted(failed) == [("*.push.apple.com:2197/tcp", "timeout"), ("*.push.apple.com:5223/tls", "intercepted")]
    assert root.get("failures") == "2" and root.get("tests") == str(len(probes))
    assert sum(int(s.get("failures")) for s in root.findall("testsuite")) == 2
    # others pass, with what was found in system-out
    refused = [c for c in root.iter("testcase") if c.get("name") == "gdmf.apple.com:443/tcp"][0]
    assert refused.find("failure") is None
    out = refused.find("system-out").text
    assert "status: refused" in out and "remedy: The connection was refused" in out
    failure = [c for c in root.iter("testcase") if c.get("name") == "*.push.apple.com:5223/tls"][0].find("failure")
    assert failure.get("message").startswith("intercepted: Exempt courier.push.apple.com")


def test_no_fail_on_no_failures():
    root = ET.fromstring(render(fail_on=None).encode("utf-8"))
    assert root.get("failures") == "0"
    assert not list(root.iter("failure"))


def test_skipped_probe_is_skipped_not_passed():
    root = ET.fromstring(render_junit(samples.network_probe_result()).encode("utf-8"))
    skipped = [c for c in root.iter("testcase") if c.find("skipped") is not None]
    assert [c.get("name") for c in skipped] == ["*.appattest.apple.com:443/tcp"]
    assert root.find("testsuite").get("skipped") == "1"


def test_hostile_strings_stay_text():
    text = render(hostile_probes(), hostname='ci "runner" <1>')
    root = ET.fromstring(text.encode("utf-8"))      # well-formed despite quotes, <, &, control characters
    case = [c for c in root.iter("testcase") if c.get("classname") == 'svc "quoted" <b>'][0]
    assert case.get("name").startswith('<script>alert("x")</script> & "quotes"')
    assert "\nsecond line" in case.get("name"), "a newline in an attribute survives (as &#10;)"
    assert "<script>" not in text, "no raw markup"
    assert case.find("failure").get("message").endswith("back\ufffdslash")
    assert "\x00" not in text and "\x1b" not in text and "\x07" not in text
    assert root.find("testsuite").get("hostname") == 'ci "runner" <1>'


def test_xml_text_replaces_what_xml_cannot_hold():
    assert xml_text("a\x00b\x0bc\td\ne\r") == "a\ufffdb\ufffdc\td\ne\r"
    assert xml_text(None) == ""
    assert xml_text("\U0001f600") == "\U0001f600"


def test_empty_probe_list_is_a_valid_document():
    root = ET.fromstring(render([]).encode("utf-8"))
    assert root.tag == "testsuites" and root.get("tests") == "0"


@pytest.mark.parametrize("which", ["push", "network_probe", "hostile", "empty"])
def test_validates_against_the_jenkins_junit_schema(which, tmp_path):
    xmlschema = pytest.importorskip("xmlschema")
    data = {"push": samples.push_probes(), "network_probe": samples.network_probe_result(),
            "hostile": hostile_probes(), "empty": []}[which]
    schema = xmlschema.XMLSchema(XSD)
    path = tmp_path / "junit.xml"
    path.write_text(render(data, hostname="runner"), encoding="utf-8")
    schema.validate(str(path))


def test_read_by_junitparser(tmp_path):
    junitparser = pytest.importorskip("junitparser")
    path = tmp_path / "junit.xml"
    path.write_text(render(hostile_probes()), encoding="utf-8")
    xml = junitparser.JUnitXml.fromfile(str(path))
    cases = [(suite.name, case) for suite in xml for case in suite]
    assert len(cases) == len(hostile_probes())
    failed = [case for _s, case in cases if any(isinstance(r, junitparser.Failure) for r in case.result)]
    assert len(failed) == sum(1 for p in hostile_probes() if p["status"] in samples.FAIL_ON)
    timeout = [case for _s, case in cases if case.name == "*.push.apple.com:2197/tcp"][0]
    assert timeout.classname == "device_management"
    assert timeout.time == pytest.approx(3.0)
    assert timeout.result[0].type == "timeout"
    assert "allow it" in timeout.system_out
    passed = [case for _s, case in cases if case.is_passed]
    assert len(passed) == len(cases) - len(failed)

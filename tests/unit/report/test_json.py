"""JSON report: the normalised probes, summary, verdict; any string stays one JSON string."""
from __future__ import annotations

import json

from ansible_collections.mdmops.apple.plugins.plugin_utils._report._json import render_json

from . import samples


def test_shape_and_verdict():
    probes = samples.push_probes()
    doc = json.loads(render_json(probes, fail_on=["timeout"], certificates=samples.CERTIFICATE,
                                 generated_at=samples.GENERATED_AT, hostname="mdm01"))
    assert doc["format"] == "mdmops.apple.probe_report" and doc["version"] == 1
    assert doc["generated_at"] == samples.GENERATED_AT and doc["hostname"] == "mdm01"
    assert doc["source"] == "push_connectivity" and doc["ok"] is False and doc["fail_on"] == ["timeout"]
    assert len(doc["probes"]) == len(probes) and doc["summary"]["total"] == len(probes)
    assert doc["summary"]["by_service_layer"]["push_provider"]["provider"] == {"ok": 1, "wrong_environment": 1,
                                                                               "topic_disallowed": 1}
    assert doc["certificates"] == [{"topic": samples.CERTIFICATE["topic"], "not_after": "2027-01-10T10:00:00Z"}]


def test_same_input_same_output():
    a = render_json(samples.network_probe_result(), generated_at=samples.GENERATED_AT)
    b = render_json(samples.network_probe_result(), generated_at=samples.GENERATED_AT)
    assert a == b


def test_hostile_strings_round_trip():
    probe = samples._p(samples.HOSTILE, samples.HOSTILE, 443, "tcp", "refused", 1.0, remedy=samples.HOSTILE,
                       detail=samples.HOSTILE)
    text = render_json([probe])
    assert text.isascii() and "<script>" in text     # JSON, not HTML: escaped by JSON's rules only
    got = json.loads(text)["probes"][0]
    assert got["service"] == got["detail"] == samples.HOSTILE

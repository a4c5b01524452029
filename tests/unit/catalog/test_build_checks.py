"""tools/catalog.py build refuses rows without their reviewed fields."""
from __future__ import annotations

import copy
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import catalog as tool  # noqa: E402


@pytest.fixture(scope="module")
def source():
    return tool.load_source()


def first_row(doc, host):
    for section in doc["sections"]:
        for row in section["rows"]:
            if row["cells"][0] == host:
                return row
    raise KeyError(host)


@pytest.mark.parametrize("host,change,message", [
    ("albert.apple.com", {"network": None}, "network must be one of"),
    ("albert.apple.com", {"network": "akamai"}, "network must be one of"),
    ("*.push.apple.com", {"probe_name": None}, "needs probe_name"),
    ("*.push.apple.com", {"probe_name": "courier.example.com"}, "needs probe_name"),
    ("albert.apple.com", {"probe_name": "x.apple.com"}, "wildcard rows only"),
    ("albert.apple.com", {"apns_range": "yes"}, "apns_range must be true or false"),
    ("albert.apple.com", {"netwrok": "apple"}, "unknown keys"),
])
def test_build_refuses_rows_without_reviewed_fields(source, host, change, message):
    doc = copy.deepcopy(source)
    row = first_row(doc, host)
    for key, value in change.items():
        if value is None:
            row.pop(key, None)
        else:
            row[key] = value
    with pytest.raises(SystemExit, match=message):
        tool.build_catalog(doc)


def test_one_host_one_class(source):
    doc = copy.deepcopy(source)
    rows = [r for s in doc["sections"] for r in s["rows"] if r["cells"][0] == "gs.apple.com"]
    assert len(rows) == 2
    rows[1]["network"] = "cdn"
    with pytest.raises(SystemExit, match="in another row"):
        tool.build_catalog(doc)


def test_generated_module_is_json_and_loads_the_same(source):
    import json
    ns = {}
    exec(compile(tool.render(tool.build_catalog(source)), "gen", "exec"), ns)
    assert json.loads(ns["CATALOG_JSON"]) == json.loads(json.dumps(tool.build_catalog(source)))

"""network_info, network_probe and the network_catalog lookup under real Ansible runs:
what they return, and hostile input (no traceback, no hang, no wrong success).

Each run is a real ``ansible`` ad-hoc run (tests/lib/ansible_run.py); inputs
that the modules must refuse end with ``failed`` and a ``msg`` naming the
option, never with an exception.
"""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
from tests.lib.ansible_run import run_module

SEED = os.path.join(os.path.dirname(__file__), "..", "..", "unit", "fixtures", "apple_enterprise_networks_fr.txt")


def refused(result, *words):
    assert result["failed"] and result["_rc"] != 0, result
    assert "exception" not in result and "Traceback" not in result["_stdout"], result["_stdout"]
    for word in words:
        assert word in result["msg"], result["msg"]
    return result


def test_compact_by_default_and_services_follow_the_selection():
    res = run_module("mdmops.apple.network_info", {"initiators": ["mdm_servers"]})
    assert res["_rc"] == 0 and "entries" not in res
    sel = load_bundled().select(initiators=["mdm_servers"])
    assert [s["id"] for s in res["services"]] == [s["id"] for s in sel.services]
    assert len(res["services"]) == res["counts"]["services"] == sel.counts()["services"]
    full = run_module("mdmops.apple.network_info", {"initiators": ["mdm_servers"], "views": ["entries", "counts"]})
    assert set(full) - {"changed", "failed", "invocation", "_rc", "_stdout"} == {"entries", "counts"}
    assert len(full["entries"]) == sel.counts()["entries"]
    # the compact default is a fraction of the full answer
    everything = run_module("mdmops.apple.network_info", {"views": ["all"]})
    default = run_module("mdmops.apple.network_info", {"services": ["all"]})
    assert default["_rc"] == 0 and everything["_rc"] == 0
    size = [len(json.dumps({k: v for k, v in r.items() if not k.startswith("_") and k != "invocation"}))
            for r in (default, everything)]
    assert size[0] * 3 < size[1], size


@pytest.mark.parametrize("args,words", [
    ({"services": []}, ["services is empty"]),
    ({"services": ["device_managment"]}, ["Did you mean 'device_management'"]),
    ({"services": [{"a": 1}]}, ["unknown service"]),
    ({"services": "x" * 100000}, ["longer than 253"]),
    ({"platforms": ["android"]}, ["unknown platform"]),
    ({"protocols": ["icmp"]}, ["protocols"]),
    ({"hosts": ["\u00e9" * 5000]}, ["hosts"]),
    ({"views": ["everything"]}, ["views"]),
    ({"include_retired": "perhaps"}, ["include_retired"]),
    ({"article_path": "/nonexistent/apple.html"}, ["article_path", "/nonexistent/apple.html"]),
    ({"article_path": "/dev/zero"}, ["article_path", "regular file"]),
    ({"article_path": "/"}, ["article_path", "directory"]),
])
def test_network_info_refuses_hostile_input(args, words):
    refused(run_module("mdmops.apple.network_info", args), *words)


def test_network_info_article_path_fifo_big_and_garbage(tmp_path):
    fifo = tmp_path / "article.fifo"
    os.mkfifo(str(fifo))
    refused(run_module("mdmops.apple.network_info", {"article_path": str(fifo)}, timeout=60),
            "article_path", "regular file")
    big = tmp_path / "big.html"
    with open(str(big), "wb") as f:
        f.truncate(64 * 1024 * 1024)
    refused(run_module("mdmops.apple.network_info", {"article_path": str(big)}, timeout=60), "larger than")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(os.urandom(512 * 1024))
    refused(run_module("mdmops.apple.network_info", {"article_path": str(garbage)}, timeout=60), "no host table")
    link = tmp_path / "link.txt"
    link.symlink_to("/dev/zero")
    refused(run_module("mdmops.apple.network_info", {"article_path": str(link)}, timeout=60), "regular file")


def test_network_info_reads_the_saved_text_forms():
    saved = os.path.join(os.path.dirname(SEED), "saved", "chromium_text_en.txt")
    res = run_module("mdmops.apple.network_info", {"article_path": saved, "views": ["counts"]})
    assert res["_rc"] == 0, res["_stdout"]
    newer = {(e["service"], e["host"]) for e in load_bundled().entries if e["since"]}
    assert res["article_diff"]["problems"] == [] and res["article_diff"]["added"] == []
    assert {(r["service"], r["host"]) for r in res["article_diff"]["removed"]} == newer


@pytest.mark.parametrize("args,words", [
    ({"services": []}, ["services is empty"]),
    ({"services": ["nope"]}, ["unknown service"]),
    ({"names": {"*.icloud.com": "evil.example.com"}}, ["names"]),
    ({"names": {"x" * 300: 5}}, ["names"]),
    ({"timeout": 0}, ["timeout"]),
    ({"timeout": "inf"}, ["timeout"]),
    ({"concurrency": 100000}, ["concurrency"]),
    ({"ip_versions": [5]}, ["ip_versions"]),
    ({"ip_versions": []}, ["ip_versions"]),
    ({"hosts": ["nothing.example.com"], "fail_on_unreachable": True}, ["no probe ran"]),
])
def test_network_probe_refuses_hostile_input(args, words):
    refused(run_module("mdmops.apple.network_probe", args, timeout=120), *words)


def test_network_probe_with_nothing_selected_and_no_fail_flag_reports_zero():
    res = run_module("mdmops.apple.network_probe", {"hosts": ["nothing.example.com"]})
    assert res["_rc"] == 0 and res["results"] == [] and res["summary"] == {}

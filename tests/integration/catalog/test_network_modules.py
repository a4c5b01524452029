"""network_info, network_probe and the network_catalog lookup under real Ansible runs:
what they return, and hostile input (no traceback, no hang, no wrong success).

The accepted inputs are the tasks of one real ``ansible-playbook`` run (tests/lib/ansible_run.py);
the hostile cases run each module's own code through tests/lib/module_runner.py (one import, a fork
per case). Inputs that the modules must refuse end with ``failed`` and a ``msg`` naming the option,
never with an exception escaping the module.
"""
from __future__ import annotations

import json
import os

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
from tests.lib.ansible_run import run_tasks, task
from tests.lib.module_runner import run_module_cases

SEED = os.path.join(os.path.dirname(__file__), "..", "..", "unit", "fixtures", "apple_enterprise_networks_fr.txt")


INFO = "mdmops.apple.network_info"
PROBE = "mdmops.apple.network_probe"

INFO_REFUSED = [
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
]
PROBE_REFUSED = [
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
]


def article_files(tmp_path):
    """(name, article_path, words): a FIFO, a 64 MiB file, random bytes, a symlink to /dev/zero."""
    fifo = tmp_path / "article.fifo"
    os.mkfifo(str(fifo))
    big = tmp_path / "big.html"
    with open(str(big), "wb") as f:
        f.truncate(64 * 1024 * 1024)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(os.urandom(512 * 1024))
    link = tmp_path / "link.txt"
    link.symlink_to("/dev/zero")
    return [("fifo", fifo, ["article_path", "regular file"]), ("big", big, ["larger than"]),
            ("garbage", garbage, ["no host table"]), ("link to /dev/zero", link, ["regular file"])]


def test_network_info_and_probe_refuse_hostile_input(tmp_path):
    """Every refused input of both modules (tests/lib/module_runner.py); each case judged on its own."""
    cases = [("info %d" % n, INFO, args, words) for n, (args, words) in enumerate(INFO_REFUSED)]
    cases += [("info article %s" % name, INFO, {"article_path": str(path)}, words)
              for name, path, words in article_files(tmp_path)]
    cases += [("probe %d" % n, PROBE, args, words) for n, (args, words) in enumerate(PROBE_REFUSED)]
    results = run_module_cases([task(name, module, args) for name, module, args, _w in cases], timeout=120)
    problems = []
    for name, _module, args, words in cases:
        result = results[name]
        try:
            assert result["failed"] is True, "wrong success: %s" % result
            assert result["_crash"] is None, "the module crashed:\n%s" % result["_crash"]
            assert "exception" not in result and "module_stderr" not in result, result
            for word in words:
                assert word in result["msg"], "%r not in the message: %s" % (word, result["msg"])
        except AssertionError as exc:
            shown = json.dumps(args)
            problems.append("%s %s: %s" % (name, shown if len(shown) < 200 else "", exc))
    assert not problems, "%d of %d cases went wrong:\n%s" % (len(problems), len(cases), "\n".join(problems))


def test_what_network_info_and_probe_return():
    """The accepted inputs of this file, as the tasks of one playbook run (one test: under pytest-xdist a
    shared fixture would run the playbook again on every worker that took one of several tests)."""
    saved = os.path.join(os.path.dirname(SEED), "saved", "chromium_text_en.txt")
    tasks = [
        task("compact", INFO, {"initiators": ["mdm_servers"]}),
        task("full", INFO, {"initiators": ["mdm_servers"], "views": ["entries", "counts"]}),
        task("everything", INFO, {"views": ["all"]}),
        task("default", INFO, {"services": ["all"]}),
        task("saved", INFO, {"article_path": saved, "views": ["counts"]}),
        task("probe nothing", PROBE, {"hosts": ["nothing.example.com"]}),
    ]
    results = run_tasks(tasks, task_timeout=120)
    for name, result in results.items():
        assert result["failed"] is False and result["_crash"] is None, "%s: %s" % (name, result["_stdout"])

    # compact by default, and services follow the selection
    res = results["compact"]
    assert "entries" not in res
    sel = load_bundled().select(initiators=["mdm_servers"])
    assert [s["id"] for s in res["services"]] == [s["id"] for s in sel.services]
    assert len(res["services"]) == res["counts"]["services"] == sel.counts()["services"]
    full = results["full"]
    assert set(full) - {"changed", "failed", "invocation", "_rc", "_stdout", "_crash", "_tracebacks"} == {"entries", "counts"}
    assert len(full["entries"]) == sel.counts()["entries"]
    # the compact default is a fraction of the full answer
    size = [len(json.dumps({k: v for k, v in r.items() if not k.startswith("_") and k != "invocation"}))
            for r in (results["default"], results["everything"])]
    assert size[0] * 3 < size[1], size

    # network_info reads the saved text forms: only the rows newer than the saved copy are "removed"
    res = results["saved"]
    newer = {(e["service"], e["host"]) for e in load_bundled().entries if e["since"]}
    assert res["article_diff"]["problems"] == [] and res["article_diff"]["added"] == []
    assert {(r["service"], r["host"]) for r in res["article_diff"]["removed"]} == newer

    # network_probe with nothing selected and no fail flag reports zero
    res = results["probe nothing"]
    assert res["results"] == [] and res["summary"] == {}

"""tests/lib/module_runner.py (the hostile-input suites' fast runner) gives what Ansible gives: the
same cases through ansible-playbook and through the runner end with the same ``failed``,
``changed`` and ``msg`` and the same result keys, in normal, check and diff mode."""
from __future__ import annotations

from tests.lib.ansible_run import run_tasks, task
from tests.lib.module_runner import run_module_cases

INFO = "mdmops.apple.push_certificate_info"
REQUEST = "mdmops.apple.push_certificate_request"
PC = "mdmops.apple.push_connectivity"
IGNORED = {"invocation", "_stdout", "_crash", "_rc", "_tracebacks", "_runner", "warnings", "deprecations", "changed",
           "_ansible_no_log", "diff"}


def _cases(tmp_path, push):
    pem = push.cert_pem().decode()
    return [
        task("info ok", INFO, {"content": pem}),
        task("info missing file", INFO, {"path": str(tmp_path / "missing.pem")}),
        task("info wrong type", INFO, {"content": pem, "expires_within_days": "soon"}),
        task("info unknown option", INFO, {"content": pem, "colour": "red"}),
        task("request in check mode", REQUEST, {"privatekey_path": str(tmp_path / "k.key"),
                                                "csr_path": str(tmp_path / "r.csr"), "common_name": "mdm.example.com"},
             check=True, diff=True),
        task("connectivity bad endpoint", PC, {"services": [], "endpoints": ["nope"]}),
        task("connectivity fail_on", PC, {"services": [], "endpoints": ["127.0.0.1:9"], "layers": ["tcp"],
                                          "fail_on": ["refused"], "timeout": 1}),
    ]


def test_the_runner_gives_what_ansible_gives(tmp_path, push):
    cases = _cases(tmp_path, push)
    through_ansible = run_tasks(cases)
    direct = run_module_cases(cases)
    for case in cases:
        name = case["name"]
        a, d = through_ansible[name], direct[name]
        assert a["_crash"] is None and d["_crash"] is None, name
        assert a["failed"] == d["failed"], (name, a, d)
        assert a.get("changed", False) == d.get("changed", False), name
        assert a.get("msg") == d.get("msg"), (name, a.get("msg"), d.get("msg"))
        assert set(a) - IGNORED == set(d) - IGNORED, (name, sorted(set(a) ^ set(d)))
    assert not (tmp_path / "k.key").exists(), "check mode wrote the key"
    assert direct["connectivity fail_on"]["findings"][0]["status"] == "refused"

"""Where every module meets ansible-core: run on each supported core (scripts/compat.sh; marked
``compat`` in conftest.py), in two playbook runs.

Each module runs once or twice through ansible-playbook with what the core decides: argument-spec
validation (an unknown option, a wrong type), deprecated aliases (a deprecation warning, the value
still used), check mode (nothing written) and diff mode (the diff shown), the action group
``mdmops.apple.consoles`` in ``module_defaults``, and egress_firewall's action plugin (the rollback
timer confirmed by the controller). What the modules return is checked against their RETURN
documentation on the current core (test_return_docs.py); behaviour that does not depend on the core
runs once, there too.
"""
from __future__ import annotations

import os

import pytest

from lab.consoles import Emulator
from tests.lib.ansible_run import run_tasks, task

P = "mdmops.apple."
SHOW_DEPRECATIONS = {"ANSIBLE_DEPRECATION_WARNINGS": "True"}


def _ok(results, name):
    result = results[name]
    assert result["failed"] is False and result["_crash"] is None, "%s:\n%s" % (name, result["_stdout"])
    return result


def _refused(results, name, *words):
    result = results[name]
    assert result["failed"] is True and result["_crash"] is None, "%s:\n%s" % (name, result["_stdout"])
    for word in words:
        assert word in result["msg"], (name, result["msg"])
    return result


def test_modules_on_this_core_on_the_controller(tmp_path, pki, push):
    push.write(str(tmp_path / "push.pem"), str(tmp_path / "push.key"))
    request = {"privatekey_path": str(tmp_path / "new.key"), "csr_path": str(tmp_path / "new.csr"),
               "common_name": "mdm.example.com"}
    with Emulator("nanomdm", tmp_path / "nanomdm", tls_dir=tmp_path / "tls") as emu:
        console = {"console": "nanomdm", "url": emu.url, "api_key": emu.api_key, "ca_path": emu.ca_path}
        tasks = [
            task("info", P + "network_info", {"services": ["push_provider"]}),
            task("info unknown option", P + "network_info", {"services": ["push_provider"], "colour": "red"}),
            task("probe nothing", P + "network_probe", {"hosts": ["nothing.example.com"]}),
            task("probe wrong type", P + "network_probe", {"timeout": "soon"}),
            task("certificate info, deprecated alias", P + "push_certificate_info",
                 {"path": str(tmp_path / "push.pem"), "password": "unused"}),
            task("request in check and diff mode", P + "push_certificate_request", request, check=True, diff=True),
            task("connectivity", P + "push_connectivity",
                 {"services": [], "endpoints": ["127.0.0.1:9"], "layers": ["tcp"], "timeout": 1}),
            task("upload in check mode", P + "push_certificate",
                 dict(console, certificate_path=str(tmp_path / "push.pem"), privatekey_path=str(tmp_path / "push.key"),
                      allow_new_topic=True), check=True, diff=True),
        ]
        results = run_tasks(tasks, env=SHOW_DEPRECATIONS)
    assert _ok(results, "info")["counts"]["services"] == 1
    _refused(results, "info unknown option", "colour")
    assert _ok(results, "probe nothing")["results"] == []
    _refused(results, "probe wrong type", "timeout")
    alias = _ok(results, "certificate info, deprecated alias")
    assert "'password' is deprecated" in " ".join(alias["_stdout"].split()), alias["_stdout"]
    check = _ok(results, "request in check and diff mode")
    assert check["changed"] is True and not os.path.exists(request["privatekey_path"])
    assert "--- before" in check["_stdout"]
    assert _ok(results, "connectivity")["probes"][0]["status"] == "refused"
    upload = _ok(results, "upload in check mode")
    assert upload["changed"] is True and upload["uploaded"] is False
    assert "serial_number" in upload["_stdout"]      # the diff


@pytest.mark.lab
def test_egress_firewall_on_this_core_in_the_lab(lab):
    """The action plugin confirms the timer a drop policy arms; the deprecated ``path`` still works."""
    state_dir = os.path.join(lab.state_dir, "compat-firewall")
    args = {"services": ["push_provider"], "default_policy": "drop", "state_dir": state_dir}
    tasks = [task("apply", P + "egress_firewall", dict(args, path="output")),
             task("again", P + "egress_firewall", args),
             task("absent", P + "egress_firewall", {"state": "absent", "state_dir": state_dir})]
    results = run_tasks(tasks, interpreter=lab.interpreter("corp"), env=SHOW_DEPRECATIONS)
    try:
        applied = _ok(results, "apply")
        assert applied["changed"] is True and applied["rollback"]["status"] == "confirmed"
        assert "'path' is deprecated" in " ".join(applied["_stdout"].split()), applied["_stdout"]
        assert _ok(results, "again")["changed"] is False
        assert _ok(results, "absent")["changed"] is True
    finally:
        lab.run("corp", ["nft", "delete", "table", "inet", "mdmops_apple"], check=False)

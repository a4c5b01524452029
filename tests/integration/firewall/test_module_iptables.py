"""egress_firewall through Ansible with backend iptables (the backend itself: test_iptables.py)."""
from __future__ import annotations

import pytest

from tests.integration.firewall.fwlib import apply, apply_all, connect, remove, selected_targets

pytestmark = pytest.mark.lab

DM = ["device_management", "push_provider"]
ARGS = {"backend": "iptables", "services": DM, "default_policy": "drop"}


def saves(lab):
    out = []
    for cmd in (["iptables-save", "-t", "filter"], ["ip6tables-save", "-t", "filter"], ["ipset", "list", "-n"]):
        text = lab.run("corp", cmd, check=True).stdout
        out.append("\n".join(line for line in text.splitlines() if not line.startswith("#")))
    return out


@pytest.fixture()
def corp(lab):
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)
    lab.run("corp", ["iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"], check=True)
    original = saves(lab)
    yield original
    remove(lab, backend="iptables")
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)


def test_iptables_module_end_to_end(lab, corp):
    res = apply(lab, ARGS, diff=True, via="ansible")     # the diff as Ansible displays it
    assert res["changed"] is True and not res["failed"], res
    assert "MDMOPS-APPLE" in res["_stdout"]
    targets = selected_targets(DM)
    got = connect(lab, targets + [("198.51.100.10", 8080, "tcp"), ("albert.apple.com", 8443, "tcp")])
    assert {t: got[t] for t in targets} == {t: "ok" for t in targets}
    assert got[("198.51.100.10", 8080, "tcp")] != "ok" and got[("albert.apple.com", 8443, "tcp")] != "ok"
    before = saves(lab)
    # the same run again, a wider one in check mode, a bad one: none may change anything
    runs = apply_all(lab, [("again", ARGS), ("check", dict(ARGS, services=DM + ["device_setup"]), True),
                           ("bad", dict(ARGS, extra=[{"address": "10.0.0.0/99", "ports": [1]}]))])
    assert runs["again"]["changed"] is False and not runs["again"]["failed"], runs["again"]
    assert runs["check"]["changed"] is True and not runs["check"]["failed"], runs["check"]
    assert runs["bad"]["failed"] and "not an IP address or CIDR" in runs["bad"]["msg"], runs["bad"]
    assert saves(lab) == before
    gone = apply(lab, {"backend": "iptables", "state": "absent"})
    assert gone["changed"] is True
    assert saves(lab) == corp


@pytest.mark.parametrize("hook", ["output", "forward"])
def test_absent_after_either_hook_leaves_no_empty_builtin_chain(lab, corp, hook):
    before = lab.run("corp", ["nft", "list", "ruleset"], check=True).stdout
    res = apply_all(lab, [("apply", dict(ARGS, hook=hook, rollback_timeout=0)),
                          ("absent", {"backend": "iptables", "state": "absent"})])
    assert res["apply"]["changed"] is True and not res["apply"]["failed"], res["apply"]
    assert res["absent"]["changed"] is True and not res["absent"]["failed"], res["absent"]
    assert lab.run("corp", ["nft", "list", "ruleset"], check=True).stdout == before


def test_a_verdict_edited_under_our_comment_in_one_family_is_repaired(lab, corp):
    assert not apply(lab, dict(ARGS, rollback_timeout=0))["failed"]
    lines = lab.run("corp", ["ip6tables", "-S", "MDMOPS-APPLE"], check=True).stdout.splitlines()[1:]
    index, line = [(n + 1, ln) for n, ln in enumerate(lines) if "allow-v6" in ln][0]
    spec = line.split(" ", 2)[2].replace("-j ACCEPT", "-j DROP")
    lab.run("corp", ["sh", "-c", "ip6tables -R MDMOPS-APPLE %d %s" % (index, spec)], check=True)
    # check mode sees the drift, the next run repairs it, the one after finds nothing to do
    runs = apply_all(lab, [("check", dict(ARGS, rollback_timeout=0), True), ("fix", dict(ARGS, rollback_timeout=0)),
                           ("again", dict(ARGS, rollback_timeout=0))])
    assert [runs[n]["changed"] for n in ("check", "fix", "again")] == [True, True, False], runs
    assert "-j DROP" not in [ln for ln in lab.run("corp", ["ip6tables", "-S", "MDMOPS-APPLE"], check=True)
                             .stdout.splitlines() if "allow-v6" in ln][0]

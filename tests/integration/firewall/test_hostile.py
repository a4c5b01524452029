"""Hostile and malformed input for egress_firewall in a lab namespace: every case fails with a clear
message, no crash, no hang (each case has a deadline) and nothing changed on the host.

The cases run the module's own code in the namespace through tests/lib/module_runner.py (one
import, a fork per case; the action plugin only acts on a successful apply, so it has nothing to do
with a refused input), each judged on its own result; the host's ruleset and the state directory
are compared once after the run (a case that changed anything would also have reported
``changed`` or succeeded). The accepted large list runs through real Ansible."""
from __future__ import annotations

import os

import pytest

from tests.integration.firewall.fwlib import MODULE, apply, apply_all, remove, ruleset
from tests.lib.ansible_run import task
from tests.lib.module_runner import run_module_cases

pytestmark = pytest.mark.lab

BASE = {"services": ["push_provider"], "default_policy": "drop", "rollback_timeout": 0}
CASES = [
    ({"services": 5}, "unknown service '5'"),
    ({"services": ["no_such_service"]}, "no_such_service"),
    ({"extra": "x"}, "extra"),
    ({"extra": [1]}, "extra"),
    ({"extra": [{"address": [], "ports": [1]}]}, "exactly one of host"),
    ({"extra": [{"address": "300.1.1.1", "ports": [1]}]}, "not an IP address"),
    ({"extra": [{"address": "198.51.100.1", "ports": [True]}]}, "not a port"),
    ({"extra": [{"address": "198.51.100.1", "ports": [-1]}]}, "not a port"),
    ({"extra": [{"address": "198.51.100.1", "ports": ["1-2"]}]}, "not a number"),
    ({"extra": [{"address": "198.51.100.1", "ports": [0]}]}, "not a port"),
    ({"extra": [{"address": "198.51.100.1", "ports": [443], "protocol": "icmp"}]}, "must be tcp, udp or both"),
    ({"extra": [{"address": "198.51.100.1", "ports": list(range(1, 2000))}]}, "more than 1024"),
    ({"extra": [{"host": 5, "ports": [443]}]}, "not a DNS name"),
    ({"extra": [{"host": "bad host;rm", "ports": [443]}]}, "not a DNS name"),
    ({"extra": [{"address": "2001:db8::1", "ports": [443]}], "ip_versions": [4]}, "IPv6 address but ip_versions"),
    ({"extra": [{"address": "10.0.0.0/99", "ports": [1]}]}, "not an IP address or CIDR"),
    ({"exclude": [5]}, "exclude[0]"),
    ({"keep_addresses": ["10.0.0.1/8"]}, "host bits set"),
    ({"keep_addresses": ["not-an-ip"]}, "not an IP address"),
    ({"dns_servers": ["100.64.0.1/30"]}, "host bits set"),
    ({"dns_servers": ["x"]}, "not an IP address"),
    ({"mark": []}, "mark must be a number"),
    ({"mark": "0x"}, "mark must be a number"),
    ({"mark": -1}, "between 1 and 0xffffffff"),
    ({"ip_versions": [5]}, "ip_versions"),
    ({"ip_versions": ["four"]}, "ip_versions"),
    ({"hook": "input"}, "hook"),
    ({"path": "sideways"}, "value of hook must be one of"),
    ({"table": "../x"}, "table must be letters"),
    ({"table": "a" * 30}, "table must be letters"),
    ({"rollback_timeout": -1}, "rollback_timeout must be between"),
    ({"rollback_timeout": "abc"}, "rollback_timeout"),
    ({"lock_timeout": -5}, "lock_timeout must be between"),
    ({"keep_snapshots": -1}, "keep_snapshots must be between"),
    ({"confirm_token": "../../etc/passwd"}, "not a token returned by this module"),
    ({"confirm_token": ""}, "not a token returned by this module"),
    ({"confirm_token": "nftables-mdmops_apple-0123456789abcdef"}, "no rollback timer with this token"),
    ({"confirm_token": "iptables-other-0123456789abcdef"}, "belongs to backend iptables, table other"),
    ({"backend": "pf"}, "backend"),
    ({"strategy": "guess"}, "strategy"),
]


def listing(directory):
    """Every file of the state directory with its bytes (the lock file is taken and released by the runs
    that got far enough to look for a pending timer: only its name counts)."""
    out = {}
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith(".lock") or not os.path.isfile(path):
            out[name] = None
        else:
            with open(path, "rb") as handle:
                out[name] = handle.read()
    return out


@pytest.fixture()
def prepared(lab, tmp_path):
    state_dir = str(tmp_path / "state")
    os.mkdir(state_dir, 0o700)
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)
    res = apply(lab, dict(BASE, state_dir=state_dir))
    assert res["changed"] and not res["failed"], res
    yield state_dir, ruleset(lab)
    remove(lab, state_dir=state_dir)
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)


def test_hostile_input_fails_cleanly_and_changes_nothing(lab, prepared):
    state_dir, before = prepared
    files = listing(state_dir)
    named = [("case %d: %s" % (i, sorted(args)), args, message) for i, (args, message) in enumerate(CASES)]
    results = run_module_cases([task(name, MODULE, dict(BASE, state_dir=state_dir, **args)) for name, args, _m in named],
                               timeout=120, python=lab.interpreter("corp"))
    problems = []
    for name, args, message in named:
        res = results[name]
        try:
            assert res["failed"] is True and not res.get("changed"), "wrong success or change: %s" % res
            assert res["_crash"] is None, "the module crashed:\n%s" % res["_crash"]
            assert message in res["msg"], "%r not in the message: %s" % (message, res["msg"])
            assert "exception" not in res and "module_stderr" not in res, res
        except AssertionError as exc:
            problems.append("%s %s: %s" % (name, args if len(repr(args)) < 200 else "", exc))
    assert not problems, "%d of %d cases went wrong:\n%s" % (len(problems), len(CASES), "\n".join(problems))
    assert ruleset(lab) == before, "a hostile input changed the ruleset"
    assert listing(state_dir) == files, "a hostile input changed the state directory"


def test_a_large_but_reasonable_list_is_applied(lab, prepared):
    state_dir, before = prepared
    extra = [{"address": "198.51.%d.%d" % (100 + n // 250, n % 250), "ports": [443]} for n in range(1000)]
    res = apply_all(lab, [("large", dict(BASE, state_dir=state_dir, extra=extra)),
                          ("back", dict(BASE, state_dir=state_dir))])
    assert res["large"]["changed"] is True and not res["large"]["failed"], res["large"]
    assert res["back"]["changed"] is True and not res["back"]["failed"], res["back"]
    assert ruleset(lab) == before

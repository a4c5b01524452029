"""Hostile and malformed input for egress_firewall through real Ansible: every case fails with a clear
message, no traceback, no hang (each run has a deadline) and nothing changed on the host."""
from __future__ import annotations

import pytest

from tests.integration.firewall.fwlib import apply, ruleset

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


@pytest.fixture(scope="module")
def prepared(lab, tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("state")
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)
    res = apply(lab, dict(BASE, state_dir=str(state_dir)))
    assert res["changed"] and not res["failed"], res
    yield str(state_dir), ruleset(lab)
    apply(lab, {"state": "absent", "state_dir": str(state_dir)})
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)


@pytest.mark.parametrize("args,message", CASES, ids=[str(i) for i in range(len(CASES))])
def test_hostile_input_fails_cleanly_and_changes_nothing(lab, prepared, args, message):
    state_dir, before = prepared
    res = apply(lab, dict(BASE, state_dir=state_dir, **args))
    assert res["failed"] is True and not res.get("changed"), res
    assert message in res["msg"], res["msg"]
    assert "Traceback" not in res["_stdout"] and "exception" not in res, res["_stdout"][-2000:]
    assert ruleset(lab) == before


def test_a_large_but_reasonable_list_is_applied(lab, prepared):
    state_dir, before = prepared
    extra = [{"address": "198.51.%d.%d" % (100 + n // 250, n % 250), "ports": [443]} for n in range(1000)]
    res = apply(lab, dict(BASE, state_dir=state_dir, extra=extra))
    assert res["changed"] is True and not res["failed"], res
    assert apply(lab, dict(BASE, state_dir=state_dir))["changed"] is True
    assert ruleset(lab) == before

"""egress_firewall with the nftables backend, proved with real connections in the lab."""
from __future__ import annotations

import pytest

from tests.integration.firewall.fwlib import MODULE, apply, connect, remove, ruleset, selected_targets, state_dir
from tests.lib.ansible_run import task
from tests.lib.module_runner import run_module_cases

pytestmark = pytest.mark.lab

DM = ["device_management", "push_provider"]
DROP = {"services": DM, "default_policy": "drop"}
NOT_IN_TABLE = [("albert.apple.com", 8443, "tcp"),          # Apple address, port in no table
                ("198.51.100.10", 8080, "tcp"),             # not Apple
                ("updates.cdn-apple.com", 443, "tcp")]      # a CDN address, service not selected
USER_TABLE = """table inet usertable {
  chain out { type filter hook output priority 0; policy accept; tcp dport 9 counter drop; }
}
"""


@pytest.fixture()
def corp(lab):
    """corp with a user table of its own; everything of ours removed afterwards."""
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)
    lab.run("corp", ["nft", "-f", "-"], input=USER_TABLE, check=True)
    original = ruleset(lab)
    yield original
    remove(lab)
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)


def test_default_drop_allows_every_selected_endpoint_and_nothing_else(lab, corp):
    res = apply(lab, DROP)
    assert res["changed"] is True and not res["failed"], res
    targets = selected_targets(DM)
    assert len(targets) >= 14
    got = connect(lab, targets + NOT_IN_TABLE)
    assert {t: got[t] for t in targets} == {t: "ok" for t in targets}
    for t in NOT_IN_TABLE:
        assert got[t] != "ok", t
    # the user's own table is untouched and still there
    assert "table inet usertable" in ruleset(lab) and "tcp dport 9" in ruleset(lab)


def test_default_drop_over_ipv6(lab, corp):
    blocked = [("albert.apple.com", 8443, "tcp"), ("2001:db8:100::10", 8080, "tcp"), ("updates.cdn-apple.com", 443, "tcp")]
    assert set(connect(lab, blocked, family=6).values()) == {"ok"}      # open before the policy
    apply(lab, DROP)
    targets = selected_targets(DM)
    got = connect(lab, targets + blocked, family=6)
    assert {t: got[t] for t in targets} == {t: "ok" for t in targets}
    assert got[("albert.apple.com", 8443, "tcp")] != "ok"
    assert got[("2001:db8:100::10", 8080, "tcp")] != "ok"
    assert got[("updates.cdn-apple.com", 443, "tcp")] != "ok"


def test_second_run_changes_nothing_and_check_mode_touches_nothing(lab, corp):
    first = apply(lab, DROP)
    assert first["changed"] is True
    again = apply(lab, DROP)
    assert again["changed"] is False and not again["failed"], again
    before = ruleset(lab)
    wider = apply(lab, dict(DROP, services=DM + ["device_setup"]), check=True, diff=True,   # adds UDP 123
                  via="ansible")     # what Ansible displays
    assert wider["changed"] is True and not wider["failed"]
    assert ruleset(lab) == before
    assert "udp . 123" not in before and "+  17.0.0.0/8 udp 123" in wider["_stdout"]


def test_diff_shows_the_change_as_rules_and_elements(lab, corp):
    apply(lab, DROP)
    res = apply(lab, dict(DROP, extra=[{"address": "198.51.100.10", "ports": [8080]}]), diff=True, via="ansible")
    assert res["changed"] is True
    out = res["_stdout"]
    assert "+  198.51.100.10/32 tcp 8080" in out
    assert "ip daddr . meta l4proto . th dport @allow_v4" in out
    assert connect(lab, [("198.51.100.10", 8080, "tcp")]) == {("198.51.100.10", 8080, "tcp"): "ok"}


BAD_INPUTS = [
    ({"services": ["device_managment"]}, "Did you mean 'device_management'"),
    ({"extra": [{"address": "198.51.100.10", "ports": [70000]}]}, "70000 is not a port"),
    ({"extra": [{"address": "198.51.100.10", "ports": ["https"]}]}, "'https' is not a number"),
    ({"keep_addresses": ["10.0.0.0/33"]}, "not an IP address or CIDR"),
    ({"extra": [{"ports": [443]}]}, "exactly one of host"),
    ({"extra": [{"host": "nx.invalid", "ports": [443]}]}, "nx.invalid did not resolve"),
    ({"platforms": ["android"]}, "unknown platform"),
]


def test_bad_input_fails_clearly_and_changes_nothing(lab, corp):
    """Over an applied table, each bad input (the module's own code in corp, tests/lib/module_runner.py;
    the lab's DNS answers nx.invalid with NXDOMAIN) fails, says why, and leaves the ruleset as it was."""
    apply(lab, DROP)
    before = ruleset(lab)
    cases = [task("case %d" % n, MODULE, dict(DROP, state_dir=state_dir(lab), **args))
             for n, (args, _message) in enumerate(BAD_INPUTS)]
    results = run_module_cases(cases, timeout=120, python=lab.interpreter("corp"))
    for n, (args, message) in enumerate(BAD_INPUTS):
        res = results["case %d" % n]
        assert res["failed"] is True and res.get("changed", False) is False, (args, res)
        assert message in res["msg"], (args, res["msg"])
        assert res["_crash"] is None and "Traceback" not in res["_stdout"], res["_stdout"]
    assert ruleset(lab) == before


def test_absent_restores_the_original_ruleset_byte_for_byte(lab, corp):
    apply(lab, dict(DROP, strategy="both", keep_addresses=["10.9.0.0/16"]))
    assert ruleset(lab) != corp
    res = apply(lab, {"state": "absent"}, diff=True)
    assert res["changed"] is True
    assert ruleset(lab) == corp
    assert apply(lab, {"state": "absent"})["changed"] is False


def test_resolve_strategy_allows_exactly_the_resolved_addresses(lab, corp):
    res = apply(lab, {"services": ["push_provider", "device_management"], "strategy": "resolve",
                      "default_policy": "drop"})
    assert res["changed"] is True and not res["failed"], res
    assert any(line.startswith("nftset=/push.apple.com/4#inet#mdmops_apple#dyn") for line in res["dnsmasq"])
    api_v4 = lab.resolve("api.push.apple.com")[0]
    assert "%s/32 tcp 443" % api_v4 in res["elements"]
    got = connect(lab, [("api.push.apple.com", 443, "tcp"), ("api.push.apple.com", 2197, "tcp"),
                        ("albert.apple.com", 443, "tcp")])   # Apple, but not selected: no longer allowed
    assert got == {("api.push.apple.com", 443, "tcp"): "ok", ("api.push.apple.com", 2197, "tcp"): "ok",
                   ("albert.apple.com", 443, "tcp"): got[("albert.apple.com", 443, "tcp")]}
    assert got[("albert.apple.com", 443, "tcp")] != "ok"
    # a wildcard name is allowed once the DNS-fed set learns its address (as dnsmasq nftset= would)
    courier = lab.resolve("7-courier.push.apple.com")[0]
    assert connect(lab, [("7-courier.push.apple.com", 5223, "tcp")])[("7-courier.push.apple.com", 5223, "tcp")] != "ok"
    lab.run("corp", ["nft", "add", "element", "inet", "mdmops_apple", dyn_set(res, "push.apple.com", 4),
                     "{ %s }" % courier], check=True)
    assert connect(lab, [("7-courier.push.apple.com", 5223, "tcp")]) == {("7-courier.push.apple.com", 5223, "tcp"): "ok"}
    # re-applying keeps what DNS taught the set, and changes nothing
    again = apply(lab, {"services": ["push_provider", "device_management"], "strategy": "resolve",
                        "default_policy": "drop"})
    assert again["changed"] is False
    assert courier in lab.run("corp", ["nft", "list", "set", "inet", "mdmops_apple",
                                       dyn_set(res, "push.apple.com", 4)], check=True).stdout


def dyn_set(result, domain, family):
    """The DNS-fed set that dnsmasq would fill for ``domain`` (from the module's nftset= lines)."""
    for line in result["dnsmasq"]:
        if line.startswith("nftset=/%s/" % domain):
            for target in line.split("/")[2].split(","):
                if target.startswith("%d#" % family):
                    return target.split("#")[-1]
    raise AssertionError("no nftset line for %s in %s" % (domain, result["dnsmasq"]))


def test_forward_path_filters_the_device_network(lab, corp):
    res = apply(lab, dict(DROP, path="forward"))
    assert res["changed"] is True and not res["failed"], res
    got = connect(lab, [("1-courier.push.apple.com", 5223, "tcp"), ("api.push.apple.com", 443, "tcp"),
                        ("198.51.100.10", 8080, "tcp"), ("albert.apple.com", 8443, "tcp")], ns="dev")
    assert got[("1-courier.push.apple.com", 5223, "tcp")] == "ok"
    assert got[("api.push.apple.com", 443, "tcp")] == "ok"
    assert got[("198.51.100.10", 8080, "tcp")] != "ok"
    assert got[("albert.apple.com", 8443, "tcp")] != "ok"
    # the gateway's own traffic is not filtered on the forward path
    assert connect(lab, [("198.51.100.10", 8080, "tcp")]) == {("198.51.100.10", 8080, "tcp"): "ok"}


def test_mark_lets_another_default_drop_table_accept_the_catalog(lab, corp):
    lab.run("corp", ["nft", "-f", "-"], check=True, input="""table inet strict {
  chain out { type filter hook output priority 0; policy drop;
    oifname "lo" accept; ct state established,related accept; udp dport 53 accept;
    meta mark & 0x00004d44 == 0x00004d44 accept;
  }
}
""")
    assert connect(lab, [("api.push.apple.com", 443, "tcp")]) != {("api.push.apple.com", 443, "tcp"): "ok"}
    res = apply(lab, {"services": DM, "mark": 0x4d44})
    assert res["changed"] is True and not res["failed"], res
    got = connect(lab, [("api.push.apple.com", 443, "tcp"), ("198.51.100.10", 8080, "tcp")])
    assert got == {("api.push.apple.com", 443, "tcp"): "ok", ("198.51.100.10", 8080, "tcp"): got[("198.51.100.10", 8080, "tcp")]}
    assert got[("198.51.100.10", 8080, "tcp")] != "ok"

# rollback, lock and takeover tests: test_rollback.py

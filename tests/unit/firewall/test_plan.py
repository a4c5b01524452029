"""The backend-neutral firewall plan (pure logic; real-packet tests are in tests/integration/firewall)."""
from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import (
    FirewallError, build_plan, dnsmasq_lines,
)
from ansible_collections.mdmops.apple.plugins.module_utils._firewall import _nftables


def fake_dns(name, families):
    table = {"api.push.apple.com": ["17.249.1.1", "2620:149:a44::1"], "albert.apple.com": ["17.1.2.3"],
             "crl3.digicert.com": ["203.0.113.9"], "mdm.example.com": ["198.51.100.7"]}
    if name not in table:
        raise OSError("NXDOMAIN")
    return [a for a in table[name] if ipaddress.ip_address(a).version in families]


def plan(**params):
    return build_plan(params, resolver=fake_dns)


def test_cidr_opens_the_selected_ports_towards_apple_ranges():
    p = plan(services=["device_management", "push_provider"])
    assert p.element_text(4) == ["17.0.0.0/8 tcp 80", "17.0.0.0/8 tcp 443", "17.0.0.0/8 tcp 2197", "17.0.0.0/8 tcp 5223"]
    assert len(p.element_text(6)) == 4 * 3
    assert p.uncovered == [] and p.dyn_groups == []


def test_apns_ranges_narrow_the_push_hosts_only():
    p = plan(services=["push_provider"], apns_ranges=True, ip_versions=[4])
    nets = {e.split(" ")[0] for e in p.element_text(4)}
    assert nets == {"17.249.0.0/16", "17.252.0.0/16", "17.57.144.0/22", "17.188.128.0/18", "17.188.20.0/23"}


def test_hosts_outside_apple_ranges_are_reported_uncovered_by_cidr():
    p = plan(services=["certificate_validation"])
    reasons = {u["host"]: u["reason"] for u in p.uncovered}
    assert reasons["crl3.digicert.com"].startswith("third-party host")
    assert "ocsp.apple.com" not in reasons


def test_resolve_uses_addresses_and_dns_sets_for_wildcards():
    p = plan(services=["push_provider", "device_management"], strategy="resolve", ip_versions=[4])
    assert "17.249.1.1/32 tcp 443" in p.element_text(4) and "17.249.1.1/32 tcp 2197" in p.element_text(4)
    assert [g["host"] for g in p.dyn_groups] == ["*.appattest.apple.com", "*.push.apple.com"]
    assert p.dyn_groups[1]["tcp"] == [80, 443, 2197, 5223]
    unresolved = {u["host"] for u in p.uncovered}
    assert "gdmf.apple.com" in unresolved        # the fake resolver does not know it
    assert dnsmasq_lines(p)[1] == "nftset=/push.apple.com/4#inet#mdmops_apple#dyn2_v4"


def test_both_merges_and_compacts_covered_addresses():
    p = plan(services=["push_provider"], strategy="both", ip_versions=[4])
    assert p.element_text(4) == ["17.0.0.0/8 tcp 443", "17.0.0.0/8 tcp 2197"]   # 17.249.1.1 is inside 17/8


def test_extra_and_exclude():
    p = plan(services=["device_setup"], ip_versions=[4],
             extra=[{"address": "198.51.100.0/24", "ports": [8443], "protocol": "both"},
                    {"host": "mdm.example.com", "ports": [443]}],
             exclude=["time.apple.com", "time-ios.apple.com", "time-macos.apple.com", {"port": 80}])
    text = p.element_text(4)
    assert "198.51.100.0/24 tcp 8443" in text and "198.51.100.0/24 udp 8443" in text
    assert "198.51.100.7/32 tcp 443" in text
    assert not any(" udp 123" in t or " tcp 80" in t for t in text)


@pytest.mark.parametrize("params,message", [
    ({"services": ["nope"]}, "unknown service 'nope'"),
    ({"strategy": "magic"}, "strategy must be one of"),
    ({"extra": [{"address": "1.2.3.4", "ports": [0]}]}, "is not a port number"),
    ({"extra": [{"address": "1.2.3.4", "ports": [True]}]}, "is not a port number"),
    ({"extra": [{"address": "1.2.3.4/40", "ports": [1]}]}, "not an IP address or CIDR"),
    ({"extra": [{"address": "1.2.3.4", "ports": [1], "protocol": "icmp"}]}, "must be tcp, udp or both"),
    ({"extra": [{"address": "1.2.3.4", "ports": [1], "proto": "tcp"}]}, "unknown key(s) proto"),
    ({"extra": [{"host": "nx.example", "ports": [1]}]}, "nx.example did not resolve"),
    ({"exclude": [{"colour": "red"}]}, "must name a host, a port"),
    ({"mark": 0}, "mark must be between"),
    ({"ip_versions": [5]}, "ip_versions must list 4 and/or 6"),
])
def test_bad_input_is_a_clear_error(params, message):
    with pytest.raises(FirewallError) as exc:
        plan(**params)
    assert message in str(exc.value)


def test_rendered_ruleset_keeps_the_promised_traffic_under_drop():
    p = plan(services=["device_management"], default_policy="drop", keep_addresses=["10.1.0.0/16"],
             dns_servers=["100.64.0.1"])
    text = _nftables.render(p)
    assert text.startswith("table inet mdmops_apple {}\ndelete table inet mdmops_apple\n")
    for piece in ('oifname "lo" accept', "ct state established,related accept", "ipv6-icmp",
                  "ip daddr 100.64.0.1 meta l4proto { tcp, udp } th dport 53 accept", "@keep_v4",
                  "policy drop;"):
        assert piece in text
    forward = _nftables.render(plan(services=["device_management"], default_policy="drop", path="forward"))
    assert "hook forward" in forward and 'oifname "lo"' not in forward


def test_rule_ids_change_when_a_rule_changes():
    a = dict(_nftables.rules(plan(services=["push_provider"])))
    b = dict(_nftables.rules(plan(services=["push_provider"], mark=0x10)))
    assert set(a) != set(b)


@pytest.mark.parametrize("params,message", [
    ({"dns_servers": ["100.64.0.1/30"]}, "host bits set"),
    ({"keep_addresses": ["10.0.0.1/8"]}, "host bits set"),
    ({"extra": [{"address": "2001:db8::1", "ports": [443]}], "ip_versions": [4]}, "IPv6 address but ip_versions"),
    ({"dns_servers": ["fd64::1"], "ip_versions": [4]}, "IPv6 address but ip_versions"),
    ({"mark": "0xzz"}, "mark must be a number"),
    ({"mark": True}, "mark must be a number"),
    ({"mark": 0}, "between 1 and 0xffffffff"),
    ({"mark": "0x100000000"}, "between 1 and 0xffffffff"),
    ({"keep_addresses": [None]}, "not an IP address"),
    ({"hook": "input"}, "hook must be output or forward"),
])
def test_silent_rewrites_are_errors(params, message):
    with pytest.raises(FirewallError) as exc:
        plan(services=["push_provider"], **params)
    assert message in str(exc.value)


@pytest.mark.parametrize("value", [0x4d44, "0x4d44", "19780", " 0x4D44 "])
def test_mark_accepts_what_users_write(value):
    assert plan(services=["push_provider"], mark=value).mark == 0x4d44


def test_dns_servers_are_used_exactly():
    p = plan(services=["push_provider"], default_policy="drop", dns_servers=["100.64.0.0/30", "100.64.9.9"])
    assert p.dns_servers == ["100.64.0.0/30", "100.64.9.9"]
    text = _nftables.render(p)
    assert "ip daddr { 100.64.0.0/30, 100.64.9.9 } meta l4proto { tcp, udp } th dport 53 accept" in text


def test_kept_traffic_is_defined_once_as_intents():
    p = plan(services=["push_provider"], default_policy="drop", keep_addresses=["10.0.0.0/8"], dns_servers=["fd64::1"])
    assert [i["kind"] for i in p.kept()] == ["loopback", "established", "pickup", "icmp", "dns", "keep"]
    assert plan(services=["push_provider"]).kept() == []
    assert "loopback" not in [i["kind"] for i in plan(services=["push_provider"], default_policy="drop",
                                                      hook="forward").kept()]


def test_comparable_sees_a_changed_verdict_under_our_comment():
    from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import comparable
    state = {"chains": {"egress": "x"}, "rules": ["egress: mdmops:a:1"], "rule_text": {"mdmops:a:1": "tcp dport 443 accept"},
             "sets": {}}
    edited = dict(state, rule_text={"mdmops:a:1": "tcp dport 443 drop"})
    assert comparable(state) != comparable(edited)
    assert comparable(state) == comparable(dict(state))


def test_huge_lists_are_refused_before_any_work():
    extra = [{"address": "198.51.100.1", "ports": [443]}] * 10001
    with pytest.raises(FirewallError) as exc:
        plan(services=["push_provider"], extra=extra)
    assert "more than the 10000" in str(exc.value)

"""lab.addresses and lab.dns: pure functions, no root needed."""
from __future__ import annotations

import ipaddress

import pytest

from lab import addresses, dns
from lab.netns import Lab, LabError

STAND_IN = [
    {"service": "push", "host": "*.push.apple.com", "ports": [5223, 443], "protocols": ["tcp"],
     "network": "apple", "retired": False},
    {"service": "push", "host": "api.push.apple.com", "ports": [443, 2197], "protocols": ["tcp"],
     "network": "apple", "retired": False},
    {"service": "push", "host": "gateway.push.apple.com", "ports": [2195], "protocols": ["tcp"],
     "network": "apple", "retired": True},
    {"service": "time", "host": "time.apple.com", "ports": [123], "protocols": ["udp"],
     "network": "apple", "retired": False},
    {"service": "setup", "host": "albert.apple.com", "ports": [443], "protocols": ["tcp"],
     "network": "apple", "retired": False},
    {"service": "crl", "host": "crl3.digicert.com", "ports": [80], "protocols": ["tcp"],
     "network": "third_party", "retired": False},
    {"service": "cdn", "host": "*.cdn-apple.com", "ports": [443], "protocols": ["tcp", "udp"],
     "network": "cdn", "retired": False},
    {"service": "x", "host": "17.0.0.0/8", "ports": [443], "protocols": ["tcp"], "network": "apple",
     "retired": False},
]


def inside(addr, cidr):
    return ipaddress.ip_address(addr) in ipaddress.ip_network(cidr)


def test_records_are_deterministic_and_in_their_pools():
    records = addresses.build_records(STAND_IN)
    assert records == addresses.build_records(list(reversed(STAND_IN)))
    assert "17.0.0.0/8" not in records, "CIDRs are not names"
    for name in ("albert.apple.com", "time.apple.com"):
        v4, v6 = records[name]
        assert inside(v4, "17.0.0.0/8") and not inside(v4, "17.0.0.0/24") and inside(v6, "2620:149::/32")
    for name in ("api.push.apple.com", "*.push.apple.com"):
        v4, v6 = records[name]
        assert inside(v4, "17.249.0.0/16") and inside(v6, "2620:149:a44::/48")
    for name in ("crl3.digicert.com", "*.cdn-apple.com"):
        v4, v6 = records[name]
        assert inside(v4, "203.0.113.0/24") and inside(v6, "2001:db8:cd::/48")
    assert inside(records["*.example.com"][0], "198.51.100.0/24")


def test_resolve_lab_mirrors_dnsmasq_semantics():
    records = addresses.build_records(STAND_IN)
    wild = records["*.push.apple.com"]
    assert addresses.resolve_lab("api.push.apple.com", records) == records["api.push.apple.com"]
    assert addresses.resolve_lab("API.Push.Apple.com.", records) == records["api.push.apple.com"]
    assert addresses.resolve_lab("3-courier.push.apple.com", records) == wild
    assert addresses.resolve_lab("push.apple.com", records) == wild          # address=/x/ answers x
    assert addresses.resolve_lab("a.api.push.apple.com", records) == wild
    assert addresses.resolve_lab("apple.com", records) is None
    assert addresses.resolve_lab("www.google.com", records) is None
    assert addresses.address_for("*.push.apple.com", records) == wild
    with pytest.raises(KeyError):
        addresses.address_for("nope.apple.com", records)


def test_extra_records_override_and_drop():
    records = addresses.build_records(STAND_IN, {
        "api.push.apple.com": ["17.0.0.10", "2620:149::10"], "albert.apple.com": None,
        "*.lab.example": "internet", "one.example.org": "198.51.100.5"})
    assert records["api.push.apple.com"] == ("17.0.0.10", "2620:149::10")
    assert "albert.apple.com" not in records
    assert inside(records["*.lab.example"][0], "198.51.100.0/24")
    assert records["one.example.org"] == ("198.51.100.5", None)
    with pytest.raises(ValueError):
        addresses.build_records(STAND_IN, {"not a name": "apple"})


def test_no_collisions_in_a_small_pool():
    hosts = {"h%d.cdn.example" % i: "cdn" for i in range(200)}
    records = addresses.assign(hosts)
    v4 = [pair[0] for pair in records.values()]
    assert len(set(v4)) == 200 and all(inside(a, "203.0.113.0/24") for a in v4)
    assert not any(a.endswith((".0", ".255")) for a in v4)


def test_ports_union_includes_retired_and_udp():
    assert addresses.catalog_ports(STAND_IN) == {"tcp": [80, 443, 2195, 2197, 5223], "udp": [123, 443]}


def test_dnsmasq_config():
    records = addresses.build_records(STAND_IN)
    conf = dns.render(records, ["100.64.0.1"], "/tmp/x.log", "/tmp/conf.d")
    v4, v6 = records["*.push.apple.com"]
    assert "address=/push.apple.com/%s\naddress=/push.apple.com/%s" % (v4, v6) in conf
    assert "host-record=api.push.apple.com,%s,%s" % records["api.push.apple.com"] in conf
    for line in ("no-resolv", "no-hosts", "address=/#/", "listen-address=100.64.0.1"):
        assert line in conf.splitlines()


def test_bundled_catalog_gets_distinct_addresses():
    try:
        entries = addresses.catalog_entries()
    except ImportError:
        pytest.skip("bundled catalog not available")
    records = addresses.build_records(entries)
    flat = [a for pair in records.values() for a in pair]
    assert len(flat) == len(set(flat))
    assert {"api.push.apple.com", "*.push.apple.com"} <= set(records)


def test_clear_errors_without_root_or_with_a_bad_prefix(monkeypatch):
    with pytest.raises(LabError, match="bad lab prefix"):
        Lab("Bad Prefix")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        Lab("mdmnoroot", entries=STAND_IN).up()

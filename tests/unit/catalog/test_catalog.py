"""The catalog model: normalisation, selection, views."""
from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils import _catalog as cat


@pytest.fixture(scope="module")
def bundled():
    return cat.load_bundled()


def entry(bundled, service, host):
    return next(e for e in bundled.entries if e["service"] == service and e["host"] == host)


def test_apple_typos_are_normalised_and_explained(bundled):
    sylvan = entry(bundled, "apps_content", "sylvan.apple.com")
    assert sylvan["ports"] == [80, 443] and sylvan["as_written"]["ports"] == "80, 433"
    assert any("433" in n for n in sylvan["notes"])
    fonts = entry(bundled, "abm_asm_administrators", "www.apple.com")
    assert fonts["as_written"]["host"] == "www.apple.com/fr" and any("/fr" in n for n in fonts["notes"])
    sftp = entry(bundled, "abm_asm_administrators", "upload.appleschoolcontent.com")
    assert sftp["protocols"] == ["tcp"] and sftp["ports"] == [22] and sftp["as_written"]["protocol"] == "SSH"


def test_shifted_proxy_cells_are_read_as_proxy_answers(bundled):
    gs = entry(bundled, "device_setup", "gs.apple.com")
    assert gs["supports_proxy"] is True and gs["description"] == "" and gs["as_written"]["description"] == "Oui"
    push = entry(bundled, "device_management", "*.push.apple.com")
    assert push["supports_proxy"] is None and push["ports"] == [443, 80, 5223, 2197]


def test_both_protocols_and_platforms(bundled):
    relay = entry(bundled, "apple_intelligence_siri_search", "apple-relay.cloudflare.com")
    assert relay["protocols"] == ["tcp", "udp"] and relay["network"] == "third_party"
    assert entry(bundled, "device_setup", "time-macos.apple.com")["platforms"] == ["macOS"]
    assert entry(bundled, "abm_asm_administrators", "*.business.apple.com")["platforms"] == []


def test_push_provider_and_retired_ports(bundled):
    api = entry(bundled, "push_provider", "api.push.apple.com")
    assert api["ports"] == [443, 2197] and api["initiators"] == ["mdm_servers"]
    retired = [e for e in bundled.entries if e["retired"]]
    assert sorted((e["host"], e["ports"][0]) for e in retired) == [
        ("feedback.push.apple.com", 2196), ("gateway.push.apple.com", 2195)]
    assert 2195 not in bundled.ports()["tcp"] and 2196 not in bundled.ports()["tcp"]
    with_retired = bundled.select(include_retired=True)
    assert {2195, 2196} <= set(with_retired.ports()["tcp"])


def test_every_service_has_rows_and_an_english_title(bundled):
    assert len(bundled.services) == 22
    for s in bundled.services:
        assert s["entries"] > 0 and s["title"] and s["id"] == s["id"].lower()
    for e in bundled.entries:
        assert e["purpose"] and e["initiators"]


def test_select_filters(bundled):
    mac = bundled.select(services=["device_management"], platforms=["MACOS"])
    assert "setup.icloud.com" not in mac.hosts()           # iOS and iPadOS only
    assert "*.push.apple.com" in mac.hosts()
    servers = bundled.select(initiators=["mdm_servers"])
    assert {"*.push.apple.com", "api.push.apple.com", "gdmf.apple.com", "mdmenrollment.apple.com",
            "vpp.itunes.apple.com"} <= set(servers.hosts())
    assert set(servers.hosts()) == {e["host"] for e in bundled.entries
                                    if "mdm_servers" in e["initiators"] and not e["retired"]}
    udp = bundled.select(protocols=["udp"])
    assert all(e["protocols"] == ["udp"] for e in udp.entries) and "time.apple.com" in udp.hosts()
    groups = bundled.select(services=["abm_asm"])
    assert {e["service"] for e in groups.entries} == {"abm_asm_administrators", "abm_asm_users"}
    by_name = bundled.select(hosts=["1-courier.push.apple.com"])
    assert by_name.hosts() == ["*.push.apple.com"]


@pytest.mark.parametrize("kwargs,message", [
    ({"services": ["device_managment"]}, "Did you mean 'device_management'"),
    ({"platforms": ["android"]}, "unknown platform 'android'"),
    ({"protocols": ["icmp"]}, "unknown protocol 'icmp'"),
    ({"initiators": ["users"]}, "unknown initiator 'users'"),
])
def test_bad_selection_is_a_clear_error(bundled, kwargs, message):
    with pytest.raises(cat.CatalogError, match=message):
        bundled.select(**kwargs)


def test_views(bundled):
    retired = [e for e in bundled.entries if e["retired"]]
    assert (bundled.counts()["entries"], bundled.counts()["retired"]) == (len(bundled.entries), len(retired))
    default = bundled.select()
    counts = default.counts()
    assert counts["entries"] == len(bundled.entries) - len(retired) and counts["retired"] == 0
    assert counts["services"] == len(bundled.services)
    assert len(default.endpoints()) == counts["endpoints"] == sum(
        len(e["ports"]) * len(e["protocols"]) for e in bundled.entries if not e["retired"])
    outside = {o["host"]: o["network"] for o in bundled.outside_apple_range()}
    assert outside["crl3.digicert.com"] == "third_party" and outside["updates.cdn-apple.com"] == "cdn"
    # CDN-served hosts the old name pattern classed apple (Akamai, CDN downloads)
    for host in ("www.apple.com", "itunes.apple.com", "*.itunes.apple.com", "swcdn.apple.com", "oscdn.apple.com"):
        assert outside[host] == "cdn", host
    assert "albert.apple.com" not in outside
    assert "*.push.apple.com" in bundled.wildcard_hosts()
    unique = bundled.unique_endpoints()
    assert len(unique) == len({(u["host"], u["port"], u["protocol"]) for u in unique})


def test_ranges(bundled):
    assert bundled.apple_networks(family=4) == ["17.0.0.0/8"]
    assert bundled.in_apple_range("17.57.146.52") and not bundled.in_apple_range("8.8.8.8")
    assert bundled.in_apple_range("17.249.1.1", apns_only=True)
    assert not bundled.in_apple_range("17.1.1.1", apns_only=True)
    for apns in bundled.apple_networks(apns_only=True):
        net = ipaddress.ip_network(apns)
        assert any(net.subnet_of(ipaddress.ip_network(a)) for a in bundled.apple_networks(family=net.version))


@pytest.mark.parametrize("cells,message", [
    (["", "443", "TCP"], "not a DNS name"),
    (["host.apple.com:443", "443", "TCP"], "port belongs in the ports column"),
    (["a.apple.com", "http", "TCP"], "no port number"),
    (["a.apple.com", "70000", "TCP"], "not a port"),
    (["a.apple.com", "443", "SCTP"], "expected TCP and/or UDP"),
])
def test_bad_cells(cells, message):
    with pytest.raises(cat.CatalogError, match=message):
        cat.normalise_cells(cells)


@pytest.mark.parametrize("cell,value", [
    ("Oui", True), ("Yes", True), ("\u306f\u3044", True), ("S\u00ed", True), ("\u2014", False),
    ("-", False), ("__", False), ("Non", False), ("", None)])
def test_proxy_words(cell, value):
    assert cat.proxy_value(cell) == (value, True)


def test_generated_data_is_current():
    import subprocess
    import sys
    import os
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    proc = subprocess.run([sys.executable, os.path.join(repo, "tools", "catalog.py"), "check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_row_has_its_reviewed_fields(bundled):
    for e in bundled.entries:
        assert e["network"] in cat.NETWORKS
        assert isinstance(e["apns_range"], bool)
        if e["wildcard"]:
            assert e["probe_name"] and cat.host_matches(e["host"], e["probe_name"]), e["host"]
        else:
            assert e["probe_name"] is None
    assert {e["host"] for e in bundled.entries if e["apns_range"]} == {"*.push.apple.com", "api.push.apple.com"}
    assert bundled.probe_names()["*.appattest.apple.com"] == "data.appattest.apple.com"


def test_empty_services_is_an_error_not_everything(bundled):
    with pytest.raises(cat.CatalogError, match="services is empty"):
        bundled.select(services=[])
    assert bundled.select(services=None).counts() == bundled.select(services=["all"]).counts()


@pytest.mark.parametrize("value,message", [
    ([{"a": 1}], "is not a string"), (5, "must be a list of strings"), (["x" * 10000], "longer than 253"),
    ([None], "is not a string"), ([True], "is not a string"), (["a"] * 5000, "more than the 1000"),
])
def test_hostile_selection_values_are_clear_errors(bundled, value, message):
    with pytest.raises(cat.CatalogError, match=message):
        bundled.select(services=value)


def test_selected_services_are_the_ones_with_rows(bundled):
    sel = bundled.select(initiators=["mdm_servers"])
    assert [s["id"] for s in sel.services] == [s["id"] for s in bundled.services
                                               if any(e["service"] == s["id"] for e in sel.entries)]
    assert len(sel.services) == sel.counts()["services"]

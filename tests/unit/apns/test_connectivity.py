"""push_connectivity's orchestrator (module_utils/_apns/_connectivity.py): selection, endpoint parsing, layer
planning, the layer chain (a layer runs only after the ones before it passed), deduplication, summary, fail_on,
and the certificate facts.  Pure: the network engines are replaced by a small recording stand-in (what the
engines themselves do is shown against real servers in tests/integration/apns/)."""
from __future__ import annotations

import threading

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._apns import _connectivity as c
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled


# ---------------------------------------------------------------- options
def test_default_layers():
    assert c.check_layers(None) == ["dns", "tcp", "tls"]
    assert c.check_layers(None, certificate_given=True) == ["dns", "tcp", "tls", "provider"]
    assert c.check_layers(None, mdm_urls=[("https://m", "m", 443)]) == ["dns", "tcp", "tls", "ats"]
    assert c.check_layers(None, proxy=object()) == ["tcp", "tls"]


def test_explicit_layers_are_put_in_connection_order():
    assert c.check_layers(["tls", "dns", "tls"]) == ["dns", "tls"]
    assert c.check_layers(["provider", "tcp"], certificate_given=True) == ["tcp", "provider"]


@pytest.mark.parametrize("layers,kw,words", [
    ([], {}, "layers is empty"),
    (["tcp", "http"], {}, "unknown layer 'http'"),
    (["provider"], {}, "needs the push certificate"),
    (["ats"], {}, "give them in mdm_urls"),
    (["tcp"], {"mdm_urls": [("https://m", "m", 443)]}, "does not include ats"),
])
def test_bad_layers(layers, kw, words):
    with pytest.raises(c.ConnectivityError, match=words):
        c.check_layers(layers, **kw)


def test_fail_on():
    assert c.check_fail_on(None) == []
    assert c.check_fail_on(["timeout", "tls", "timeout", "any"]) == ["timeout", "tls", "any"]
    with pytest.raises(c.ConnectivityError, match="neither a status"):
        c.check_fail_on(["timeuot"])
    with pytest.raises(c.ConnectivityError, match="not a finding"):
        c.check_fail_on(["skipped"])


@pytest.mark.parametrize("fail_on,status,layer,expected", [
    (["timeout"], "timeout", "tcp", True),
    (["timeout"], "refused", "tcp", False),
    (["tls"], "intercepted", "tls", True),
    (["tls"], "skipped", "tls", False),
    (["any"], "wrong_environment", "provider", True),
    (["any"], "no_answer", "udp", False),
    (["any"], "ok", "dns", False),
    ([], "timeout", "tcp", False),
])
def test_is_finding(fail_on, status, layer, expected):
    assert c.is_finding({"status": status, "layer": layer}, fail_on) is expected


# ---------------------------------------------------------------- endpoints
@pytest.mark.parametrize("item,expected", [
    ("api.push.apple.com:443", ("api.push.apple.com", 443, None, "endpoints", None)),
    ("API.Push.Apple.com.:2197", ("api.push.apple.com", 2197, None, "endpoints", None)),
    ("[2620:149:a44::1]:5223", ("2620:149:a44::1", 5223, None, "endpoints", None)),
    ("17.57.146.20:5223", ("17.57.146.20", 5223, None, "endpoints", None)),
    ({"host": "1-courier.push.apple.com", "port": "5223", "address": "17.0.0.201", "service": "lab"},
     ("1-courier.push.apple.com", 5223, "17.0.0.201", "lab", None)),
    ({"host": "mdm.example.com", "port": 9443, "tls": True}, ("mdm.example.com", 9443, None, "endpoints", True)),
])
def test_parse_endpoint(item, expected):
    ep = c.parse_endpoint(item)
    assert (ep["host"], ep["port"], ep["address"], ep["service"], ep["tls"]) == expected
    assert ep["protocol"] == "tcp"


@pytest.mark.parametrize("item,words", [
    ("api.push.apple.com", "is not 'host:port'"),
    ("api.push.apple.com:0", "not a port number"),
    ("api.push.apple.com:70000", "not a port number"),
    ("2620:149::1:443", "is not 'host:port'"),
    ("*.push.apple.com:443", "is a wildcard"),
    ("bad_host!:443", "is not a host name or an address"),
    ("exa mple.com:443", "is not 'host:port'"),
    ({"host": "a.example.com"}, "needs host and port"),
    ({"host": "a.example.com", "port": 443, "verify": False}, "unknown key"),
    ({"host": "a.example.com", "port": True}, "not a port number"),
    ({"host": "a.example.com", "port": 443, "address": "not-an-ip"}, "not an IPv4 or IPv6 address"),
    ({"host": "a.example.com", "port": 443, "protocol": "sctp"}, "tcp or udp"),
    ({"host": "a.example.com", "port": 443, "tls": "yes"}, "tls must be true or false"),
    ({"host": "a.example.com", "port": 443, "service": "bad service"}, "short label"),
    (443, "neither 'host:port' nor a mapping"),
])
def test_bad_endpoints_name_the_item(item, words):
    with pytest.raises(c.ConnectivityError, match=words) as info:
        c.parse_endpoints(["ok.example.com:443", item])
    assert str(info.value).startswith("endpoints[1]")


def test_parse_mdm_url():
    assert c.parse_mdm_url("https://MDM.example.com:8443/mdm") == ("https://MDM.example.com:8443/mdm",
                                                                   "mdm.example.com", 8443)
    assert c.parse_mdm_url("https://mdm.example.com/checkin")[2] == 443
    for url, words in (("http://mdm.example.com/", "give an https:// URL"), ("https:///x", "has no host"),
                       ("https://mdm.example.com:99999/", "not a valid URL"), ("", "give an https URL"),
                       ("https://u:p@mdm.example.com/", "carries credentials")):
        with pytest.raises(c.ConnectivityError, match=words) as info:
            c.parse_mdm_url(url, 2)
        assert str(info.value).startswith("mdm_urls[2]: ")


# ---------------------------------------------------------------- selection and planning
def test_default_services_are_the_rows_on_apns_ranges():
    catalog = load_bundled()
    services = c.default_services(catalog)
    assert services == sorted({e["service"] for e in catalog.entries if e.get("apns_range") and not e.get("retired")},
                              key=services.index)
    assert "device_management" in services and "push_provider" in services


def test_catalog_targets_use_probe_names_and_the_environment():
    catalog = load_bundled().select(services=c.default_services(load_bundled()), initiators=["devices", "mdm_servers"])
    prod = c.catalog_targets(catalog)
    assert len(prod) == len([e for e in catalog.endpoints() if e["protocol"] == "tcp"])
    names = catalog.probe_names()
    for t in prod:
        assert t["name"] == (names.get(t["host"]) if t["host"].startswith("*.") else t["host"])
    sandbox = c.catalog_targets(catalog, environment="sandbox")
    provider = [t for t in sandbox if t["service"] == "push_provider"]
    assert provider and all(t["host"] == t["name"] == "api.sandbox.push.apple.com" for t in provider)
    assert [t for t in sandbox if t["service"] != "push_provider"] == [t for t in prod if t["service"] != "push_provider"]


def test_udp_rows_only_with_the_udp_layer():
    catalog = load_bundled().select(services=["all"], protocols=["udp"])
    assert catalog.endpoints() and c.catalog_targets(catalog) == []
    assert len(c.catalog_targets(catalog, layers=["udp"])) == len(catalog.endpoints())
    with pytest.raises(c.ConnectivityError, match="add udp to layers"):
        c.extra_targets(c.parse_endpoints([{"host": "time.apple.com", "port": 123, "protocol": "udp"}]))


def _target(host, port, tls=None, protocol="tcp", address=None, service="s"):
    return {"service": service, "host": host, "name": host, "port": port, "protocol": protocol, "address": address,
            "tls": tls}


@pytest.mark.parametrize("target,layers,chain", [
    (_target("api.push.apple.com", 443), c.LAYERS, ["tcp", "tls", "provider"]),
    (_target("api.sandbox.push.apple.com", 2197), c.LAYERS, ["tcp", "tls", "provider"]),
    (_target("api.push.apple.com", 8443), c.LAYERS, ["tcp", "tls"]),
    (_target("1-courier.push.apple.com", 5223), c.LAYERS, ["tcp", "tls"]),
    (_target("1-courier.push.apple.com", 80), c.LAYERS, ["tcp"]),
    (_target("mdm.example.com", 9443, tls=True), c.LAYERS, ["tcp", "tls"]),
    (_target("mdm.example.com", 443, tls=False), c.LAYERS, ["tcp"]),
    (_target("api.push.apple.com", 443), ["dns", "tls"], ["tls"]),
    (_target("time.apple.com", 123, protocol="udp"), c.LAYERS, ["udp"]),
    (_target("time.apple.com", 123, protocol="udp"), ["dns", "tcp"], []),
])
def test_plan_layers(target, layers, chain):
    assert c.plan_layers(target, layers) == chain


# ---------------------------------------------------------------- the run, with recording engines
class Engines(object):
    """Answers from a table, and a record of every call (to count requests)."""

    def __init__(self, answers=None, dns=None):
        self.answers = answers or {}
        self.dns = dns or {}
        self.calls = []
        self.lock = threading.Lock()

    def _log(self, *call):
        with self.lock:
            self.calls.append(call)

    def resolve(self, name):
        self._log("dns", name)
        return self.dns.get(name, (["192.0.2.10"], None))

    def tcp(self, name, address, port):
        self._log("tcp", name, address, port)
        return self.answers.get(("tcp", name, port), "ok"), 0.5, "TCP %s:%s" % (name, port), None

    udp = tcp

    def tls(self, name, address, port):
        self._log("tls", name, address, port)
        status = self.answers.get(("tls", name, port), "ok")
        return {"status": status, "latency_ms": 2.0, "remedy": "" if status == "ok" else "fix tls",
                "detail": "HTTPS inspection on %s:%s: ..." % (name, port) if status == "intercepted" else "tls",
                "sni": name, "root": "R"}

    def provider(self, name, address, port):
        self._log("provider", name, address, port)
        status = self.answers.get(("provider", name, port), "ok")
        return {"status": status, "latency_ms": 3.0, "remedy": "" if status == "ok" else "renew",
                "detail": "POST", "topic": "com.apple.mgmt.External.x", "environment": "production",
                "http_status": 400, "reason": "BadDeviceToken"}

    def ats(self, url, address=None):
        self._log("ats", url)
        return {"url": url, "host": "mdm.example.com", "port": 443, "address": "192.0.2.20", "status": "ats_failed",
                "failures": [{"requirement": "tls_version", "detail": "TLS 1.1", "remedy": "enable TLS 1.2"}],
                "latency_ms": 4.0, "detail": "1 requirement failed", "remedy": "enable TLS 1.2"}


def test_every_layer_in_order_and_the_provider_once_per_endpoint():
    targets = [_target("api.push.apple.com", 443, service="push_provider"),
               _target("api.push.apple.com", 443, service="endpoints"),
               _target("api.push.apple.com", 2197, service="push_provider")]
    eng = Engines()
    probes = c.run(targets, ["dns", "tcp", "tls", "provider"], eng, concurrency=4)
    assert [(p["service"], p["layer"], p["port"]) for p in probes] == [
        ("push_provider", "dns", None), ("push_provider", "tcp", 443), ("push_provider", "tls", 443),
        ("push_provider", "provider", 443),
        ("endpoints", "dns", None), ("endpoints", "tcp", 443), ("endpoints", "tls", 443),
        ("endpoints", "provider", 443),
        ("push_provider", "tcp", 2197), ("push_provider", "tls", 2197), ("push_provider", "provider", 2197)]
    assert all(p["status"] == "ok" and p["address"] == ("192.0.2.10" if p["layer"] != "dns" else "192.0.2.10")
               for p in probes)
    provider_calls = [call for call in eng.calls if call[0] == "provider"]
    assert sorted(provider_calls) == [("provider", "api.push.apple.com", "192.0.2.10", 443),
                                      ("provider", "api.push.apple.com", "192.0.2.10", 2197)]
    assert [call for call in eng.calls if call[0] == "dns"] == [("dns", "api.push.apple.com")]
    rec = next(p for p in probes if p["layer"] == "provider")
    assert rec["topic"] == "com.apple.mgmt.External.x" and rec["provider"]["reason"] == "BadDeviceToken"
    assert next(p for p in probes if p["layer"] == "tls")["tls"]["sni"] == "api.push.apple.com"
    assert next(p for p in probes if p["layer"] == "dns")["addresses"] == ["192.0.2.10"]


def test_a_failed_layer_skips_the_later_ones():
    targets = [_target("a.example.com", 443), _target("b.example.com", 5223), _target("c.example.com", 443)]
    eng = Engines(answers={("tcp", "b.example.com", 5223): "timeout", ("tls", "c.example.com", 443): "intercepted"},
                  dns={"a.example.com": ([], "dns: Name or service not known")})
    probes = c.run(targets, ["dns", "tcp", "tls"], eng)
    by = dict(((p["name"], p["layer"]), p) for p in probes)
    assert by[("a.example.com", "dns")]["status"] == "dns_failed" and "does not resolve" in by[("a.example.com", "dns")]["remedy"]
    assert by[("a.example.com", "tcp")]["status"] == "skipped"
    assert by[("a.example.com", "tls")]["detail"] == "not run: dns dns_failed for a.example.com"
    assert by[("b.example.com", "tcp")]["status"] == "timeout" and "silently drops TCP 5223" in by[("b.example.com", "tcp")]["remedy"]
    assert by[("b.example.com", "tls")]["detail"] == "not run: tcp timeout"
    assert by[("c.example.com", "tls")]["status"] == "intercepted"
    # nothing was tried past a failure
    assert not [call for call in eng.calls if call[1] in ("a.example.com",) and call[0] != "dns"]
    assert [call[0] for call in eng.calls if call[1] == "b.example.com"] == ["dns", "tcp"]


def test_given_address_and_proxy():
    targets = [_target("api.push.apple.com", 443, address="17.0.0.201")]
    eng = Engines(dns={"api.push.apple.com": ([], "dns: no such name")})
    probes = c.run(targets, ["dns", "tcp", "tls"], eng)
    assert [p["status"] for p in probes] == ["dns_failed", "ok", "ok"]          # the address was given: dns is informative
    assert probes[1]["address"] == "17.0.0.201" and "address given in endpoints" in probes[1]["detail"]
    proxied = c.run([_target("api.push.apple.com", 443)], ["tcp", "tls"], Engines(), proxied=True)
    assert [p["address"] for p in proxied] == [None, None]
    eng = Engines()
    c.run([_target("api.push.apple.com", 443)], ["tcp"], eng, proxied=True)
    assert [call for call in eng.calls if call[0] == "dns"] == []               # the proxy resolves
    # UDP cannot cross an HTTP proxy: resolved here and sent directly
    eng = Engines()
    udp = c.run([_target("time.apple.com", 123, protocol="udp")], ["udp"], eng, proxied=True)
    assert [(p["layer"], p["address"]) for p in udp] == [("udp", "192.0.2.10")]
    assert ("dns", "time.apple.com") in eng.calls
    # a name no requested layer needs is not resolved
    eng = Engines()
    c.run([_target("gdmf.apple.com", 443), _target("api.push.apple.com", 443)], ["provider"], eng)
    assert [call for call in eng.calls if call[0] == "dns"] == [("dns", "api.push.apple.com")]


def test_unmapped_wildcard_is_skipped_and_ats_probes_come_last():
    wild = dict(_target("*.example.com", 443), name=None)
    eng = Engines()
    urls = [("https://mdm.example.com/mdm", "mdm.example.com", 443)]
    probes = c.run([wild], ["dns", "tcp", "tls", "ats"], eng, mdm_urls=urls)
    assert [(p["layer"], p["status"]) for p in probes] == [("dns", "skipped"), ("tcp", "skipped"), ("tls", "skipped"),
                                                           ("ats", "ats_failed")]
    ats = probes[-1]
    assert ats["service"] == c.MDM_URL_SERVICE and ats["ats"]["failures"][0]["requirement"] == "tls_version"
    assert ats["ats"]["url"] == "https://mdm.example.com/mdm" and ats["remedy"] == "enable TLS 1.2"


def test_summary_remedies_and_message():
    targets = [_target("a.example.com", 443, service="one"), _target("b.example.com", 443, service="two")]
    eng = Engines(answers={("tls", "b.example.com", 443): "intercepted"})
    probes = c.run(targets, ["dns", "tcp", "tls"], eng)
    summary = c.summarise(probes, ["intercepted"])
    assert summary["total"] == len(probes) == 6 and summary["ok"] == 5 and summary["not_ok"] == 1
    assert summary["failed"] == 1 and summary["by_status"] == {"ok": 5, "intercepted": 1}
    assert summary["by_layer"]["tls"] == {"ok": 1, "intercepted": 1}
    assert summary["by_service_layer"]["two"]["tls"] == {"intercepted": 1}
    assert c.remedies(probes) == ["b.example.com:443 tls intercepted: fix tls"]
    findings = [p for p in probes if c.is_finding(p, ["tls"])]
    msg = c.failure_message(findings, probes, ["tls"])
    assert msg.startswith("HTTPS inspection on b.example.com:443") and "1 of 6 probes" in msg
    assert "b.example.com:443 tls intercepted" in msg and "First fix: fix tls" in msg
    assert c.table(probes)[0].split()[:3] == ["SERVICE", "ENDPOINT", "LAYER"] and len(c.table(probes)) == 7


def test_probes_feed_the_report_writers():
    from ansible_collections.mdmops.apple.plugins.plugin_utils._report import build_report
    probes = c.run([_target("api.push.apple.com", 443)], ["dns", "tcp", "tls", "provider"],
                   Engines(answers={("provider", "api.push.apple.com", 443): "wrong_environment"}))
    report = build_report({"probes": probes, "changed": False}, fail_on=["wrong_environment"],
                          certificates=[{"topic": "com.apple.mgmt.External.x", "not_after": "2030-01-01T00:00:00Z",
                                         "days_left": 1000, "environment": None}])
    assert report.source == "push_connectivity" and [p["layer"] for p in report.probes] == ["dns", "tcp", "tls",
                                                                                            "provider"]
    assert report.failures[0]["environment"] == "production" and report.failures[0]["remedy"] == "renew"
    assert report.probes[2]["tls_sni"] == "api.push.apple.com" and report.certificates[0]["not_after_epoch"]
    # every writer takes the module's result as is
    from ansible_collections.mdmops.apple.plugins.plugin_utils._report._html import render_html
    from ansible_collections.mdmops.apple.plugins.plugin_utils._report._junit import render_junit
    from ansible_collections.mdmops.apple.plugins.plugin_utils._report._prometheus import render_prometheus
    result = {"probes": probes, "certificates": [{"topic": "com.apple.mgmt.External.x",
                                                  "not_after": "2030-01-01T00:00:00Z"}]}
    assert "renew" in render_html(result, fail_on=["wrong_environment"])
    assert 'failures="1"' in render_junit(result, fail_on=["wrong_environment"])
    metrics = render_prometheus(result, certificates=result["certificates"])
    assert 'layer="provider"' in metrics and "push_certificate_expiry_timestamp_seconds" in metrics


def test_an_engine_error_is_raised_to_every_asker():
    class Broken(Engines):
        def provider(self, name, address, port):
            raise RuntimeError("httpx missing")
    targets = [_target("api.push.apple.com", 443, service="a"), _target("api.push.apple.com", 443, service="b")]
    with pytest.raises(RuntimeError, match="httpx missing"):
        c.run(targets, ["tcp", "provider"], Broken(), concurrency=2)


# ---------------------------------------------------------------- certificate
def test_certificate_facts(push, tmp_path):
    cert, key = tmp_path / "push.pem", tmp_path / "push.key"
    push.write(str(cert), str(key))
    facts, cert_pem, key_pem = c.certificate_facts(c.certificate_input(
        {"certificate_path": str(cert), "privatekey_path": str(key)}))
    assert facts["topic"] == push.topic and facts["not_after"].endswith("Z") and 360 <= facts["days_left"] <= 366
    assert facts["environment"] is None and b"BEGIN CERTIFICATE" in cert_pem and b"PRIVATE KEY" in key_pem
    assert "PRIVATE" not in repr(facts)
    facts, _c, key_pem = c.certificate_facts(c.certificate_input({"certificate_content": push.cert_pem().decode()}))
    assert key_pem is None and facts["topic"] == push.topic


def test_certificate_environment_from_apples_extensions(pki, tmp_path):
    from lab import apns
    for environment, expected in (("sandbox", "sandbox"), ("production", "production"), ("both", "both")):
        issued = apns.push_certificate(pki, environment=environment)
        facts, _c, _k = c.certificate_facts(c.certificate_input({"certificate_content": issued.cert_pem().decode()}))
        assert facts["environment"] == expected


def test_expired_certificate_has_negative_days_left(pki):
    facts, _c, _k = c.certificate_facts(c.certificate_input({"certificate_content": pki.expired().cert_pem().decode()}))
    assert facts["days_left"] < 0


def test_certificate_errors_name_the_module_options(tmp_path):
    from ansible_collections.mdmops.apple.plugins.module_utils._push._material import CertificateError
    with pytest.raises(CertificateError, match="certificate_path"):
        c.certificate_facts(c.certificate_input({"certificate_path": str(tmp_path / "missing.pem")}))
    with pytest.raises(CertificateError, match="certificate_content"):
        c.certificate_facts(c.certificate_input({"certificate_content": "not a certificate"}))

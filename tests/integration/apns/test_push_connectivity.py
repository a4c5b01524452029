"""mdmops.apple.push_connectivity for real: ansible runs from the lab's corp namespace against the lab's listeners,
TLS faults and APNs provider-API emulator (lab/apns.py), every finding produced by a real server.

One ansible-playbook run holds every case, one task each (ansible's start-up dominates a module run on a loaded
machine): the default selection with a push certificate (check mode), every network finding and a sandbox
certificate in one endpoints-only task with fail_on, one task per client certificate APNs refuses, and bad inputs.
The emulator's log shows that the provider API gets one request per endpoint and task.  Each case uses certificates
(so topics) of its own.
"""
from __future__ import annotations

import json

import pytest
import yaml

from lab import apns, ats, proxies
from lab.listeners import BLACKHOLE_ADDRESS, FAULT_ADDRESSES, start_fault
from tests.lib.ansible_run import run_playbook

pytestmark = pytest.mark.lab

INTERCEPT_CA = "Corp SSL Inspection CA (lab)"
USERTRUST = "USERTrust RSA Certification Authority"
PROD, SANDBOX = "api.push.apple.com", "api.sandbox.push.apple.com"
MODULE = "mdmops.apple.push_connectivity"


def requests_seen(lab, topic):
    with open(lab.path("logs", "apns.log")) as f:
        return sum(1 for line in f if "topic=%s " % topic in line)


def by_key(res):
    return dict(((p["service"], p["name"], p["port"], p["layer"]), p) for p in res["probes"])


def no_traceback(res):
    """A failure by fail_json: no traceback (ansible-core 2.19 registers "(traceback unavailable)" for one)."""
    return "Traceback" not in str(res.get("exception", "")) and "Traceback" not in str(res.get("module_stderr", ""))


def write_cert(tmp_path, cert, name):
    cert_path, key_path = tmp_path / (name + ".pem"), tmp_path / (name + ".key")
    cert_path.write_bytes(cert.cert_pem() + cert.chain_pem())
    key_path.write_bytes(cert.key_pem())
    return {"certificate_path": str(cert_path), "privatekey_path": str(key_path)}


def run_cases(lab, tmp_path, cases):
    """Run each case (name -> (module args, task keywords)) as a task of one playbook on corp; return the
    registered results by name (failed tasks included: ignore_errors)."""
    out = tmp_path / "results.json"
    tasks = []
    for i, (name, (args, keywords)) in enumerate(cases.items()):
        tasks.append(dict({"name": name, MODULE: args, "register": "r%d" % i, "ignore_errors": True}, **keywords))
    names = list(cases)
    collect = "{{ {%s} | to_json }}" % ", ".join("%s: r%d" % (json.dumps(n), i) for i, n in enumerate(names))
    tasks.append({"name": "results", "ansible.builtin.copy": {"content": collect, "dest": str(out), "mode": "0600"}})
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": "corp", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    proc = run_playbook(str(play), inventory=lab.inventory)
    assert proc.returncode == 0 and out.exists(), proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout


def test_push_connectivity_in_the_lab(lab, tmp_path):
    pki = apns.lab_push_pki(lab)
    good, sandbox, expired, topic = (pki.push(), apns.push_certificate(pki, environment="sandbox"), pki.expired(),
                                     pki.push())
    lab_args = {"ca_path": lab.ca_path, "timeout": 2}
    intercept = start_fault(lab, "intercept", ports=(5223,))
    ats.ensure(lab)
    apns.set_fault(lab, topic.topic, {"status": 400, "reason": "TopicDisallowed"})
    endpoints = [
        PROD + ":443",                                                   # sandbox certificate: wrong environment
        {"host": SANDBOX, "port": 2197},                                 # accepted
        PROD + ":443",                                                   # repeated: one probe, one request
        {"host": "1-courier.push.apple.com", "port": 5224, "address": FAULT_ADDRESSES["plain"],
         "service": "refused"},
        {"host": "2-courier.push.apple.com", "port": 5223, "address": BLACKHOLE_ADDRESS, "service": "blackholed"},
        {"host": "7-courier.push.apple.com", "port": 5223, "address": intercept, "service": "inspected"},
        "no-such-host.invalid:443",
    ]
    cases = {
        "default": (dict(lab_args, **write_cert(tmp_path, good, "good")), {"check_mode": True}),
        "findings": (dict(lab_args, services=[], endpoints=endpoints, timeout=1,
                          fail_on=["intercepted", "provider", "timeout"], **write_cert(tmp_path, sandbox, "sandbox")),
                     {}),
        "expired": (dict(lab_args, services=[], endpoints=[PROD + ":443"], **write_cert(tmp_path, expired, "expired")),
                    {}),
        "topic": (dict(lab_args, services=[], endpoints=[{"host": PROD, "port": 2197}], layers=["provider"],
                       fail_on=["any"], **write_cert(tmp_path, topic, "topic")), {}),
        "mdm_urls": (dict(lab_args, services=[], mdm_urls=["https://%s/mdm/checkin" % ats.HOSTS[p] for p in ATS_CASES]),
                     {}),
    }
    for i, (args, words) in enumerate(BAD_INPUTS):
        cases["bad%d" % i] = (args, {})
    try:
        results, stdout = run_cases(lab, tmp_path, cases)
    finally:
        lab.stop("fault-intercept")
        apns.set_fault(lab, topic.topic, None)
    assert "Traceback" not in stdout and "PRIVATE KEY" not in stdout and "hunter2" not in stdout
    check_default(lab, results["default"], good)
    check_findings(lab, results["findings"], sandbox)
    check_refused_certificates(lab, results["expired"], results["topic"], topic)
    check_mdm_urls(results["mdm_urls"])
    for i, (args, words) in enumerate(BAD_INPUTS):
        res = results["bad%d" % i]
        assert res["failed"] and no_traceback(res) and words in res["msg"] and "probes" not in res, (args, res)


def check_default(lab, res, cert):
    from ansible_collections.mdmops.apple.plugins.module_utils._apns._connectivity import default_services
    from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
    assert not res.get("failed") and not res["changed"] and res["ok"], res.get("table")
    assert all(p["status"] == "ok" for p in res["probes"]), res["table"]
    # what the catalog selects: the push services, for devices and MDM servers
    catalog = load_bundled()
    selected = catalog.select(services=default_services(catalog), initiators=["devices", "mdm_servers"])
    tcp = [e for e in selected.endpoints() if e["protocol"] == "tcp"]
    assert res["summary"]["by_layer"]["tcp"] == {"ok": len(tcp)}
    assert set(res["summary"]["by_service_layer"]) == {e["service"] for e in tcp}
    assert res["summary"]["by_layer"]["dns"] == {"ok": len({(e["service"], e["host"]) for e in tcp})}
    probes = by_key(res)
    courier = probes[("device_management", "1-courier.push.apple.com", 5223, "tls")]
    assert courier["tls"]["alpn"] == "apns-security-v3" and courier["tls"]["root"] == USERTRUST
    assert ("device_management", "1-courier.push.apple.com", 80, "tls") not in probes     # not a TLS port
    provider = [p for p in res["probes"] if p["layer"] == "provider"]
    assert sorted(p["port"] for p in provider) == [443, 2197]
    for p in provider:
        assert p["name"] == PROD and p["topic"] == cert.topic and p["environment"] == "production"
        assert (p["provider"]["http_status"], p["provider"]["reason"]) == (400, "BadDeviceToken")
        assert "accepted" in p["detail"] and p["remedy"] == ""
    assert requests_seen(lab, cert.topic) == 2          # one request per provider endpoint, none repeated
    [facts] = res["certificates"]
    assert facts["topic"] == cert.topic and facts["not_after"].endswith("Z") and facts["days_left"] > 300
    assert set(facts) == {"topic", "not_after", "days_left", "environment"}
    assert res["summary"]["failed"] == 0 and res["findings"] == [] and res["remedies"] == []


def check_findings(lab, res, cert):
    assert res["failed"] and no_traceback(res)
    probes = by_key(res)
    assert {p["service"] for p in res["probes"]} == {"endpoints", "refused", "blackholed", "inspected"}
    assert probes[("endpoints", PROD, 443, "provider")]["status"] == "wrong_environment"
    assert probes[("endpoints", PROD, 443, "provider")]["provider"]["reason"] == "BadCertificateEnvironment"
    assert probes[("endpoints", SANDBOX, 2197, "provider")]["status"] == "ok"
    assert len([p for p in res["probes"] if p["layer"] == "provider"]) == 2
    assert requests_seen(lab, cert.topic) == 2
    refused = probes[("refused", "1-courier.push.apple.com", 5224, "tcp")]
    assert refused["status"] == "refused" and "open TCP 5224" in refused["remedy"]
    assert refused["address"] == FAULT_ADDRESSES["plain"]
    blackholed = probes[("blackholed", "2-courier.push.apple.com", 5223, "tcp")]
    assert blackholed["status"] == "timeout" and "silently drops TCP 5223" in blackholed["remedy"]
    skipped = probes[("blackholed", "2-courier.push.apple.com", 5223, "tls")]
    assert skipped["status"] == "skipped" and skipped["detail"] == "not run: tcp timeout"
    inspected = probes[("inspected", "7-courier.push.apple.com", 5223, "tls")]
    assert inspected["status"] == "intercepted" and inspected["tls"]["root"] == INTERCEPT_CA
    assert probes[("inspected", "7-courier.push.apple.com", 5223, "tcp")]["status"] == "ok"
    dns = probes[("endpoints", "no-such-host.invalid", None, "dns")]
    assert dns["status"] == "dns_failed" and dns["remedy"]
    assert probes[("endpoints", "no-such-host.invalid", 443, "tcp")]["status"] == "skipped"
    # fail_on: intercepted, any provider finding, timeout; refused and dns_failed are reported, not fatal
    assert sorted((p["service"], p["layer"], p["status"]) for p in res["findings"]) == [
        ("blackholed", "tcp", "timeout"), ("endpoints", "provider", "wrong_environment"),
        ("inspected", "tls", "intercepted")]
    assert res["msg"].startswith("HTTPS inspection on 7-courier.push.apple.com:5223") and INTERCEPT_CA in res["msg"]
    assert "3 of %d probes" % len(res["probes"]) in res["msg"]
    assert "api.push.apple.com:443 provider wrong_environment" in res["msg"]
    assert not res["ok"] and res["summary"]["failed"] == 3
    assert res["summary"]["not_ok"] == 5 and res["certificates"][0]["environment"] == "sandbox"
    assert any(line.startswith("7-courier.push.apple.com:5223 tls intercepted") for line in res["remedies"])


def check_refused_certificates(lab, expired, topic, topic_cert):
    assert not expired.get("failed") and not expired["ok"]               # no fail_on: reported, not failed
    provider = by_key(expired)[("endpoints", PROD, 443, "provider")]
    assert provider["status"] == "certificate_rejected" and "certificate_expired" in provider["detail"]
    assert "Apple Push Certificates Portal" in provider["remedy"]
    assert expired["certificates"][0]["days_left"] < 0
    assert topic["failed"] and [p["layer"] for p in topic["probes"]] == ["provider"]
    assert topic["probes"][0]["status"] == "topic_disallowed" and topic_cert.topic in topic["probes"][0]["remedy"]
    assert "api.push.apple.com:2197 provider topic_disallowed" in topic["msg"]
    assert requests_seen(lab, topic_cert.topic) == 1


ATS_CASES = ("good", "sha1", "rsa1024", "expired")


def check_mdm_urls(res):
    assert not res.get("failed") and not res["ok"]
    assert [p["layer"] for p in res["probes"]] == ["ats"] * len(ATS_CASES)
    for profile, p in zip(ATS_CASES, res["probes"]):
        status, failed = ats.EXPECTED[profile]
        assert (p["service"], p["host"], p["port"]) == ("mdm_server", ats.HOSTS[profile], 443)
        assert p["status"] == status, p["detail"]
        assert [f["requirement"] for f in p["ats"]["failures"]] == failed
        assert p["ats"]["url"] == "https://%s/mdm/checkin" % ats.HOSTS[profile]
        assert bool(p["remedy"]) is (status != "ok") and p["address"] == ats.ADDRESSES[profile]
    assert res["summary"]["by_service_layer"]["mdm_server"]["ats"] == {"ok": 1, "ats_failed": 2, "untrusted": 1}


def test_push_connectivity_through_proxies(lab, tmp_path):
    problem = proxies.unavailable()
    if problem:
        pytest.skip(problem)
    proxies.start(lab)
    ats.ensure(lab)
    cert = apns.lab_push_pki(lab).push()
    lab_args = {"ca_path": lab.ca_path, "timeout": 3, "services": []}
    cases = {
        "clean": (dict(lab_args, proxy=proxies.url("clean"), mdm_urls=["https://%s/mdm" % ats.HOSTS["good"]],
                       endpoints=[PROD + ":443", "1-courier.push.apple.com:5223",
                                  "%s:%d" % (PROD, proxies.DENIED_PORT)],
                       **write_cert(tmp_path, cert, "push")), {}),
        "intercept": (dict(lab_args, proxy=proxies.url("intercept"), endpoints=[PROD + ":443"],
                           fail_on=["intercepted"]), {}),
        "auth": (dict(lab_args, proxy=proxies.url("auth"), proxy_username=proxies.AUTH_USER,
                      proxy_password=proxies.AUTH_PASSWORD, endpoints=["1-courier.push.apple.com:5223"]), {}),
        "down": (dict(lab_args, proxy=proxies.url("down"), endpoints=[PROD + ":443"]), {}),
    }
    try:
        results, stdout = run_cases(lab, tmp_path, cases)
    finally:
        lab.stop(proxies.NAME)
    assert proxies.AUTH_PASSWORD not in stdout and "Traceback" not in stdout
    clean = by_key(results["clean"])
    assert not any(layer == "dns" for _s, _n, _p, layer in clean)                  # the proxy resolves the names
    for port, layers in ((443, ("tcp", "tls", "provider")), (proxies.DENIED_PORT, ("tcp",))):
        for layer in layers:
            probe = clean[("endpoints", PROD, port, layer)]
            assert probe["proxy"] == proxies.url("clean") and probe["address"] is None
    assert clean[("endpoints", PROD, 443, "provider")]["status"] == "ok"
    assert clean[("endpoints", PROD, 443, "provider")]["provider"]["reason"] == "BadDeviceToken"
    assert requests_seen(lab, cert.topic) == 1
    assert clean[("endpoints", "1-courier.push.apple.com", 5223, "tls")]["tls"]["alpn"] == "apns-security-v3"
    denied = clean[("endpoints", PROD, proxies.DENIED_PORT, "tcp")]
    assert denied["status"] == "proxy_refused" and "403 Forbidden" in denied["detail"]
    assert "allow CONNECT to %s on port %d" % (PROD, proxies.DENIED_PORT) in denied["remedy"]
    mdm = clean[("mdm_server", ats.HOSTS["good"], 443, "ats")]
    assert mdm["status"] == "ok" and mdm["proxy"] == proxies.url("clean"), mdm["detail"]
    intercept = results["intercept"]
    assert intercept["failed"] and no_traceback(intercept)
    tls = by_key(intercept)[("endpoints", PROD, 443, "tls")]
    assert tls["status"] == "intercepted" and tls["tls"]["root"] == proxies.INTERCEPT_CA
    assert intercept["msg"].startswith("HTTPS inspection on api.push.apple.com:443")
    assert proxies.INTERCEPT_CA in intercept["msg"]
    auth = results["auth"]
    assert auth["ok"] and all(p["status"] == "ok" for p in auth["probes"]), auth["table"]
    down = by_key(results["down"])
    assert down[("endpoints", PROD, 443, "tcp")]["status"] == "proxy_unreachable"
    assert down[("endpoints", PROD, 443, "tls")]["detail"] == "not run: tcp proxy_unreachable"


BAD_INPUTS = [
    ({"services": [], "endpoints": ["api.push.apple.com"]}, "endpoints[0]: 'api.push.apple.com' is not 'host:port'"),
    ({"services": []}, "nothing to probe"),
    ({"layers": ["tcp", "provider"]}, "the provider layer needs the push certificate"),
    ({"certificate_path": "/nonexistent/push.pem"}, "certificate_path /nonexistent/push.pem"),
    ({"fail_on": ["timout"]}, "fail_on: 'timout' is neither a status"),
    ({"privatekey_path": "/etc/push.key"}, "privatekey_path given without a push certificate"),
    ({"services": [], "endpoints": ["a.example.com:443"], "hosts": ["x.apple.com"]}, "services is empty"),
    ({"proxy": "http://user:hunter2@proxy.example.com:3128"}, "give the proxy's credentials in proxy_username"),
    ({"mdm_urls": ["http://mdm.example.com/"]}, "mdm_urls[0]: MDM URL 'http://mdm.example.com/'"),
]

"""Probes through the lab's real HTTP CONNECT proxies (lab/proxies.py: one Squid, squid-openssl).

From the corp namespace (where modules run): through the clean proxy, TCP (a tunnel), TLS
(handshake inside the tunnel, chain ending at the lab USERTrust) and the provider API
(lab/apns.py, certificate accepted); CONNECT to a port the proxy's ACL denies
(proxy_refused, naming the 403); basic authentication (407 without, ok with); a proxy that
is down (proxy_unreachable); a target the proxy has no route to (unreachable, as the proxy
reports it) and one that never answers it (timeout: the proxy never answers CONNECT); the intercepting
proxy (ssl_bump) reported intercepted, naming its CA, at the TLS and provider layers; and
one real ansible run of network_probe with ``proxy``.

The probes of one kind run in one Python process each (few processes: the machine is
small); each pytest-xdist worker has its own lab, hence its own Squid.
"""
from __future__ import annotations

import pytest

from lab import apns, proxies
from lab.listeners import BLACKHOLE_ADDRESS
from tests.lib.ansible_run import run_module

pytestmark = pytest.mark.lab

USERTRUST = "USERTrust RSA Certification Authority"
PROD = "api.push.apple.com"
COURIER = "1-courier.push.apple.com"


@pytest.fixture(scope="module")
def squid(lab):
    problem = proxies.unavailable()
    if problem:
        pytest.skip(problem)
    urls = proxies.start(lab)
    yield urls
    lab.stop(proxies.NAME)


TLS_CASES = [
    # (key, proxy url, host, port, timeout)
    ("api", proxies.url("clean"), PROD, 443, 3),
    ("api2197", proxies.url("clean"), PROD, 2197, 3),
    ("courier", proxies.url("clean"), COURIER, 5223, 3),
    ("denied_port", proxies.url("clean"), PROD, proxies.DENIED_PORT, 3),
    ("down", proxies.url("down"), PROD, 443, 3),
    ("auth_missing", proxies.url("auth"), PROD, 443, 3),
    ("auth_wrong", "http://%s:wrong@%s:%d" % (proxies.AUTH_USER, proxies.ADDRESSES["auth"], proxies.PORT), PROD, 443, 3),
    ("auth_ok", proxies.url("auth", credentials=True), PROD, 443, 3),
    ("blackholed", proxies.url("clean"), BLACKHOLE_ADDRESS, 443, 1),
    ("silent", proxies.url("clean"), proxies.SILENT, 443, 1),
    ("intercept_api", proxies.url("intercept"), PROD, 443, 3),
    ("intercept_courier", proxies.url("intercept"), COURIER, 5223, 3),
]


@pytest.fixture(scope="module")
def tls(lab, squid, in_ns):
    """Every TLS case above, in one process in corp: {key: tls_probe result}."""
    code = ("import json\n"
            "from concurrent.futures import ThreadPoolExecutor\n"
            "from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import tls_probe\n"
            "from ansible_collections.mdmops.apple.plugins.module_utils._apns._proxy import connector\n"
            "cases = %r\n"
            "def one(case):\n"
            "    key, url, host, port, timeout = case\n"
            "    return key, tls_probe(host, port, timeout=timeout, ca_path=%r, connect=connector(url))\n"
            "with ThreadPoolExecutor(len(cases)) as pool:\n"
            "    print(json.dumps(dict(pool.map(one, cases))))\n" % (TLS_CASES, lab.ca_path))
    return in_ns("corp", code)


def test_tls_through_the_clean_proxy(tls):
    for key, alpn in (("api", "h2"), ("api2197", "h2"), ("courier", "apns-security-v3")):
        res = tls[key]
        assert res["status"] == "ok", res["detail"]
        assert res["root"] == USERTRUST and res["chain_verified"] is True and res["alpn"] == alpn


def test_connect_denied_by_the_proxy_acl_is_proxy_refused(tls):
    res = tls["denied_port"]
    assert res["status"] == "proxy_refused", res["detail"]
    assert "'403 Forbidden'" in res["detail"] and proxies.url("clean") in res["detail"]
    assert "allow CONNECT to %s on port %d" % (PROD, proxies.DENIED_PORT) in res["remedy"]


def test_proxy_down_is_proxy_unreachable(tls):
    res = tls["down"]
    assert res["status"] == "proxy_unreachable", res["detail"]
    assert proxies.url("down") in res["detail"] and "cannot reach its proxy" in res["remedy"]


def test_proxy_authentication(tls):
    assert tls["auth_missing"]["status"] == "proxy_auth_required"
    assert "407" in tls["auth_missing"]["detail"] and "none was given" in tls["auth_missing"]["detail"]
    assert tls["auth_wrong"]["status"] == "proxy_auth_required"
    assert "credentials given were refused" in tls["auth_wrong"]["detail"]
    assert tls["auth_ok"]["status"] == "ok", tls["auth_ok"]["detail"]
    for res in tls.values():
        assert proxies.AUTH_PASSWORD not in res["detail"] + res["remedy"] and "wrong" not in res["detail"]


def test_target_the_proxy_cannot_route_to_is_unreachable(tls):
    # blackholed seen from corp; the proxy (in net, no default route) gets "no route", says so
    # (X-Squid-Error: ERR_CONNECT_FAIL 101), and the probe reports the target's finding, not the proxy's
    res = tls["blackholed"]
    assert res["status"] == "unreachable", res["detail"]
    assert "ERR_CONNECT_FAIL" in res["detail"] and "proxy's routing" in res["remedy"]


def test_target_that_never_answers_the_proxy_is_timeout(tls):
    # the proxy waits for the target (its packets are dropped); the probe's timeout ends it
    res = tls["silent"]
    assert res["status"] == "timeout", res["detail"]
    assert "did not answer CONNECT" in res["detail"] and "behind the proxy" in res["remedy"]


def test_intercepting_proxy_is_intercepted_naming_its_ca(tls):
    for key in ("intercept_api", "intercept_courier"):
        res = tls[key]
        assert res["status"] == "intercepted", res["detail"]
        assert res["root"] == proxies.INTERCEPT_CA and proxies.INTERCEPT_CA in res["remedy"]
        assert res["detail"].startswith("HTTPS inspection on")


def test_probe_all_tcp_layer_through_the_proxy(lab, squid, in_ns):
    eps = [dict(service="push", host=PROD, port=443, protocol="tcp"),
           dict(service="push", host=PROD, port=proxies.DENIED_PORT, protocol="tcp"),
           dict(service="time", host="time.apple.com", port=123, protocol="udp")]
    res = in_ns("corp", "import json\n"
                "from ansible_collections.mdmops.apple.plugins.module_utils._probe import probe_all\n"
                "print(json.dumps(probe_all(%r, timeout=3, proxy=%r)))" % (eps, proxies.url("clean")))
    ok, denied, udp = res
    assert (ok["status"], ok["resolved_by"], ok["address"], ok["proxy"]) == ("ok", "proxy", None, proxies.url("clean"))
    assert denied["status"] == "proxy_refused" and "403 Forbidden" in denied["error"] and denied["remedy"]
    # UDP cannot cross an HTTP proxy: probed directly, resolved locally
    assert (udp["status"], udp["resolved_by"], udp["proxy"]) == ("ok", "local", None) and udp["addresses"]


@pytest.fixture(scope="module")
def provider(lab, squid, in_ns):
    """Provider probes through the clean and the intercepting proxy, one process: (results, topic)."""
    cert = apns.lab_push_pki(lab).push()
    kwargs = dict(cert_pem=(cert.cert_pem() + cert.chain_pem()).decode(), key_pem=cert.key_pem().decode(),
                  topic=cert.topic, timeout=3.0, ca_path=lab.ca_path)
    code = ("import json\n"
            "from ansible_collections.mdmops.apple.plugins.module_utils._apns._provider import provider_probe\n"
            "kw = %r\n"
            "kw['cert_pem'] = kw['cert_pem'].encode(); kw['key_pem'] = kw['key_pem'].encode()\n"
            "print(json.dumps({k: provider_probe(%r, 443, proxy=url, **kw) for k, url in %r}))"
            % (kwargs, PROD, [("clean", proxies.url("clean")), ("intercept", proxies.url("intercept")),
                              ("down", proxies.url("down"))]))
    return in_ns("corp", code), cert.topic


def test_provider_accepted_through_the_clean_proxy(lab, provider):
    res, topic = provider
    clean = res["clean"]
    assert clean["status"] == "ok", clean["detail"]
    assert (clean["http_status"], clean["reason"], clean["root"]) == (400, "BadDeviceToken", USERTRUST)
    assert clean["proxy"] == proxies.url("clean") and clean["address"] is None
    with open(lab.path("logs", "apns.log")) as f:      # the clean request reached the emulator, once
        assert sum(1 for line in f if "topic=%s " % topic in line) == 1


def test_provider_through_the_intercepting_proxy_is_intercepted(provider):
    res = provider[0]["intercept"]
    assert res["status"] == "intercepted", res["detail"]
    assert proxies.INTERCEPT_CA in res["detail"] and proxies.INTERCEPT_CA in res["remedy"]
    assert res["http_status"] is None          # nothing was sent through it


def test_provider_proxy_down(provider):
    res = provider[0]["down"]
    assert res["status"] == "proxy_unreachable" and "cannot reach its proxy" in res["remedy"]


def test_network_probe_module_through_the_proxy(lab, squid):
    args = {"services": ["push_provider"], "include_retired": True, "protocols": ["tcp"], "tls": True, "timeout": 3, "ca_path": lab.ca_path,
            "proxy": proxies.url("auth"), "proxy_username": proxies.AUTH_USER,
            "proxy_password": proxies.AUTH_PASSWORD}
    res = run_module("mdmops.apple.network_probe", args, interpreter=lab.interpreter("corp"))
    assert "exception" not in res and proxies.AUTH_PASSWORD not in res["_stdout"], res["_stdout"]
    by = {(r["name"], r["port"]): r for r in res["results"]}
    assert by[(PROD, 443)]["status"] == "ok" and by[(PROD, 443)]["tls"]["root"] == USERTRUST
    assert all(r["resolved_by"] == "proxy" and r["proxy"] == proxies.url("auth") and r["addresses"] == []
               for r in res["results"] if r["name"])
    retired = [r for r in res["results"] if r["port"] in (2195, 2196)]
    assert retired and all(r["status"] == "proxy_refused" for r in retired)
    assert any(line.startswith("gateway.push.apple.com:2195 proxy_refused") for line in res["remedies"])
    assert by[(PROD, 2197)]["status"] == "ok" and not res["failed"]
    assert res["summary"]["proxy_refused"] == len(retired)
    # credentials in the URL are refused, and never echoed
    bad = run_module("mdmops.apple.network_probe", dict(args, proxy=proxies.url("auth", credentials=True)),
                     interpreter=lab.interpreter("corp"))
    assert bad["failed"] and "proxy_username and proxy_password" in bad["msg"]
    assert proxies.AUTH_PASSWORD not in bad["_stdout"]

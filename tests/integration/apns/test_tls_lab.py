"""The TLS layer against real TLS servers in the lab: every verdict produced for real.

Handshakes run from the corp namespace (where modules run) against the lab's
listeners (chain ending at the lab "USERTrust RSA Certification Authority",
couriers answering ALPN apns-security-v3, api.push h2) and the lab's TLS faults
(lab/listeners.py ``start_fault``): an intercepting listener re-signing with
the lab "Corp SSL Inspection CA", one without the right ALPN, a plain TCP one;
plus a refused port and a blackholed address.  One test goes through a real
ansible run of network_probe with ``tls: true``.

Each pytest(-xdist) worker uses its own lab (the ``lab`` fixture); the faults
bind fixed addresses inside that lab only.
"""
from __future__ import annotations

import json

import pytest

from lab.listeners import BLACKHOLE_ADDRESS, FAULT_ADDRESSES, FAULTS, start_fault
from tests.lib.ansible_run import run_module

pytestmark = pytest.mark.lab

INTERCEPT_CA = "Corp SSL Inspection CA (lab)"
USERTRUST = "USERTrust RSA Certification Authority"


@pytest.fixture(scope="module")
def faults(lab):
    started = [start_fault(lab, mode) for mode in FAULTS]
    yield dict(zip(FAULTS, started))
    for mode in FAULTS:
        lab.stop("fault-" + mode)


@pytest.fixture(scope="module")
def probe(lab, in_ns):
    def run(host, port, address=None, timeout=2.0, ca_path="lab", **kw):
        kwargs = dict(address=address, timeout=timeout, ca_path=lab.ca_path if ca_path == "lab" else ca_path, **kw)
        return in_ns("corp", "import json\n"
                     "from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import tls_probe\n"
                     "print(json.dumps(tls_probe(%r, %r, **%r)))" % (host, port, kwargs))
    return run


@pytest.mark.parametrize("host,port,alpn", [
    ("1-courier.push.apple.com", 5223, "apns-security-v3"),
    ("12-courier.push.apple.com", 443, "apns-security-v3"),
    ("api.push.apple.com", 443, "h2"),
    ("api.push.apple.com", 2197, "h2"),
    ("api.sandbox.push.apple.com", 443, "h2"),
])
def test_ok_with_the_right_sni_alpn_and_root(probe, host, port, alpn):
    res = probe(host, port)
    assert res["status"] == "ok", res["detail"]
    assert res["alpn"] == alpn and res["alpn_offered"] == [alpn]
    assert res["sni"] == ("courier.push.apple.com" if "courier" in host else host)
    assert res["root"] == USERTRUST and res["chain_verified"] is True
    assert res["tls_version"] in ("TLSv1.2", "TLSv1.3") and res["remedy"] == ""
    leaf = res["chain"][0]
    assert len(leaf["sha256"]) == 64 and leaf["not_after"].endswith("Z") and leaf["issuer_cn"]


def test_validation_is_separate_from_interception(probe, tmp_path):
    # the lab root is not in the system store: the names are right, validation is not
    res = probe("1-courier.push.apple.com", 5223, ca_path=None)
    assert res["status"] == "untrusted" and res["root"] == USERTRUST and res["chain_verified"] is False
    assert res["verify_error"] and "system trust store" in res["detail"]


@pytest.mark.parametrize("host,port", [("1-courier.push.apple.com", 5223), ("api.push.apple.com", 443)])
def test_intercepted_names_the_inspecting_ca(probe, faults, host, port):
    res = probe(host, port, address=faults["intercept"])
    assert res["status"] == "intercepted", res["detail"]
    assert res["root"] == INTERCEPT_CA and res["chain"][0]["issuer_cn"] == INTERCEPT_CA
    assert res["detail"].startswith("HTTPS inspection on %s:%s" % (host, port))
    assert "Apple requires these hosts not be inspected" in res["detail"] and INTERCEPT_CA in res["remedy"]


def test_expected_roots_can_name_the_corporate_ca(probe, faults):
    res = probe("api.push.apple.com", 443, address=faults["intercept"], ca_path=None,
                expected_roots=[INTERCEPT_CA])
    assert res["status"] == "untrusted" and res["root"] == INTERCEPT_CA


@pytest.mark.parametrize("host,port,fault,word", [
    ("1-courier.push.apple.com", 5223, "no-alpn", "apns-security-v3"),
    ("api.push.apple.com", 2197, "no-alpn", "not h2"),
    ("1-courier.push.apple.com", 443, "plain", "WRONG_VERSION_NUMBER"),
])
def test_tls_failed(probe, faults, host, port, fault, word):
    res = probe(host, port, address=faults[fault])
    assert res["status"] == "tls_failed" and word in res["detail"] and res["remedy"]


def test_ssh_port_is_not_tls(probe):
    res = probe("1-courier.push.apple.com", 22)
    assert res["status"] == "tls_failed" and res["chain"] == []


def test_refused(probe, faults):
    res = probe("1-courier.push.apple.com", 5224, address=FAULT_ADDRESSES["plain"])
    assert res["status"] == "refused" and "open TCP 5224" in res["remedy"]


def test_blackholed_is_timeout(probe):
    res = probe("1-courier.push.apple.com", 5223, address=BLACKHOLE_ADDRESS, timeout=0.5)
    assert res["status"] == "timeout" and "silently drops" in res["remedy"]


@pytest.fixture
def courier_at(lab):
    """Point a courier name at an address for one test (the lab DNS), then restore."""
    with open(lab.path("records.json")) as f:
        saved = json.load(f)["extra"]
    yield lambda name, address: lab.add_records({name: address})
    lab.set_records(saved)


def test_network_probe_tls_through_ansible(lab, faults, courier_at):
    courier_at("7-courier.push.apple.com", faults["intercept"])
    args = {"services": ["device_management"], "hosts": ["*.push.apple.com"], "tls": True, "timeout": 2,
            "ca_path": lab.ca_path}
    bad = run_module("mdmops.apple.network_probe", dict(args, names={"*.push.apple.com": "7-courier.push.apple.com"},
                                                        fail_on_unreachable=True),
                     interpreter=lab.interpreter("corp"))
    assert bad["failed"] and "exception" not in bad, bad["_stdout"]
    assert bad["msg"].startswith("HTTPS inspection on 7-courier.push.apple.com") and INTERCEPT_CA in bad["msg"]
    tls = [r for r in bad["results"] if r["layer"] == "tls"]
    assert tls and {r["port"] for r in tls} >= {443, 5223}
    assert all(r["status"] == "intercepted" and r["tls"]["root"] == INTERCEPT_CA for r in tls)
    assert all(r["status"] == "ok" for r in bad["results"] if r["layer"] == "tcp")
    assert bad["summary"]["intercepted"] == len(tls)
    assert bad["remedies"] and all(INTERCEPT_CA in line for line in bad["remedies"])
    good = run_module("mdmops.apple.network_probe", dict(args, names={"*.push.apple.com": "1-courier.push.apple.com"}),
                      interpreter=lab.interpreter("corp"))
    assert good["_rc"] == 0 and not good["changed"] and good["remedies"] == []
    tls = [r for r in good["results"] if r["layer"] == "tls"]
    assert tls and all(r["status"] == "ok" and r["tls"]["alpn"] == "apns-security-v3" for r in tls), good["table"]


@pytest.mark.parametrize("content", [b"not a certificate\n", b""])
def test_network_probe_refuses_a_ca_path_without_anchors(lab, tmp_path, content):
    bad = tmp_path / "ca.pem"
    bad.write_bytes(content)
    res = run_module("mdmops.apple.network_probe", {"services": ["device_management"], "hosts": ["*.push.apple.com"],
                                                    "tls": True, "ca_path": str(bad)},
                     interpreter=lab.interpreter("corp"))
    assert res["failed"] and "exception" not in res and "Traceback" not in res["_stdout"]
    assert "ca_path %s holds no usable trust anchors" % bad in res["msg"] and "results" not in res

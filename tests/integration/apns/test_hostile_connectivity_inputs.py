"""Hostile and malformed inputs to push_connectivity and network_probe's newer options (endpoints,
mdm_urls, ca_path, proxy, fail_on, layers, expected_roots, timeout, concurrency, the push
certificate inputs), run for real. Each case must fail before anything is probed.

Framework: tests/lib/hostile.py (one playbook run per group, each case judged on its own: a clean
failure naming the option, no traceback, no secret, its directory unchanged).
"""
from __future__ import annotations

import os
import stat

import pytest

from tests.lib.hostile import Suite, wrong

PC = "mdmops.apple.push_connectivity"
PROBE = "mdmops.apple.network_probe"
PROXY_SECRET = "Pr0xy-Secret-9d1c"
SUITE = Suite(timeout=60, secrets=(PROXY_SECRET,))
case = SUITE.case
ENDPOINT = "127.0.0.1:9"       # never probed: every case fails on its input first


def pc(**extra):
    args = {"services": [], "endpoints": [ENDPOINT], "timeout": 1}
    args.update(extra)
    return {k: v for k, v in args.items() if v is not None}


def probe(**extra):
    args = {"services": ["device_management"], "timeout": 1}
    args.update(extra)
    return args


def _fifo(c):
    os.mkfifo(str(c.d / "fifo"))
    return str(c.d / "fifo")


def _zero(c):
    os.mknod(str(c.d / "zero"), stat.S_IFCHR | 0o666, os.makedev(1, 5))
    return str(c.d / "zero")


# ---------------------------------------------------------------------------
# what to probe: endpoints, mdm_urls, layers, selection
# ---------------------------------------------------------------------------
WHAT = "what-to-probe"

for _n, (_endpoints, _fragment) in enumerate([
        ([{}], "endpoints[0]"), (["mdm.example.com"], "endpoints[0]"), (["mdm.example.com:99999"], "endpoints[0]"),
        ([443], "endpoints[0]"), ([None], "endpoints[0]"), (["a" * 300 + ":443"], "endpoints[0]"),
        ([{"host": "mdm.example.com", "port": 443, "colour": "red"}], "unknown key"),
        (["-oProxyCommand=x:443"], "endpoints[0]"), (["host name:443"], "endpoints[0]"),
        ([ENDPOINT] * 1001, "at most 1000")]):
    @case(WHAT, "endpoints/%d" % _n, PC, _fragment)
    def _endpoints_bad(c, ctx, endpoints=_endpoints):
        return pc(endpoints=endpoints)

for _n, (_urls, _fragment) in enumerate([
        (["not a url"], "mdm_urls[0]"), (["http://mdm.example.com/mdm"], "https"), (["https://"], "no host"),
        (["https://mdm.example.com:0/"], "port 0"), (["https://mdm.example.com:99999/"], "mdm_urls[0]"),
        (["https://admin:" + PROXY_SECRET + "@mdm.example.com/"], "credentials"), ([""], "mdm_urls[0]")]):
    @case(WHAT, "mdm_urls/%d" % _n, PC, _fragment)
    def _urls_bad(c, ctx, urls=_urls):
        return pc(mdm_urls=urls, layers=["ats"])


@case(WHAT, "layers_empty", PC, "layers is empty")
def _layers_empty(c, ctx):
    return pc(layers=[])


@case(WHAT, "layers_unknown", PC, "layers")
def _layers_unknown(c, ctx):
    return pc(layers=["icmp"])


@case(WHAT, "provider_without_certificate", PC, "provider layer needs")
def _provider_alone(c, ctx):
    return pc(layers=["provider"])


@case(WHAT, "ats_without_urls", PC, "mdm_urls")
def _ats_alone(c, ctx):
    return pc(layers=["ats"])


@case(WHAT, "nothing_to_probe", PC, "nothing to probe")
def _nothing(c, ctx):
    return pc(endpoints=[])


@case(WHAT, "empty_services_with_hosts", PC, "services is empty")
def _services_empty(c, ctx):
    return pc(hosts=["courier.push.apple.com"])


@case(WHAT, "unknown_service", PC, "services")
def _service_unknown(c, ctx):
    return pc(services=["no_such_service"], endpoints=[])


@case(WHAT, "fail_on_unknown", PC, "fail_on")
def _fail_on_unknown(c, ctx):
    return pc(fail_on=["sometimes"])


@case(WHAT, "fail_on_benign", PC, "not a finding")
def _fail_on_ok(c, ctx):
    return pc(fail_on=["ok"])


@case(WHAT, "expected_roots_blank", PC, "expected_roots is empty")
def _roots_blank(c, ctx):
    return pc(expected_roots=["", "  "], layers=["tls"])


for _n, (_extra, _fragment) in enumerate([
        ({"timeout": 0}, "timeout"), ({"timeout": -1}, "timeout"), ({"timeout": "nan"}, "timeout"),
        ({"timeout": 1e9}, "timeout"), ({"concurrency": 0}, "concurrency"), ({"concurrency": 100000}, "concurrency"),
        ({"environment": "staging"}, "environment")]):
    @case(WHAT, "bounds/%d" % _n, PC, _fragment)
    def _bounds(c, ctx, extra=_extra):
        return pc(**extra)


# ---------------------------------------------------------------------------
# files: ca_path and the push certificate inputs
# ---------------------------------------------------------------------------
FILES = "files"

for _module, _make in ((PC, lambda **kw: pc(layers=["tls"], **kw)), (PROBE, lambda **kw: probe(tls=True, **kw))):
    _short = _module.rsplit(".", 1)[-1]

    @case(FILES, "ca_path_fifo/" + _short, _module, "ca_path", "FIFO")
    def _ca_fifo(c, ctx, make=_make):
        return make(ca_path=_fifo(c))

    @case(FILES, "ca_path_endless_device/" + _short, _module, "ca_path", "character device", root=True)
    def _ca_zero(c, ctx, make=_make):
        return make(ca_path=_zero(c))

    @case(FILES, "ca_path_missing/" + _short, _module, "ca_path", "does not exist")
    def _ca_missing(c, ctx, make=_make):
        return make(ca_path=str(c.d / "missing.pem"))

    @case(FILES, "ca_path_no_certificate/" + _short, _module, "ca_path", "no usable trust anchors")
    def _ca_junk(c, ctx, make=_make):
        (c.d / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        return make(ca_path=str(c.d / "ca.pem"))


@case(FILES, "certificate_fifo", PC, "certificate_path", "FIFO")
def _cert_fifo(c, ctx):
    return pc(certificate_path=_fifo(c), layers=["tcp"])


@case(FILES, "certificate_endless_device", PC, "certificate_path", "character device", root=True)
def _cert_zero(c, ctx):
    return pc(certificate_path=_zero(c), layers=["tcp"])


@case(FILES, "certificate_directory", PC, "certificate_path", "directory")
def _cert_dir(c, ctx):
    return pc(certificate_path=str(c.d), layers=["tcp"])


@case(FILES, "privatekey_without_certificate", PC, "without a push certificate")
def _key_alone(c, ctx):
    (c.d / "push.key").write_text("x")
    return pc(privatekey_path=str(c.d / "push.key"))


# ---------------------------------------------------------------------------
# proxy options
# ---------------------------------------------------------------------------
PROXY = "proxy"

for _module, _make in ((PC, pc), (PROBE, probe)):
    _short = _module.rsplit(".", 1)[-1]
    for _n, (_extra, _fragment) in enumerate([
            ({"proxy": "socks5://127.0.0.1:1080"}, "proxy"), ({"proxy": "https://127.0.0.1:3128"}, "proxy"),
            ({"proxy": "http://127.0.0.1:0"}, "proxy"), ({"proxy": "http://:3128"}, "proxy"),
            ({"proxy": "http://probe:%s@127.0.0.1:3128" % PROXY_SECRET}, "proxy_password"),
            ({"proxy": "127.0.0.1"}, "proxy"),
            ({"proxy_password": PROXY_SECRET}, "proxy"),
            ({"proxy": "http://127.0.0.1:3128", "proxy_password": PROXY_SECRET}, "proxy_username")]):
        @case(PROXY, "%s/%d" % (_short, _n), _module, _fragment)
        def _proxy_bad(c, ctx, make=_make, extra=_extra):
            c.verify.append(lambda r: PROXY_SECRET not in str(r) or wrong("the proxy password shown"))
            return make(**extra)


@pytest.mark.parametrize("group", SUITE.groups)
def test_hostile_connectivity_inputs_fail_cleanly(tmp_path, group):
    ran = SUITE.run(group, tmp_path, lambda c: None)
    assert ran == len(SUITE.selected(group))

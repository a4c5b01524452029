"""Each module's RETURN documentation matches what it really returns.

Every module runs for real (ansible ad-hoc) with options that make it return
everything it can, and the results are checked against RETURN both ways:
nothing undocumented comes back, every documented key comes back from some
run, with the documented type (tests/lib/return_doc.py).
"""
from __future__ import annotations

import os

import pytest

from tests.lib.ansible_run import run_module
from tests.lib.return_doc import check_return_doc

SEED = os.path.join(os.path.dirname(__file__), "..", "unit", "fixtures", "apple_enterprise_networks_fr.txt")


def ok(result):
    assert result["_rc"] == 0, result["_stdout"]
    return result


def test_push_certificate_info(tmp_path, pki, push):
    cert, key, current = tmp_path / "push.pem", tmp_path / "push.key", tmp_path / "current.pem"
    push.write(str(cert), str(key), with_chain=True)
    current.write_bytes(push.cert_pem())
    renewal = pki.renewal(push)
    full = ok(run_module("mdmops.apple.push_certificate_info", {
        "content": renewal.cert_pem().decode() + renewal.key_pem().decode(),
        "compare_to_path": str(current)}))
    plain = ok(run_module("mdmops.apple.push_certificate_info", {"path": str(cert), "private_key_path": str(key)}))
    from lab.consoles import Emulator
    with Emulator("micromdm", tmp_path / "console", tls_dir=tmp_path / "tls") as emu:
        console = {"console": "micromdm", "url": emu.url, "api_key": emu.api_key, "ca_path": emu.ca_path}
        held = ok(run_module("mdmops.apple.push_certificate_info", dict(console, path=str(cert))))
    check_return_doc("push_certificate_info", full, plain, held, exhaustive=True)


def test_push_certificate(tmp_path, pki, push):
    from lab.consoles import Emulator
    renewal = pki.renewal(push)
    for stem, issued in (("push", push), ("renewal", renewal)):
        issued.write(str(tmp_path / (stem + ".pem")), str(tmp_path / (stem + ".key")))
    (tmp_path / "backups").mkdir()
    with Emulator("nanomdm", tmp_path / "nanomdm", tls_dir=tmp_path / "tls") as emu, \
            Emulator("micromdm", tmp_path / "micromdm-old", variant="old", tls_dir=tmp_path / "tls-old") as old:
        def args(server, stem, **kw):
            return dict({"console": server.kind, "url": server.url, "api_key": server.api_key,
                         "ca_path": server.ca_path, "certificate_path": str(tmp_path / (stem + ".pem")),
                         "privatekey_path": str(tmp_path / (stem + ".key"))}, **kw)
        first = ok(run_module("mdmops.apple.push_certificate", args(emu, "push", allow_new_topic=True)))
        renewed = ok(run_module("mdmops.apple.push_certificate", args(emu, "renewal", expected_topic=push.topic,
                                                                      backup_dir=str(tmp_path / "backups"))))
        refused = run_module("mdmops.apple.push_certificate", args(emu, "push"))
        blind = ok(run_module("mdmops.apple.push_certificate", args(old, "push", expected_topic=push.topic)))
    assert renewed["backup_path"] and refused["failed"] and blind["held_before"]["known"] is False
    check_return_doc("push_certificate", first, renewed, refused, blind, exhaustive=True)


def test_push_certificate_request(tmp_path, pki):
    vendor = pki.vendor()
    vendor.write(str(tmp_path / "mdm.pem"))
    (tmp_path / "vendor.key").write_bytes(vendor.key_bytes())
    args = {"privatekey_path": str(tmp_path / "push.key"), "csr_path": str(tmp_path / "push.csr"),
            "common_name": "mdm.example.com", "signed_request_path": str(tmp_path / "request.b64"),
            "vendor_certificate_path": str(tmp_path / "mdm.pem"),
            "vendor_private_key_path": str(tmp_path / "vendor.key")}
    first = ok(run_module("mdmops.apple.push_certificate_request", args))
    forced = ok(run_module("mdmops.apple.push_certificate_request", dict(args, force=True, backup=True)))
    assert forced["backup_files"]
    check_return_doc("push_certificate_request", first, forced, exhaustive=True)


def test_network_info():
    full = ok(run_module("mdmops.apple.network_info", {"article_path": SEED, "views": ["all"]}))
    compact = ok(run_module("mdmops.apple.network_info", {"services": ["all"]}))
    check_return_doc("network_info", full, compact, exhaustive=True)


@pytest.mark.lab
def test_network_probe(lab):
    result = ok(run_module("mdmops.apple.network_probe", {
        "services": ["device_management", "device_setup"], "timeout": 1,
        "names": {"*.push.apple.com": "1-courier.push.apple.com"}}, interpreter=lab.interpreter("corp")))
    # the TLS layer on the push rows (layer, tls, remedies)
    tls = ok(run_module("mdmops.apple.network_probe", {
        "services": ["device_management"], "hosts": ["*.push.apple.com"], "timeout": 1, "tls": True,
        "ca_path": lab.ca_path, "names": {"*.push.apple.com": "1-courier.push.apple.com"}},
        interpreter=lab.interpreter("corp")))
    # through the lab's CONNECT proxy (proxy, resolved_by, remedy)
    from lab import proxies
    proxies.start(lab)
    try:
        proxied = ok(run_module("mdmops.apple.network_probe", {
            "services": ["device_management"], "hosts": ["*.push.apple.com"], "timeout": 1, "tls": True,
            "ca_path": lab.ca_path, "proxy": proxies.url("clean"),
            "names": {"*.push.apple.com": "1-courier.push.apple.com"}}, interpreter=lab.interpreter("corp")))
    finally:
        lab.stop(proxies.NAME)
    check_return_doc("network_probe", result, tls, proxied, exhaustive=True)


@pytest.mark.lab
def test_push_connectivity(lab, tmp_path):
    from lab import apns, ats, proxies
    cert = apns.lab_push_pki(lab).push()
    (tmp_path / "push.pem").write_bytes(cert.cert_pem() + cert.chain_pem())
    (tmp_path / "push.key").write_bytes(cert.key_pem())
    ats.ensure(lab)
    urls = ["https://%s/mdm" % ats.HOSTS[p] for p in ("good", "sha1")]
    # every layer (dns with addresses, tcp, tls, provider, ats with a failed requirement), certificates
    full = ok(run_module("mdmops.apple.push_connectivity", {
        "services": ["push_provider"], "endpoints": ["1-courier.push.apple.com:5223"], "timeout": 2,
        "ca_path": lab.ca_path, "certificate_path": str(tmp_path / "push.pem"),
        "privatekey_path": str(tmp_path / "push.key"), "mdm_urls": urls}, interpreter=lab.interpreter("corp")))
    # through the lab's CONNECT proxy (proxy)
    proxies.start(lab)
    try:
        proxied = ok(run_module("mdmops.apple.push_connectivity", {
            "services": [], "endpoints": ["api.push.apple.com:443"], "timeout": 2, "ca_path": lab.ca_path,
            "proxy": proxies.url("clean"), "mdm_urls": urls[:1]}, interpreter=lab.interpreter("corp")))
    finally:
        lab.stop(proxies.NAME)
    check_return_doc("push_connectivity", full, proxied, exhaustive=True)


@pytest.mark.lab
def test_egress_firewall(lab):
    # this lab's own state directory: runs side by side (xdist workers, older cores) share the file system
    state_dir = os.path.join(lab.state_dir, "egress-firewall")
    args = {"services": ["device_management", "apps_content"], "strategy": "both", "rollback_timeout": 30,
            "backup": True, "state_dir": state_dir}
    try:
        # left pending (manual confirmation), so that the next run takes its timer over (rollback.superseded)
        present = ok(run_module("mdmops.apple.egress_firewall", dict(args, rollback_confirm="manual"),
                                interpreter=lab.interpreter("corp")))
        cidr = ok(run_module("mdmops.apple.egress_firewall", dict(args, strategy="cidr"),
                             interpreter=lab.interpreter("corp")))
        assert cidr["uncovered"]
        absent = ok(run_module("mdmops.apple.egress_firewall", {"state": "absent", "state_dir": state_dir},
                               interpreter=lab.interpreter("corp")))
    finally:
        run_module("mdmops.apple.egress_firewall", {"state": "absent", "state_dir": state_dir},
                   interpreter=lab.interpreter("corp"))
    check_return_doc("egress_firewall", present, cidr, absent, exhaustive=True)

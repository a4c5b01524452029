"""Each module's RETURN documentation matches what it really returns.

Every module runs for real (its own code on real files, emulators and lab namespaces, through
tests/lib/module_runner.py: the RETURN keys are what the module answers; egress_firewall's
confirmation run is made as its action plugin makes it) with options that make it return everything
it can, and the results are checked against RETURN both ways:
nothing undocumented comes back, every documented key comes back from some
run, with the documented type (tests/lib/return_doc.py).
"""
from __future__ import annotations

import os
import sys

import pytest

from tests.lib.ansible_run import task
from tests.lib.module_runner import run_module_cases
from tests.lib.return_doc import check_return_doc

SEED = os.path.join(os.path.dirname(__file__), "..", "unit", "fixtures", "apple_enterprise_networks_fr.txt")


def ok(result):
    assert result["failed"] is False and result["_crash"] is None, result["_stdout"]
    return result


def runs(module, *args_list, interpreter=None):
    """Each of ``args_list`` as one run of ``module``, in order (with egress_firewall's confirmation
    run where its action plugin makes one); the results in that order (a failed run does not stop the
    next ones)."""
    confirm = module == "mdmops.apple.egress_firewall"
    tasks = [dict(task("run %d" % n, module, args), confirm=confirm) for n, args in enumerate(args_list)]
    results = run_module_cases(tasks, timeout=300, python=interpreter or sys.executable, ordered=True)
    return [results["run %d" % n] for n in range(len(args_list))]


def test_push_certificate_info(tmp_path, pki, push):
    cert, key, current = tmp_path / "push.pem", tmp_path / "push.key", tmp_path / "current.pem"
    push.write(str(cert), str(key), with_chain=True)
    current.write_bytes(push.cert_pem())
    renewal = pki.renewal(push)
    from lab.consoles import Emulator
    from lab.consoles import intune as emi
    with Emulator("micromdm", tmp_path / "console", tls_dir=tmp_path / "tls") as emu, \
            Emulator("intune", tmp_path / "intune", tls_dir=tmp_path / "tls-intune") as graph:
        console = {"console": "micromdm", "url": emu.url, "api_key": emu.api_key, "ca_path": emu.ca_path}
        intune = {"console": "intune", "url": graph.url, "token_url": graph.url, "tenant_id": emi.TENANT_ID,
                  "client_id": emi.CLIENT_ID, "client_secret": graph.api_key, "ca_path": graph.ca_path}
        full, plain, held, csr = map(ok, runs(
            "mdmops.apple.push_certificate_info",
            {"content": renewal.cert_pem().decode() + renewal.key_pem().decode(), "compare_to_path": str(current)},
            {"path": str(cert), "private_key_path": str(key)},
            dict(console, path=str(cert)),
            dict(intune, console_csr=True)))
    assert csr["console_csr"]["pem"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    check_return_doc("push_certificate_info", full, plain, held, csr, exhaustive=True)


# push_certificate: checked on the many runs of consoles/test_push_certificate_module.py


def test_push_certificate_request(tmp_path, pki):
    vendor = pki.vendor()
    vendor.write(str(tmp_path / "mdm.pem"))
    (tmp_path / "vendor.key").write_bytes(vendor.key_bytes())
    args = {"privatekey_path": str(tmp_path / "push.key"), "csr_path": str(tmp_path / "push.csr"),
            "common_name": "mdm.example.com", "signed_request_path": str(tmp_path / "request.b64"),
            "vendor_certificate_path": str(tmp_path / "mdm.pem"),
            "vendor_private_key_path": str(tmp_path / "vendor.key")}
    first, forced = map(ok, runs("mdmops.apple.push_certificate_request", args, dict(args, force=True, backup=True)))
    assert forced["backup_files"]
    check_return_doc("push_certificate_request", first, forced, exhaustive=True)


def test_network_info():
    full, compact = map(ok, runs("mdmops.apple.network_info", {"article_path": SEED, "views": ["all"]},
                                 {"services": ["all"]}))
    check_return_doc("network_info", full, compact, exhaustive=True)


@pytest.mark.lab
def test_network_probe(lab):
    from lab import proxies
    names = {"*.push.apple.com": "1-courier.push.apple.com"}
    proxies.start(lab)
    try:
        result, tls, proxied = map(ok, runs(
            "mdmops.apple.network_probe",
            {"services": ["device_management", "device_setup"], "timeout": 1, "names": names},
            # the TLS layer on the push rows (layer, tls, remedies)
            {"services": ["device_management"], "hosts": ["*.push.apple.com"], "timeout": 1, "tls": True,
             "ca_path": lab.ca_path, "names": names},
            # through the lab's CONNECT proxy (proxy, resolved_by, remedy)
            {"services": ["device_management"], "hosts": ["*.push.apple.com"], "timeout": 1, "tls": True,
             "ca_path": lab.ca_path, "proxy": proxies.url("clean"), "names": names},
            interpreter=lab.interpreter("corp")))
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
    proxies.start(lab)
    try:
        full, proxied = map(ok, runs(
            "mdmops.apple.push_connectivity",
            {"services": ["push_provider"], "endpoints": ["1-courier.push.apple.com:5223"], "timeout": 2,
             "ca_path": lab.ca_path, "certificate_path": str(tmp_path / "push.pem"),
             "privatekey_path": str(tmp_path / "push.key"), "mdm_urls": urls},
            # through the lab's CONNECT proxy (proxy)
            {"services": [], "endpoints": ["api.push.apple.com:443"], "timeout": 2, "ca_path": lab.ca_path,
             "proxy": proxies.url("clean"), "mdm_urls": urls[:1]},
            interpreter=lab.interpreter("corp")))
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
        present, cidr, absent = map(ok, runs(
            "mdmops.apple.egress_firewall", dict(args, rollback_confirm="manual"), dict(args, strategy="cidr"),
            {"state": "absent", "state_dir": state_dir}, interpreter=lab.interpreter("corp")))
        assert cidr["uncovered"]
    finally:
        from tests.integration.firewall.fwlib import remove
        remove(lab, state_dir=state_dir)
    check_return_doc("egress_firewall", present, cidr, absent, exhaustive=True)

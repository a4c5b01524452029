"""MDM server readiness (App Transport Security) against real servers in the lab.

``lab/ats.py`` serves one profile per fixed address (good RSA and ECC servers, TLS 1.1 only,
a SHA-1-signed leaf, a 1024-bit RSA leaf, no forward-secret suite, an expired leaf), each
with a lab DNS name ``mdm-<profile>.example.com``.  ``ats_check`` runs from the corp
namespace (where modules run), resolving through the lab DNS, in one Python process for
every case; plus a refused port and a name the lab DNS does not know.

Each pytest(-xdist) worker has its own lab (the ``lab`` fixture); the servers start when
this module asks and stop at its end.
"""
from __future__ import annotations

import pytest

from lab import ats as labats

pytestmark = pytest.mark.lab

CASES = {p: "https://%s/mdm/checkin" % labats.HOSTS[p] for p in labats.PROFILES}
CASES.update({
    "good-8443": "https://%s:8443/mdm/enroll?x=1" % labats.HOSTS["good"],
    "good-ip": "https://%s/mdm" % labats.ADDRESSES["good"],
    "refused": "https://%s:8444/mdm" % labats.HOSTS["good"],
    "nxdomain": "https://mdm.nowhere.test/mdm",
})


@pytest.fixture(scope="module")
def results(lab, in_ns):
    labats.start(lab)
    try:
        code = ("import json\n"
                "from ansible_collections.mdmops.apple.plugins.module_utils._apns._ats import ats_check\n"
                "cases = %r\n"
                "out = {k: ats_check(u, timeout=3, ca_path=%r) for k, u in cases.items()}\n"
                "out['good-system-store'] = ats_check(cases['good'], timeout=3)\n"
                "out['good-v6'] = ats_check(cases['good'], timeout=3, ca_path=%r, address=%r)\n"
                "print(json.dumps(out))" % (CASES, lab.ca_path, lab.ca_path, labats.ADDRESSES6["good"]))
        yield in_ns("corp", code)
    finally:
        lab.stop(labats.NAME)


@pytest.mark.parametrize("profile", labats.PROFILES)
def test_each_server_gets_its_verdict(results, profile):
    res = results[profile]
    status, failed = labats.EXPECTED[profile]
    assert res["status"] == status, res["detail"]
    assert [f["requirement"] for f in res["failures"]] == failed, res["failures"]
    assert res["address"] == labats.ADDRESSES[profile]          # resolved by the lab DNS
    assert res["http_status"] == 200 and res["checks"]["https"] == "ok"


def test_the_findings_name_what_is_wrong(results):
    if "tls11" in labats.PROFILES:
        assert results["tls11"]["tls_version"] == "TLSv1.1"
        assert "its best is TLSv1.1" in results["tls11"]["failures"][0]["detail"]
    assert results["sha1"]["signature_hash"] == "sha1" and results["sha1"]["checks"]["trust"] == "ok"
    assert results["rsa1024"]["key_type"] == "rsa" and results["rsa1024"]["key_bits"] == 1024
    nofs = results["nofs"]
    assert nofs["tls_version"] == "TLSv1.2" and nofs["cipher"] not in _ats_ciphers()
    assert nofs["cipher"] in nofs["failures"][0]["detail"]
    assert "expired on" in results["expired"]["detail"]
    assert results["ec"]["key_type"] == "ec" and results["ec"]["key_bits"] == 256
    good = results["good"]
    assert good["key_bits"] == 2048 and good["signature_hash"] == "sha256" and good["remedy"] == ""
    assert good["tls_version"] in ("TLSv1.2", "TLSv1.3")


def _ats_ciphers():
    from ansible_collections.mdmops.apple.plugins.module_utils._apns._ats import ATS_CIPHERS
    return ATS_CIPHERS


def test_port_path_and_ip_urls(results):
    assert results["good-8443"]["status"] == "ok" and results["good-8443"]["port"] == 8443
    assert results["good-ip"]["status"] == "ok", results["good-ip"]["detail"]   # IP in the subjectAltName
    v6 = results["good-v6"]
    assert v6["status"] == "ok" and v6["address"] == labats.ADDRESSES6["good"], v6["detail"]


def test_system_store_without_the_lab_root_is_untrusted(results):
    res = results["good-system-store"]
    assert res["status"] == "untrusted" and [f["requirement"] for f in res["failures"]] == ["trust"]
    assert res["verify_error"] and "system trust store" in res["detail"]


def test_network_statuses(results):
    refused, nx = results["refused"], results["nxdomain"]
    assert refused["status"] == "refused" and refused["address"] == labats.ADDRESSES["good"]
    assert refused["failures"][0]["requirement"] == "https" and ":8444" in refused["remedy"]
    assert nx["status"] == "dns_failed" and nx["address"] is None
    assert "mdm.nowhere.test does not resolve" in nx["detail"]

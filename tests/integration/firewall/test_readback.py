"""Each backend writes its rules the way the firewall prints them back, so drift can be judged by rule
text (comparable() compares it): every kind of rule, applied for real and read back, reads as planned."""
from __future__ import annotations

import subprocess

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import build_plan, comparable
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._run import load_backend

pytestmark = pytest.mark.lab


def fake_dns(name, families):
    return [a for a in ("17.253.1.1", "2620:149:1::1") if (6 if ":" in a else 4) in families]


PARAMS = [
    dict(services=["push_provider"], default_policy="drop", dns_servers=["100.64.0.1", "fd64::1"],
         keep_addresses=["10.0.0.0/8", "fd00::/8"], mark="0x4d44", strategy="both"),
    dict(services=["push_provider"], default_policy="drop", dns_servers=["100.64.0.0/30", "100.64.9.9", "fd64::/64"]),
    dict(services=["push_provider", "device_management"], default_policy="drop", hook="forward", strategy="resolve"),
    dict(services=["device_setup"], strategy="both", mark=16, extra=[{"address": "198.51.100.7", "ports": [8443],
                                                                      "protocol": "both"}]),
]


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
def test_every_rule_reads_back_as_written(lab, backend):
    def runner(argv, data=None):
        proc = subprocess.run(["ip", "netns", "exec", lab.ns("corp")] + argv, input=data, capture_output=True,
                              text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    lab.run("corp", ["nft", "flush", "ruleset"], check=True)
    fw = load_backend(backend)(runner)
    try:
        for params in PARAMS:
            plan = build_plan(params, resolver=fake_dns)
            want = fw.desired(plan)
            fw.validate(plan)
            fw.apply(plan)
            have = fw.read()
            assert have["rule_text"] == want["rule_text"], params
            assert comparable(have) == comparable(want), params
    finally:
        fw.remove()
        lab.run("corp", ["nft", "flush", "ruleset"], check=True)

"""The egress_firewall role: egress_firewall_hook, and the deprecated egress_firewall_path still honoured."""
from __future__ import annotations

import pytest

from tests.integration.firewall.fwlib import apply, ruleset
from tests.lib.ansible_run import run_playbook

pytestmark = pytest.mark.lab

PLAY = """- hosts: corp
  gather_facts: false
  roles:
    - role: mdmops.apple.egress_firewall
      vars:
        egress_firewall_services: [push_provider]
        egress_firewall_state_dir: %(state_dir)s
        %(var)s: forward
"""


@pytest.mark.parametrize("var,deprecated", [("egress_firewall_hook", False), ("egress_firewall_path", True)])
def test_role_hook_variable_and_its_deprecated_name(lab, tmp_path, var, deprecated):
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)
    state_dir = tmp_path / "state"
    state_dir.mkdir(mode=0o700)
    play = tmp_path / "play.yml"
    play.write_text(PLAY % {"state_dir": state_dir, "var": var})
    try:
        proc = run_playbook(str(play), inventory=lab.inventory)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert "hook forward" in ruleset(lab)
        assert ("egress_firewall_path is deprecated" in proc.stdout) is deprecated
    finally:
        apply(lab, {"state": "absent", "state_dir": str(state_dir)})
        lab.run("corp", ["nft", "flush", "ruleset"], check=True)

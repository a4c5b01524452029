"""Benchmark: what the collection costs per host, as a multiple of a bare ``ping``.

A fleet of N managed hosts, each one a network namespace of its own (as the
lab's hosts are: ``<prefix>-fleet<i>``, reached by a local connection whose
Python runs ``ip netns exec``), then three ``ansible-playbook`` runs over the
whole fleet, timed end to end:

* ``ansible.builtin.ping``                                 (Ansible's own cost)
* ``mdmops.apple.network_info`` (default, compact answer)
* ``mdmops.apple.network_info`` with ``views: [all]`` (every row, the former default answer)
* ``mdmops.apple.egress_firewall`` in check mode (every service, cidr)

Each run's time is printed with its ratio to the ping run.  The namespaces
and their interpreter wrappers live under the lab's state directory (the
prefix and state settings the tests use: ``--prefix``, else
``$MDMOPS_LAB_PREFIX``; ``$MDMOPS_LAB_STATE``), and are removed at the end,
also after a failure.  Needs root.

    sudo .venv/bin/python bench/fleet_bench.py [--hosts 20] [--forks 10] [--runs 1]
    sudo .venv/bin/python bench/fleet_bench.py --hosts 500 --forks 50
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from lab.collection import collections_root  # noqa: E402
from lab.netns import Lab, LabError, _ip, _need_root, _netns_list  # noqa: E402

PLAYS = {
    "ping": """- hosts: fleet
  gather_facts: false
  tasks:
    - name: Bare ping
      ansible.builtin.ping:
""",
    "network_info": """- hosts: fleet
  gather_facts: false
  tasks:
    - name: Catalog selection (default views)
      mdmops.apple.network_info:
        services: [all]
""",
    "network_info views=all": """- hosts: fleet
  gather_facts: false
  tasks:
    - name: Catalog selection, every view (the rows too, as before views existed)
      mdmops.apple.network_info:
        services: [all]
        views: [all]
""",
    "egress_firewall --check": """- hosts: fleet
  gather_facts: false
  tasks:
    - name: Whole catalog as egress rules, check mode
      mdmops.apple.egress_firewall:
        services: [all]
        strategy: cidr
        state_dir: "{{ fleet_state_dir }}"
        backup: false
      check_mode: true
""",
}


class Fleet(object):
    """N namespaces with loopback only, and an inventory whose hosts run in them."""

    def __init__(self, lab, count):
        self.lab = lab
        self.count = count
        self.dir = os.path.join(lab.state_dir, "fleet")
        self.names = ["%s-fleet%d" % (lab.prefix, i) for i in range(count)]

    def up(self):
        _need_root()
        self.down()
        os.makedirs(os.path.join(self.dir, "bin"), mode=0o700, exist_ok=True)
        os.makedirs(os.path.join(self.dir, "state"), mode=0o700, exist_ok=True)
        lines = ["[fleet]"]
        for name in self.names:
            _ip("netns", "add", name)
            _ip("-n", name, "link", "set", "lo", "up")
            wrapper = os.path.join(self.dir, "bin", "python-" + name)
            with open(wrapper, "w") as f:
                f.write('#!/bin/sh\nexec ip netns exec %s %s "$@"\n' % (name, sys.executable))
            os.chmod(wrapper, 0o700)
            lines.append("%s ansible_connection=local ansible_python_interpreter=%s" % (name, wrapper))
        lines += ["", "[fleet:vars]", "fleet_state_dir=%s" % os.path.join(self.dir, "state")]
        with open(self.inventory, "w") as f:
            f.write("\n".join(lines) + "\n")
        return self

    @property
    def inventory(self):
        return os.path.join(self.dir, "inventory.ini")

    def down(self):
        existing = set(_netns_list()) if shutil.which("ip") else set()
        for name in self.names:
            if name in existing:
                try:
                    _ip("netns", "delete", name)
                except LabError:
                    pass
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)


def play(name, text, inventory, forks, work):
    path = os.path.join(work, "".join(c if c.isalnum() else "_" for c in name) + ".yml")
    with open(path, "w") as f:
        f.write(text)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_root(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
           "-f", str(forks), path]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (name, proc.stdout[-3000:] + proc.stderr[-2000:]))
    return elapsed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=20, help="managed hosts (namespaces), default 20; 500 for the fleet")
    ap.add_argument("--forks", type=int, default=10, help="ansible forks (default 10)")
    ap.add_argument("--runs", type=int, default=1, help="runs of each playbook; the best time counts")
    ap.add_argument("--prefix", default=None, help="lab prefix (default: $MDMOPS_LAB_PREFIX, else the lab's)")
    args = ap.parse_args(argv)
    if not 1 <= args.hosts <= 2000 or not 1 <= args.forks <= 500 or not 1 <= args.runs <= 20:
        ap.error("--hosts 1-2000, --forks 1-500, --runs 1-20")
    fleet = Fleet(Lab(args.prefix), args.hosts)
    work = tempfile.mkdtemp(prefix="mdmops-fleet-")
    try:
        fleet.up()
        times = {}
        for name, text in PLAYS.items():
            times[name] = min(play(name, text, fleet.inventory, args.forks, work) for _run in range(args.runs))
        print("fleet: %d hosts (namespaces %s-fleet*), %d forks, best of %d run(s)"
              % (args.hosts, fleet.lab.prefix, args.forks, args.runs))
        for name, elapsed in times.items():
            print("%-24s %8.2f s   %5.2f x ping   %6.1f ms/host"
                  % (name, elapsed, elapsed / times["ping"], 1000.0 * elapsed / args.hosts))
    finally:
        fleet.down()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

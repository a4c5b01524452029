"""Benchmark: the whole Apple catalog as egress rules, one task vs. one task per rule.

Ours: one ``mdmops.apple.egress_firewall`` task (every service, addresses
resolved, one atomic transaction).  The obvious alternative: a loop of
``ansible.builtin.iptables`` tasks, one rule per catalog endpoint (host, port,
protocol), the destination resolved by iptables.  Both run as
``ansible-playbook`` against the lab's corp namespace in the same run; we
print the wall time of a first apply and of an unchanged re-run, and the
ratios.

    sudo .venv/bin/python bench/firewall_bench.py [--backend nftables] [--services all] [--runs 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from lab.collection import collections_root  # noqa: E402
from lab.netns import Lab  # noqa: E402

sys.path.insert(0, collections_root())
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled  # noqa: E402
from ansible_collections.mdmops.apple.plugins.module_utils._probe import concrete_name  # noqa: E402

NAMES = {"*.appattest.apple.com": "data.appattest.apple.com"}
OURS = """- hosts: corp
  gather_facts: false
  tasks:
    - name: Apple catalog, one task
      mdmops.apple.egress_firewall:
        backend: %(backend)s
        services: %(services)s
        strategy: resolve
        dns_sets: false
        ip_versions: [4]
        state_dir: %(state_dir)s
"""
LOOP = """- hosts: corp
  gather_facts: false
  tasks:
    - name: Apple catalog, one iptables task per rule
      ansible.builtin.iptables:
        chain: OUTPUT
        destination: "{{ item.name }}"
        protocol: "{{ item.protocol }}"
        destination_port: "{{ item.port }}"
        jump: ACCEPT
        comment: "{{ item.service }}"
      loop: "{{ endpoints }}"
"""


def endpoints(services):
    out = []
    for ep in load_bundled().select(services=services).endpoints():
        name = concrete_name(ep["host"], NAMES)
        if name:
            out.append({"name": name, "port": ep["port"], "protocol": ep["protocol"], "service": ep["service"]})
    return out


def play(path, inventory, extra=None):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_root(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_LOCALHOST_WARNING="False",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, path]
    if extra:
        cmd += ["-e", "@" + extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (path, proc.stdout[-3000:] + proc.stderr[-2000:]))
    recap = [line for line in proc.stdout.splitlines() if line.startswith("corp ")]
    return elapsed, recap[-1] if recap else ""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="nftables", choices=["nftables", "iptables"])
    ap.add_argument("--services", default="all", help="comma-separated catalog services (default: all)")
    ap.add_argument("--prefix", default="mdmbench", help="lab prefix")
    args = ap.parse_args(argv)
    services = args.services.split(",")
    lab = Lab(args.prefix)
    was_up = lab.is_up()
    lab.up()
    work = tempfile.mkdtemp(prefix="mdmops-bench-")
    try:
        eps = endpoints(services)
        ours = os.path.join(work, "ours.yml")
        loop = os.path.join(work, "loop.yml")
        vars_file = os.path.join(work, "endpoints.json")
        with open(ours, "w") as f:
            # a private state directory (lock, backups) per run, as the tests use, not the host's default
            f.write(OURS % {"backend": args.backend, "services": json.dumps(services),
                            "state_dir": json.dumps(os.path.join(work, "state"))})
        with open(loop, "w") as f:
            f.write(LOOP)
        with open(vars_file, "w") as f:
            json.dump({"endpoints": eps}, f)
        print("catalog: %d endpoints (host, port, protocol) for services %s" % (len(eps), ",".join(services)))
        results = {}
        results["ours first"] = play(ours, lab.inventory)
        results["ours again"] = play(ours, lab.inventory)
        lab.run("corp", ["nft", "delete", "table", "inet", "mdmops_apple"], check=False)
        lab.run("corp", ["iptables", "-F", "MDMOPS-APPLE"], check=False)
        results["loop first"] = play(loop, lab.inventory, vars_file)
        results["loop again"] = play(loop, lab.inventory, vars_file)
        lab.run("corp", ["iptables", "-F", "OUTPUT"], check=False)
        for key, (elapsed, recap) in results.items():
            print("%-11s %7.2f s   %s" % (key, elapsed, " ".join(recap.split()[2:4])))
        for run in ("first", "again"):
            ratio = results["loop " + run][0] / results["ours " + run][0]
            print("ratio %-5s %6.1fx  (ansible.builtin.iptables loop / mdmops.apple.egress_firewall)" % (run, ratio))
    finally:
        if not was_up:
            lab.down()
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()

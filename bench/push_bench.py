"""Benchmark: N TCP endpoints of the catalog, a fifth blackholed, one push_connectivity task vs. a wait_for loop.

Ours: one ``mdmops.apple.push_connectivity`` task (``services: []``, the
endpoints given, ``layers: [dns, tcp]``).  The obvious alternative: a loop of
``ansible.builtin.wait_for`` tasks over the same endpoints with the same
timeout (it resolves the name and opens a TCP connection too).  Both run as
``ansible-playbook`` against the lab's corp namespace, each in a playbook
run of its own; we print the time of the probing task(s) alone (measured inside the run,
from the task before to the task after) and of the whole run, and the ratios.

The endpoints are the catalog's TCP endpoints (unique name and port, wildcard
hosts probed through the catalog's concrete name), then, past those, further
names the catalog's wildcards cover (``bench<k>.<domain>``) on the wildcard
rows' ports.  A fifth of them is blackholed: their names resolve, in the lab
DNS, to ``lab.listeners.BLACKHOLE_ADDRESS`` (where packets vanish: a firewall
that silently drops) and to an IPv6 address an nft rule in corp refuses at
once, so each of them costs one full timeout, on either side.  The
rest answer (the lab listeners hold every catalog port).

Memory: the managed host's Python runs under a small wrapper (this script with
``--measure``) that records the peak resident size of each module run; the
push_connectivity task runs again with ``--scale`` endpoints (default 4N, the
same fifth blackholed), in a third run with the one-endpoint task that gives
the fixed cost, and the peaks are printed.

Targets (issue 9), checked at the end (exit status 1 when one is missed):

* the N-endpoint task within twice the timeout plus the fixed cost of one task
  (the same task probing one endpoint that answers);
* at least 20 times faster than the wait_for loop (task times);
* memory flat: the peak at ``--scale`` endpoints at most 25% above the peak at N.

    sudo .venv/bin/python bench/push_bench.py [--endpoints 100] [--scale 400] [--timeout 2] [--prefix mdmbench]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

RATIO_TARGET = 20.0
# The IPv6 address of a blackholed name: one of the lab's "other Internet" that an nft rule in corp refuses (TCP
# reset). A name covered by a catalog wildcard keeps the wildcard's AAAA unless given one of its own, and the two
# sides try addresses differently (push_connectivity the first, IPv4; wait_for each in getaddrinfo's order): with
# IPv4 silent and IPv6 refused at once, each spends exactly one timeout on a blackholed endpoint.
BLACKHOLE_V6 = "2001:db8:100::dead:b1ac"
NFT_TABLE = "mdmops_push_bench"
MEMORY_GROWTH = 1.25

OURS = """- hosts: corp
  gather_facts: false
  tasks:
    - name: Start
      ansible.builtin.set_fact:
        bench_t0: "{{ now(utc=true).timestamp() }}"
    - name: N endpoints, one task
      mdmops.apple.push_connectivity:
        services: []
        layers: [dns, tcp]
        timeout: %(timeout)s
        endpoints: "{{ bench_endpoints }}"%(concurrency)s
      register: bench_ours
    - name: Mark
      ansible.builtin.set_fact:
        bench_t1: "{{ now(utc=true).timestamp() }}"
    - name: Times and statuses
      ansible.builtin.copy:
        dest: "{{ bench_out }}"
        mode: "0600"
        content: "{{ {'t': [bench_t0, bench_t1], 'ours': bench_ours.probes | selectattr('layer', 'eq', 'tcp') | list}
                     | to_json }}"
      delegate_to: localhost
"""
# The fixed cost of one task and the memory run, in a run of their own (so the runs compared hold one task each).
EXTRA = """- hosts: corp
  gather_facts: false
  vars:
    bench_args: &args
      services: []
      layers: [dns, tcp]
      timeout: %(timeout)s
  tasks:
    - name: Start
      ansible.builtin.set_fact:
        bench_t0: "{{ now(utc=true).timestamp() }}"
    - name: Fixed cost, one endpoint that answers
      mdmops.apple.push_connectivity:
        <<: *args
        endpoints: "{{ bench_one }}"%(concurrency)s
      register: bench_fixed
    - name: Mark
      ansible.builtin.set_fact:
        bench_t1: "{{ now(utc=true).timestamp() }}"
    - name: Scaled endpoints, one task
      mdmops.apple.push_connectivity:
        <<: *args
        endpoints: "{{ bench_scaled }}"%(concurrency)s
      register: bench_scaled_result
      when: bench_scaled | length > 0
    - name: Mark
      ansible.builtin.set_fact:
        bench_t2: "{{ now(utc=true).timestamp() }}"
    - name: Times and statuses
      ansible.builtin.copy:
        dest: "{{ bench_out }}"
        mode: "0600"
        content: "{{ {'t': [bench_t0, bench_t1, bench_t2],
                      'fixed': bench_fixed.probes | map(attribute='status') | list,
                      'scaled': (bench_scaled_result.probes | default([])) | selectattr('layer', 'eq', 'tcp') | list}
                     | to_json }}"
      delegate_to: localhost
"""
LOOP = """- hosts: corp
  gather_facts: false
  tasks:
    - name: Start
      ansible.builtin.set_fact:
        bench_t0: "{{ now(utc=true).timestamp() }}"
    - name: N endpoints, one wait_for task each
      ansible.builtin.wait_for:
        host: "{{ item.host }}"
        port: "{{ item.port }}"
        timeout: %(timeout_int)d
        connect_timeout: %(timeout_int)d
      loop: "{{ bench_endpoints }}"
      register: bench_loop
      ignore_errors: true
    - name: Mark
      ansible.builtin.set_fact:
        bench_t1: "{{ now(utc=true).timestamp() }}"
    - name: Times and statuses
      ansible.builtin.copy:
        dest: "{{ bench_out }}"
        mode: "0600"
        content: "{{ {'t': [bench_t0, bench_t1],
                      'failed': bench_loop.results | selectattr('failed') | map(attribute='item') | list}
                     | to_json }}"
      delegate_to: localhost
"""


def measure(argv):
    """``--measure FILE -- CMD...``: run CMD, append its peak RSS (KiB) and last argument to FILE, exit as it did."""
    out, cmd = argv[0], argv[2:]
    proc = subprocess.Popen(cmd)
    _pid, status, usage = os.wait4(proc.pid, 0)
    with open(out, "a") as f:
        f.write("%d %s\n" % (usage.ru_maxrss, os.path.basename(cmd[-1]) if cmd else "-"))
    return os.waitstatus_to_exitcode(status)


def catalog_endpoints():
    from lab.collection import collections_root
    sys.path.insert(0, collections_root())
    from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
    from ansible_collections.mdmops.apple.plugins.module_utils._probe import concrete_name
    seen, out, wildcards = set(), [], []
    for ep in load_bundled().select(services=["all"]).endpoints():
        if ep["protocol"] != "tcp":
            continue
        name = concrete_name(ep["host"])
        if not name or (name, ep["port"]) in seen:
            continue
        seen.add((name, ep["port"]))
        out.append({"host": name, "port": ep["port"]})
        if ep["host"].startswith("*.") and (ep["host"], ep["port"]) not in wildcards:
            wildcards.append((ep["host"], ep["port"]))
    return out, wildcards


def endpoint_list(count):
    """``count`` endpoints: the catalog's TCP endpoints, then more names its wildcards cover."""
    base, wildcards = catalog_endpoints()
    out = list(base[:count])
    k = 1
    while len(out) < count:
        for host, port in wildcards:
            if len(out) == count:
                break
            out.append({"host": "bench%d.%s" % (k, host[2:]), "port": port})
        k += 1
    return out


def pick_blackholed(endpoints, share, others=()):
    """Names to blackhole so that ``share`` of ``endpoints`` (every endpoint of a chosen name) time out.

    A name is never one under which another probed name lies (the lab DNS answers a name and everything
    below it), and names also probed in ``others`` are left alone.
    """
    target = int(round(len(endpoints) * share))
    by_name = {}
    for ep in endpoints:
        by_name.setdefault(ep["host"], []).append(ep)
    everyone = {ep["host"] for ep in endpoints} | {ep["host"] for ep in others}
    taken = {ep["host"] for ep in others}
    chosen, count = [], 0
    order = [ep["host"] for i, ep in enumerate(endpoints) if i % 5 == 4] + [ep["host"] for ep in endpoints]
    for name in order:
        if count == target:
            break
        if name in chosen or name in taken or count + len(by_name[name]) > target:
            continue
        if any(other != name and other.endswith("." + name) for other in everyone):
            continue
        chosen.append(name)
        count += len(by_name[name])
    return chosen, count


def play(path, inventory, extra):
    from lab.collection import collections_root
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections_root(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, path,
           "-e", "@" + extra]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (path, proc.stdout[-4000:] + proc.stderr[-2000:]))
    return elapsed


def peaks(path, module):
    """Peak RSS (MiB) of each run of ``module`` recorded in ``path``, then the file is emptied."""
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                kib, name = line.split(" ", 1)
                if module in name:
                    out.append(int(kib) / 1024.0)
        os.unlink(path)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--measure"]:
        return measure(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoints", type=int, default=100, help="TCP endpoints probed by both (default 100)")
    ap.add_argument("--scale", type=int, default=None,
                    help="endpoints of the memory run (push_connectivity only; default 4 x --endpoints, 0: none)")
    ap.add_argument("--timeout", type=int, default=2, help="seconds, the same for both (default 2)")
    ap.add_argument("--concurrency", type=int, default=None, help="push_connectivity concurrency (default: its own)")
    ap.add_argument("--prefix", default=os.environ.get("MDMOPS_LAB_PREFIX") or "mdmbench", help="lab prefix")
    args = ap.parse_args(argv)
    scale = 4 * args.endpoints if args.scale is None else args.scale
    if not 10 <= args.endpoints <= 2000 or not (scale == 0 or args.endpoints < scale <= 8000) \
            or not 1 <= args.timeout <= 30:
        ap.error("--endpoints 10-2000, --scale 0 or more than --endpoints (at most 8000), --timeout 1-30")

    from lab.listeners import BLACKHOLE_ADDRESS
    from lab.netns import Lab
    lab = Lab(args.prefix)
    was_up = lab.is_up()
    lab.up()
    with open(lab.path("records.json")) as f:
        records_before = json.load(f)["extra"]
    work = tempfile.mkdtemp(prefix="mdmops-push-bench-")
    try:
        everything = endpoint_list(max(scale, args.endpoints))
        main_eps, extra_eps = everything[:args.endpoints], everything[args.endpoints:]
        holes, held = pick_blackholed(main_eps, 0.2, others=extra_eps)
        more, more_held = pick_blackholed(extra_eps, 0.2, others=main_eps) if scale else ([], 0)
        lab.add_records(dict((name, [BLACKHOLE_ADDRESS, BLACKHOLE_V6]) for name in holes + more))
        lab.run("corp", ["nft", "-f", "-"], check=True, input=(
            "table inet %s {\n chain out {\n  type filter hook output priority 0;\n  ip6 daddr %s meta l4proto tcp reject with tcp reset\n }\n}\n"
            % (NFT_TABLE, BLACKHOLE_V6)))
        blackholed = set(holes + more)
        answering = [ep for ep in main_eps if ep["host"] not in blackholed]

        rss = os.path.join(work, "rss.txt")
        wrapper = os.path.join(work, "python-corp")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nexec %s %s --measure %s -- %s "$@"\n'
                    % (sys.executable, os.path.abspath(__file__), rss, lab.interpreter("corp")))
        os.chmod(wrapper, 0o700)
        inventory = os.path.join(work, "inventory.ini")
        with open(inventory, "w") as f:
            f.write("corp ansible_connection=local ansible_python_interpreter=%s\n" % wrapper)
        extra = os.path.join(work, "vars.json")
        with open(extra, "w") as f:
            json.dump({"bench_one": answering[:1], "bench_endpoints": main_eps,
                       "bench_scaled": everything[:scale] if scale else [],
                       "bench_out": os.path.join(work, "out.json")}, f)
        concurrency = "\n        concurrency: %d" % args.concurrency if args.concurrency else ""
        ours_yml, extra_yml, loop_yml = (os.path.join(work, n) for n in ("ours.yml", "extra.yml", "loop.yml"))
        with open(ours_yml, "w") as f:
            f.write(OURS % {"timeout": args.timeout, "concurrency": concurrency})
        with open(extra_yml, "w") as f:
            f.write(EXTRA % {"timeout": args.timeout, "concurrency": concurrency})
        with open(loop_yml, "w") as f:
            f.write(LOOP % {"timeout_int": args.timeout})

        print("lab %s: %d TCP endpoints (%d from the catalog's rows), %d blackholed (%s, %d names); timeout %d s"
              % (lab.prefix, len(main_eps), min(len(main_eps), len(catalog_endpoints()[0])), held,
                 BLACKHOLE_ADDRESS, len(holes), args.timeout))
        sys.stdout.flush()

        play(extra_yml, inventory, extra)
        with open(os.path.join(work, "out.json")) as f:
            side = json.load(f)
        t = [float(x) for x in side["t"]]
        fixed, scaled_task = t[1] - t[0], t[2] - t[1]
        side_mem = peaks(rss, "push_connectivity")
        ours_wall = play(ours_yml, inventory, extra)
        with open(os.path.join(work, "out.json")) as f:
            ours = json.load(f)
        ours["fixed"], ours["scaled"] = side["fixed"], side["scaled"]
        ours_task = float(ours["t"][1]) - float(ours["t"][0])
        ours_mem = peaks(rss, "push_connectivity")
        # peaks: the one-endpoint task, the N-endpoint task, the scaled task
        mem = side_mem[:1] + ours_mem[:1] + side_mem[1:2]
        loop_wall = play(loop_yml, inventory, extra)
        with open(os.path.join(work, "out.json")) as f:
            loop = json.load(f)
        loop_task = float(loop["t"][1]) - float(loop["t"][0])
        loop_mem = peaks(rss, "wait_for")

        # the runs must have seen what the lab was set up to show, or the times mean nothing
        timed_out = sorted((p["host"], p["port"]) for p in ours["ours"] if p["status"] == "timeout")
        expected = sorted((ep["host"], ep["port"]) for ep in main_eps if ep["host"] in blackholed)
        not_ok = [p for p in ours["ours"] if p["status"] not in ("ok", "timeout")]
        loop_failed = sorted((ep["host"], ep["port"]) for ep in loop["failed"])
        problems = []
        if set(ours["fixed"]) != {"ok"}:
            problems.append("the one-endpoint task found %s, not ok" % ours["fixed"])
        if timed_out != expected or not_ok or len(ours["ours"]) != len(main_eps):
            problems.append("push_connectivity: %d tcp probes, %d timeouts (expected %d), other failures %s"
                            % (len(ours["ours"]), len(timed_out), len(expected),
                               [(p["host"], p["port"], p["status"]) for p in not_ok][:5]))
        scaled_timeouts = sum(1 for p in ours["scaled"] if p["status"] == "timeout")
        if scale and (len(ours["scaled"]) != scale or scaled_timeouts != held + more_held):
            problems.append("push_connectivity at %d endpoints: %d tcp probes, %d timeouts (expected %d)"
                            % (scale, len(ours["scaled"]), scaled_timeouts, held + more_held))
        if loop_failed != expected:
            problems.append("wait_for: %d failed (expected the %d blackholed)" % (len(loop_failed), len(expected)))

        print("%-50s %8s %8s %10s" % ("", "task s", "run s", "peak MiB"))
        print("%-50s %8.2f %8s %10s" % ("push_connectivity, 1 endpoint (fixed cost)", fixed, "",
                                        "%.1f" % mem[0] if mem else "?"))
        print("%-50s %8.2f %8.2f %10s" % ("push_connectivity, %d endpoints" % len(main_eps), ours_task, ours_wall,
                                          "%.1f" % mem[1] if len(mem) > 1 else "?"))
        if scale:
            print("%-50s %8.2f %8s %10s" % ("push_connectivity, %d endpoints (%d blackholed)"
                                            % (scale, held + more_held), scaled_task, "",
                                            "%.1f" % mem[2] if len(mem) > 2 else "?"))
        print("%-50s %8.2f %8.2f %10s" % ("wait_for loop, %d endpoints" % len(main_eps), loop_task, loop_wall,
                                          "%.1f" % max(loop_mem) if loop_mem else "?"))
        ratio, wall_ratio = loop_task / ours_task, loop_wall / ours_wall
        bound = 2 * args.timeout + fixed
        print("ratio %.1fx (tasks), %.1fx (whole runs, each holding its one probing task)" % (ratio, wall_ratio))

        if ours_task > bound:
            problems.append("push_connectivity took %.2f s for %d endpoints: more than 2 x timeout + fixed cost "
                            "(%.2f s)" % (ours_task, len(main_eps), bound))
        else:
            print("target: %.2f s <= 2 x %d s + %.2f s fixed: met" % (ours_task, args.timeout, fixed))
        if ratio < RATIO_TARGET:
            problems.append("only %.1fx faster than the wait_for loop (target %.0fx)" % (ratio, RATIO_TARGET))
        else:
            print("target: %.1fx >= %.0fx faster than the wait_for loop: met" % (ratio, RATIO_TARGET))
        if scale:
            if len(mem) < 3:
                problems.append("no peak memory recorded for the push_connectivity runs (%s)" % mem)
            elif mem[2] > mem[1] * MEMORY_GROWTH:
                problems.append("memory not flat: %.1f MiB at %d endpoints, %.1f MiB at %d (more than %d%% more)"
                                % (mem[1], len(main_eps), mem[2], scale, round(100 * (MEMORY_GROWTH - 1))))
            else:
                print("target: memory flat, %.1f MiB at %d endpoints, %.1f MiB at %d: met"
                      % (mem[1], len(main_eps), mem[2], scale))
        for problem in problems:
            print("MISSED: " + problem)
        return 1 if problems else 0
    finally:
        lab.run("corp", ["nft", "delete", "table", "inet", NFT_TABLE], check=False)
        if was_up:
            lab.set_records(records_before)
        else:
            lab.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: egress_firewall
short_description: Allow exactly the Apple hosts and ports that devices and MDM servers need
version_added: 0.1.0
description:
  - Turns a selection of the Apple network catalog (Apple's article "Use Apple products on enterprise networks",
    plus the APNs provider API) into egress firewall state, on the host itself (O(hook=output), for example an
    MDM server that must reach C(api.push.apple.com)) or on a gateway in front of devices (O(hook=forward)).
  - Everything lives in objects of our own (one nftables table, or iptables chains and ipsets, or firewalld
    policies and ipsets); nothing else is read for decisions or changed. Changes are validated first and applied
    in one transaction; the state is read back and compared, so a second run with the same input changes nothing.
  - With O(default_policy=drop), everything else on the selected hook is dropped, except loopback, established
    and related connections (which keeps the management connection, also one opened before the first
    connection-tracking rule existed), DNS, ICMP and O(keep_addresses).
  - A rollback timer (O(rollback_timeout); on by default under O(default_policy=drop)) restores the previous rules
    by itself if the controller cannot confirm the change, in the spirit of community.general.iptables_state. The
    snapshot is saved and the timer armed B(before) anything changes; if either fails, nothing changes.
  - Runs on one host never interleave; a lock per backend and table (in O(state_dir)) makes a second run wait
    (O(lock_timeout)). A run takes over any rollback timer still pending for the same table and says so in
    RV(rollback.superseded).
author:
  - mdmops.apple maintainers (@mdmops)
extends_documentation_fragment:
  - mdmops.apple.catalog_selection
options:
  backend:
    description:
      - The firewall to manage. V(nftables) uses one C(inet) table; V(iptables) uses iptables/ip6tables chains with
        ipsets; V(firewalld) uses firewalld policy objects and ipsets.
    type: str
    choices: [nftables, iptables, firewalld]
    default: nftables
  state:
    description:
      - V(present) makes the firewall hold the selection; V(absent) removes every object of ours and nothing else.
    type: str
    choices: [present, absent]
    default: present
  strategy:
    description:
      - How host names become addresses.
      - V(cidr) allows the selected ports towards Apple's ranges (17.0.0.0/8 and Apple's IPv6 prefixes). It needs
        no DNS and covers wildcard names, but it is wider than the table (any Apple address on those ports), and
        hosts outside Apple's ranges (CDNs, DigiCert, Cloudflare...) are reported in RV(uncovered).
      - V(resolve) resolves each name on the managed host now and allows exactly those addresses and ports; re-run
        to refresh (CDN answers change). Wildcard names go to DNS-fed sets (see O(dns_sets)) or are reported
        in RV(uncovered).
      - V(both) combines them.
    type: str
    choices: [cidr, resolve, both]
    default: cidr
  apns_ranges:
    description:
      - With V(cidr) or V(both), allow the push hosts (C(*.push.apple.com), C(api.push.apple.com)) only towards
        Apple's narrower APNs ranges instead of all of Apple's ranges.
    type: bool
    default: false
  ip_versions:
    description: IP versions to manage.
    type: list
    elements: int
    choices: [4, 6]
    default: [4, 6]
  hook:
    description:
      - V(output) filters connections the host itself opens; V(forward) filters traffic the host routes (a
        gateway in front of a device network).
      - The old name O(path) is a deprecated alias (removed in 2.0.0).
    type: str
    choices: [output, forward]
    default: output
    aliases: [path]
    version_added: 0.2.0
  default_policy:
    description:
      - V(accept) only adds allow rules (with counters, and O(mark) if set); other traffic is left to the rest of
        the firewall.
      - V(drop) drops everything on O(hook) that the selection, O(extra) and the kept traffic do not allow. It keeps
        loopback (O(hook=output)), established and related connections (TCP sessions opened before our table
        existed too, because a TCP packet without SYN that the connection tracker has not seen is accepted; it
        cannot open a new connection), ICMP (O(allow_icmp)), DNS and O(keep_addresses).
      - V(drop) arms a rollback timer unless O(rollback_timeout=0) says otherwise (see O(rollback_timeout)).
    type: str
    choices: [accept, drop]
    default: accept
  extra:
    description:
      - More destinations to allow, each a dict with C(host) (a DNS name, resolved on the managed host) or
        C(address) (an IP or CIDR), C(ports) (list), and C(protocol) (V(tcp), V(udp) or V(both); default V(tcp)).
      - An address of an IP version that O(ip_versions) leaves out is an error, as is a network with host bits
        set (C(10.0.0.1/8)).
    type: list
    elements: dict
    default: []
  exclude:
    description:
      - Catalog endpoints to leave out, each a host name (string) or a dict with any of C(host) (a catalog host,
        wildcards included), C(port) and C(protocol).
    type: list
    elements: raw
    default: []
  keep_addresses:
    description: Addresses or networks always allowed (any port) under O(default_policy=drop), such as a management network.
    type: list
    elements: str
    default: []
  dns_servers:
    description:
      - Resolvers (addresses, or networks without host bits) that DNS (port 53) may reach under
        O(default_policy=drop). Empty allows DNS to any address.
      - Used exactly as written; C(100.64.0.1/30) is an error (host bits set), not rounded to C(100.64.0.0).
    type: list
    elements: str
    default: []
  allow_icmp:
    description: Keep ICMP and ICMPv6 (path MTU discovery, IPv6 neighbour discovery) under O(default_policy=drop).
    type: bool
    default: true
  dns_sets:
    description:
      - With V(resolve) or V(both), create one DNS-fed set per wildcard host. Your resolver fills them
        (dnsmasq C(nftset=) or C(ipset=) lines are returned in RV(dnsmasq)); entries expire after an hour.
    type: bool
    default: true
  mark:
    description:
      - Set this bit mask on allowed packets (C(meta mark | MARK)), so another table or chain with its own
        default-drop policy can accept them; see the notes.
      - A number (C(19780)) or a string in decimal or hexadecimal (C("0x4d44")), from 1 to 0xffffffff.
    type: raw
  table:
    description: Name of our nftables table (iptables chains and ipsets, firewalld objects are named after it).
    type: str
    default: mdmops_apple
  backup:
    description: Save the previous state of our objects in O(state_dir) before changing it (RV(backup_file)).
    type: bool
    default: true
  state_dir:
    description:
      - Where the lock, backups (C(<backend>-<table>.previous)) and rollback files are kept on the managed host,
        that is C(<token>.snapshot) (the state a timer restores, in the backend's own format, for example C(nft -f) input),
        C(<token>.pending) while the timer runs, then C(.confirmed), C(.superseded), C(.cancelled) or
        C(.rolled-back). Files of finished timers are pruned to the newest O(keep_snapshots) per table.
      - It must be a real directory owned by root (the user running the task) and not writable by group or
        others; it is created with mode 0700 when missing. Anything else (a symbolic link, a file, a
        world-writable directory) fails before anything changes.
    type: path
    default: /var/lib/mdmops-apple
  rollback_timeout:
    description:
      - When more than 0, restore the previous state after this many seconds unless the change is confirmed.
        The snapshot is written and the timer armed before anything changes.
      - The action plugin confirms it through a new connection right after the change (O(rollback_confirm=auto)); if the
        change cut the controller off, nobody confirms and the host rolls back by itself.
      - When not set, 120 seconds under O(default_policy=drop) (a drop policy without a timer is the one setting that
        can lock a host out for good) and 0 (no timer) otherwise. Set V(0) to opt out explicitly.
      - A running timer restores when it receives C(SIGUSR1) (its pid is in the C(.pending) file), to restore at once.
    type: int
  lock_timeout:
    description: Seconds to wait for another run on the same table (or a timer restoring) before failing.
    type: int
    default: 60
    version_added: 0.2.0
  keep_snapshots:
    description: Rollback snapshots of finished timers to keep per table in O(state_dir) (the newest ones).
    type: int
    default: 5
    version_added: 0.2.0
  rollback_confirm:
    description:
      - V(auto), the action plugin confirms as soon as it can reach the host again. V(manual), a later task confirms
        with O(confirm_token) (for example after M(mdmops.apple.network_probe) proved the path still works).
    type: str
    choices: [auto, manual]
    default: auto
  confirm_token:
    description:
      - Confirm a pending rollback (the RV(rollback.token) of an earlier run) and do nothing else. Pass the same
        O(backend), O(table) and O(state_dir) as that run.
    type: str
attributes:
  check_mode:
    support: full
    description: Computes the exact change, validates nothing with the firewall and changes nothing.
  diff_mode:
    support: full
    description: Shows our objects before and after as readable rules and set elements.
  platform:
    support: full
    platforms: posix
    description: Linux with nftables, iptables and ipset, or firewalld.
notes:
  - "Coexistence with another default-drop ruleset. In nftables every base chain on a hook sees the packet, and an
    C(accept) in one table does not override a C(drop) in another. If your own table drops egress, either let this
    module own the policy (O(default_policy=drop)) and set your chain to accept, or set O(mark) and add
    C(meta mark & MARK == MARK accept) to your chain: our chain runs first (priority filter - 10) and marks what the
    catalog allows."
  - With iptables, our chain is reached by a jump inserted at the top of OUTPUT or FORWARD; our drop (when asked) is
    the last rule of our chain, so built-in chain policies are never changed.
  - The managed host needs C(nft), or C(iptables)/C(ip6tables)/C(ipset), or C(firewall-cmd) with a running firewalld.
  - "firewalld: O(mark) works on the forward path only (firewalld cannot mark the host's own traffic); DNS-fed sets
    must be filled with dnsmasq C(nftset=) lines and are emptied by every firewalld reload; a reload also drops
    runtime-only firewalld changes."
seealso:
  - module: mdmops.apple.network_info
  - module: mdmops.apple.network_probe
  - name: Use Apple products on enterprise networks
    link: https://support.apple.com/101555
    description: Apple's article, the source of the catalog.
'''

EXAMPLES = r'''
- name: Let an MDM server reach APNs and Apple's MDM services, and nothing else
  become: true
  mdmops.apple.egress_firewall:
    services: [push_provider, device_management]
    initiators: [mdm_servers]
    default_policy: drop
    keep_addresses: [10.0.0.0/8]
    rollback_timeout: 60

- name: Gateway for a device network (every service of Apple's article)
  become: true
  mdmops.apple.egress_firewall:
    hook: forward
    services: [all]
    strategy: both
    default_policy: drop
  register: fw

- name: Feed the wildcard sets from dnsmasq
  ansible.builtin.copy:
    dest: /etc/dnsmasq.d/mdmops-apple.conf
    content: "{{ fw.dnsmasq | join('\n') }}\n"
    mode: "0644"

- name: Allow-list only, marking packets for an existing default-drop table
  mdmops.apple.egress_firewall:
    services: [device_management]
    mark: "0x4d44"

- name: Apply, check with real connections, then confirm
  block:
    - name: Apply with a manual rollback timer
      mdmops.apple.egress_firewall:
        services: [device_management, push_provider]
        default_policy: drop
        rollback_timeout: 120
        rollback_confirm: manual
      register: change
    - name: Prove push still works
      mdmops.apple.network_probe:
        services: [push_provider]
        fail_on_unreachable: true
    - name: Keep the change
      mdmops.apple.egress_firewall:
        confirm_token: "{{ change.rollback.token }}"
      when: change.rollback.token is defined

- name: Remove everything this module created
  mdmops.apple.egress_firewall:
    state: absent
'''

RETURN = r'''
backend:
  description: The backend used.
  returned: always
  type: str
  sample: nftables
rules:
  description: Our rules after the run (in check mode, as they would be), readable.
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["rule egress: ct state established,related accept  [mdmops:established:d715fd9a]"]
sets:
  description: Our sets after the run, with their number of elements.
  returned: when O(state=present)
  type: dict
  sample: {"allow_v4": 7, "allow_v6": 21}
elements:
  description: The allowed destinations, as C(network protocol port).
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["17.0.0.0/8 tcp 443", "17.0.0.0/8 tcp 5223"]
ports:
  description: The ports opened, by protocol.
  returned: when O(state=present)
  type: dict
  sample: {"tcp": [80, 443, 2197, 5223], "udp": []}
uncovered:
  description: Selected hosts the rules cannot promise to reach, with the reason.
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    host:
      description: The catalog host.
      type: str
    reason:
      description: Why it is not covered.
      type: str
  sample: [{"host": "crl3.digicert.com", "reason": "third-party host: it may resolve outside Apple's ranges"}]
dnsmasq:
  description: Lines for dnsmasq that feed the DNS-fed sets of wildcard hosts (empty without them).
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["nftset=/push.apple.com/4#inet#mdmops_apple#dyn1_v4,6#inet#mdmops_apple#dyn1_v6"]
backup_file:
  description: Where the previous state of our objects was saved.
  returned: when something changed and O(backup) is true
  type: str
rollback:
  description: The rollback timer, when O(rollback_timeout) or O(confirm_token) is used, or when this run took over pending timers.
  returned: when a timer was armed, confirmed or taken over
  type: dict
  contains:
    token:
      description: Pass it as O(confirm_token) to keep the change.
      type: str
    timeout:
      description: Seconds before the automatic restore.
      type: int
    snapshot:
      description: File on the managed host holding the state the timer restores (to restore by hand, if ever needed).
      type: str
    pending:
      description: Whether the timer is still running.
      type: bool
    status:
      description:
        - After O(confirm_token), V(confirmed), V(rolled_back) (too late, the previous state is back), V(superseded)
          (a later run took the timer over) or V(cancelled) (the change failed, nothing to restore).
        - Without a timer of its own, V(superseded) when this run stopped pending timers.
      type: str
    superseded:
      description: Tokens of pending timers of the same table that this run took over (stopped).
      type: list
      elements: str
'''

import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mdmops.apple.plugins.module_utils._argspec import catalog_selection_spec
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import CatalogError
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import FirewallError
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._rollback import RollbackError, safe_token
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._run import BACKEND_NAMES, load_backend, run


def _check(p):
    """Bounds the argument spec cannot say; returns an error message or None."""
    if p["rollback_timeout"] is not None and not 0 <= p["rollback_timeout"] <= 86400:
        return "rollback_timeout must be between 0 and 86400 seconds, got %d" % p["rollback_timeout"]
    if not 0 <= p["lock_timeout"] <= 3600:
        return "lock_timeout must be between 0 and 3600 seconds, got %d" % p["lock_timeout"]
    if not 0 <= p["keep_snapshots"] <= 1000:
        return "keep_snapshots must be between 0 and 1000, got %d" % p["keep_snapshots"]
    table = p["table"]
    if not table or not table.replace("_", "").isalnum() or not table.isascii() or len(table) > 20:
        return "table must be letters, digits and '_' (at most 20), got %r" % table
    if p["confirm_token"] is not None:
        try:
            safe_token(p["confirm_token"])
        except RollbackError as exc:
            return str(exc)
    return None


def main():
    argument_spec = catalog_selection_spec()
    argument_spec.update(
        backend=dict(type="str", default="nftables", choices=list(BACKEND_NAMES)),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        strategy=dict(type="str", default="cidr", choices=["cidr", "resolve", "both"]),
        apns_ranges=dict(type="bool", default=False),
        ip_versions=dict(type="list", elements="int", default=[4, 6], choices=[4, 6]),
        hook=dict(type="str", default="output", choices=["output", "forward"], aliases=["path"],
                  deprecated_aliases=[dict(name="path", version="2.0.0", collection_name="mdmops.apple")]),
        default_policy=dict(type="str", default="accept", choices=["accept", "drop"]),
        extra=dict(type="list", elements="dict", default=[]),
        exclude=dict(type="list", elements="raw", default=[]),
        keep_addresses=dict(type="list", elements="str", default=[]),
        dns_servers=dict(type="list", elements="str", default=[]),
        allow_icmp=dict(type="bool", default=True),
        dns_sets=dict(type="bool", default=True),
        mark=dict(type="raw"),
        table=dict(type="str", default="mdmops_apple"),
        backup=dict(type="bool", default=True),
        state_dir=dict(type="path", default="/var/lib/mdmops-apple"),
        rollback_timeout=dict(type="int"),
        lock_timeout=dict(type="int", default=60),
        keep_snapshots=dict(type="int", default=5),
        rollback_confirm=dict(type="str", default="auto", choices=["auto", "manual"]),
        confirm_token=dict(type="str", no_log=False),  # a rollback id, not a secret
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    problem = _check(module.params)
    if problem:
        module.fail_json(msg=problem, changed=False)

    def runner(argv, data=None):
        return module.run_command(argv, data=data, binary_data=True)

    def which(cmd):
        return module.get_bin_path(cmd) or shutil.which(cmd)

    try:
        backend = load_backend(module.params["backend"])(runner, module.params["table"], which=which)
        missing = backend.missing()
        if missing:
            raise FirewallError("the %s backend needs the %s command on the managed host; install it or choose "
                                "another backend" % (backend.name, missing))
        result = run(module.params, backend, check_mode=module.check_mode, which=which)
    except (FirewallError, CatalogError, RollbackError) as exc:
        module.fail_json(msg=str(exc), changed=False)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: network_probe
short_description: Check from a host that Apple's catalog hosts resolve and answer on their ports
version_added: 0.1.0
description:
  - Resolves each selected host of the Apple network catalog, then opens a TCP connection to each of its TCP ports
    and exchanges a datagram on its UDP ports, concurrently, from the managed host.
  - Each result is classified so it can be acted on, V(ok), V(dns_failed), V(refused) (a reset, a closed port or a
    firewall C(reject)), V(timeout) (silently dropped), V(unreachable) (no route, or an ICMP unreachable),
    V(blocked_locally) (the host's own firewall refused to send), V(no_answer) (UDP without a reply, which is
    inconclusive), V(skipped) (a wildcard host with no concrete name to try), V(error).
  - Wildcard hosts are probed through the concrete name each catalog row gives (RV(mdmops.apple.network_info#module:entries[].probe_name),
    for example V(1-courier.push.apple.com) for V(*.push.apple.com)); O(names) overrides those names.
author:
  - mdmops.apple maintainers (@mdmops)
extends_documentation_fragment:
  - mdmops.apple.catalog_selection
  - mdmops.apple.ip_versions
  - mdmops.apple.attributes.read_only
options:
  names:
    description:
      - "Concrete names to probe for wildcard hosts, as a mapping from the catalog host to the name,
        for example C({'*.icloud.com': 'p01-contacts.icloud.com'})."
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for each connection or UDP answer.
    type: float
    default: 3.0
  concurrency:
    description: Probes run at once (1 to 256).
    type: int
    default: 32
  ip_version:
    description:
      - Deprecated, use O(ip_versions) (V(0) is O(ip_versions=[4, 6]), V(4) is V([4]), V(6) is V([6])); when set,
        it wins over O(ip_versions).
      - With O(ip_versions=[4, 6]) each name is probed on the first address it resolves to, IPv4 or IPv6; with one
        family, on the first address of that family.
    type: int
    choices: [0, 4, 6]
  fail_on_unreachable:
    description:
      - Fail the task when any probe ends worse than V(ok), V(no_answer) or V(skipped), and when no probe ran
        at all (every selected endpoint skipped, or nothing selected), since nothing was then shown reachable.
    type: bool
    default: false
notes:
  - One result per selected endpoint; endpoints that share an address, port and protocol are probed once.
  - A TCP connection that succeeds proves the path, not the absence of HTTPS interception; later releases add TLS
    checks.
seealso:
  - module: mdmops.apple.network_info
  - module: mdmops.apple.egress_firewall
'''

EXAMPLES = r'''
- name: Can this MDM server reach APNs and the enrollment services?
  mdmops.apple.network_probe:
    initiators: [mdm_servers]
    fail_on_unreachable: true

- name: Device management reachability table from a device network
  mdmops.apple.network_probe:
    services: [device_management]
    timeout: 2
  register: probe

- name: Print it
  ansible.builtin.debug:
    var: probe.table
'''

RETURN = r'''
results:
  description: One item per selected endpoint.
  returned: always
  type: list
  elements: dict
  contains:
    service:
      description: Catalog service of the row.
      type: str
    host:
      description: Catalog host (may be a wildcard).
      type: str
    name:
      description: The name resolved (the host, or the concrete name for a wildcard; null when skipped).
      type: str
    port:
      description: Port probed.
      type: int
    protocol:
      description: V(tcp) or V(udp).
      type: str
    addresses:
      description: Addresses the name resolved to.
      type: list
      elements: str
    address:
      description: The address probed (the first one).
      type: str
    status:
      description: Outcome, see the description.
      type: str
      sample: ok
    latency_ms:
      description: Time to connect or to get the UDP answer, in milliseconds.
      type: float
    error:
      description: What went wrong, when it did.
      type: str
  sample: [{"service": "device_management", "host": "*.push.apple.com", "name": "1-courier.push.apple.com",
            "port": 5223, "protocol": "tcp", "addresses": ["17.57.146.20"], "address": "17.57.146.20",
            "status": "ok", "latency_ms": 0.4, "error": null}]
summary:
  description: Number of results by status.
  returned: always
  type: dict
  sample: {"ok": 168, "no_answer": 1, "skipped": 2}
failed_probes:
  description: The results whose status is worse than V(ok), V(no_answer) or V(skipped).
  returned: always
  type: list
  elements: dict
table:
  description: The results as fixed-width lines, for display.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mdmops.apple.plugins.module_utils._argspec import (
    catalog_selection_spec, check_ip_versions, ip_versions_spec,
)
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import (
    CatalogError, host_matches, load_bundled, select_from_params,
)
from ansible_collections.mdmops.apple.plugins.module_utils._probe import probe_all, summarise, table

BENIGN = ("ok", "no_answer", "skipped")
LEGACY_IP_VERSION = {0: [4, 6], 4: [4], 6: [6]}


def check_names(names):
    """``names``: wildcard host -> a concrete name it covers; returns an error message or None."""
    for key, value in names.items():
        if not isinstance(key, str) or not isinstance(value, str) or len(value) > 253 or len(key) > 253 \
                or not key.startswith("*.") or value.startswith("*") or not host_matches(key, value):
            return ("names: %.80r -> %.80r is not a wildcard host mapped to a name it covers "
                    "(for example '*.icloud.com': 'www.icloud.com')" % (key, value))
    return None


def main():
    argument_spec = catalog_selection_spec()
    argument_spec.update(ip_versions_spec())
    argument_spec.update(
        names=dict(type="dict", default={}),
        timeout=dict(type="float", default=3.0),
        concurrency=dict(type="int", default=32),
        ip_version=dict(type="int", choices=[0, 4, 6],
                        removed_in_version="2.0.0", removed_from_collection="mdmops.apple"),
        fail_on_unreachable=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    if not 0 < p["timeout"] <= 60:
        module.fail_json(msg="timeout must be more than 0 and at most 60 seconds, got %s" % p["timeout"])
    if not 1 <= p["concurrency"] <= 256:
        module.fail_json(msg="concurrency must be between 1 and 256, got %s" % p["concurrency"])
    problem = check_names(p["names"])
    if problem:
        module.fail_json(msg=problem)
    if p["ip_version"] is not None:
        families = LEGACY_IP_VERSION[p["ip_version"]]
    else:
        try:
            families = check_ip_versions(p["ip_versions"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    try:
        sel = select_from_params(load_bundled(), p)
    except CatalogError as exc:
        module.fail_json(msg=str(exc))
    results = probe_all(sel.endpoints(), names=p["names"], timeout=p["timeout"], concurrency=p["concurrency"],
                        ip_version=families[0] if len(families) == 1 else 0, catalog_names=sel.probe_names())
    failed = [r for r in results if r["status"] not in BENIGN]
    out = dict(changed=False, results=results, summary=summarise(results), failed_probes=failed,
               table=table(results))
    if p["fail_on_unreachable"]:
        if failed:
            module.fail_json(msg="%d of %d probes failed: %s" % (
                len(failed), len(results),
                ", ".join("%s %s/%s %s" % (r["name"] or r["host"], r["port"], r["protocol"], r["status"])
                          for r in failed[:10])), **out)
        if not any(r["status"] != "skipped" for r in results):
            module.fail_json(msg="fail_on_unreachable: no probe ran (%d endpoints selected, all skipped), so nothing "
                                 "was shown reachable; select services whose hosts can be probed, or give concrete "
                                 "names for wildcards in `names`" % len(results), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()

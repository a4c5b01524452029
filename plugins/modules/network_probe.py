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
  - Wildcard hosts are probed through a concrete name (for example V(1-courier.push.apple.com) for
    V(*.push.apple.com)); O(names) sets or overrides those names.
author:
  - mdmops.apple maintainers (@mdmops)
extends_documentation_fragment:
  - mdmops.apple.catalog_selection
options:
  hosts:
    description: Probe only rows whose host is, or whose wildcard covers, one of these names.
    type: list
    elements: str
    default: []
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
    description: Resolve and probe IPv4 only (V(4)), IPv6 only (V(6)), or the first address of either (V(0)).
    type: int
    choices: [0, 4, 6]
    default: 0
  fail_on_unreachable:
    description: Fail the task when any probe ends worse than V(ok), V(no_answer) or V(skipped).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Probing changes nothing; the module runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - One result per selected endpoint; endpoints that share an address, port and protocol are probed once.
  - A TCP connection that succeeds proves the path, not the absence of HTTPS interception; later releases add TLS
    checks.
seealso:
  - module: mdmops.apple.network_info
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
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import (
    SELECTION_ARGSPEC, CatalogError, load_bundled, select_from_params,
)
from ansible_collections.mdmops.apple.plugins.module_utils._probe import probe_all, summarise, table

BENIGN = ("ok", "no_answer", "skipped")


def main():
    argument_spec = dict(SELECTION_ARGSPEC)
    argument_spec.update(
        hosts=dict(type="list", elements="str", default=[]),
        names=dict(type="dict", default={}),
        timeout=dict(type="float", default=3.0),
        concurrency=dict(type="int", default=32),
        ip_version=dict(type="int", default=0, choices=[0, 4, 6]),
        fail_on_unreachable=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    if not 0 < p["timeout"] <= 60:
        module.fail_json(msg="timeout must be more than 0 and at most 60 seconds, got %s" % p["timeout"])
    if not 1 <= p["concurrency"] <= 256:
        module.fail_json(msg="concurrency must be between 1 and 256, got %s" % p["concurrency"])
    for key, value in p["names"].items():
        if not str(key).startswith("*.") or not isinstance(value, str) or not value.endswith(str(key)[1:]):
            module.fail_json(msg="names: %r -> %r is not a wildcard host mapped to a name it covers "
                                 "(for example '*.icloud.com': 'www.icloud.com')" % (key, value))
    try:
        sel = select_from_params(load_bundled(), p, hosts=p["hosts"])
    except CatalogError as exc:
        module.fail_json(msg=str(exc))
    results = probe_all(sel.endpoints(), names=p["names"], timeout=p["timeout"],
                        concurrency=p["concurrency"], ip_version=p["ip_version"])
    failed = [r for r in results if r["status"] not in BENIGN]
    out = dict(changed=False, results=results, summary=summarise(results), failed_probes=failed,
               table=table(results))
    if failed and p["fail_on_unreachable"]:
        module.fail_json(msg="%d of %d probes failed: %s" % (
            len(failed), len(results),
            ", ".join("%s %s/%s %s" % (r["name"] or r["host"], r["port"], r["protocol"], r["status"])
                      for r in failed[:10])), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()

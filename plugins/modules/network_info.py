#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: network_info
short_description: Apple's enterprise network hosts and ports, filtered and ready for firewalls
version_added: 0.1.0
description:
  - Returns the bundled catalog of Apple's article "Use Apple products on enterprise networks"
    (every table, every row), plus the APNs provider API that MDM servers use, filtered by service,
    platform, protocol, initiator and host.
  - Returns the views O(views) asks for, compact by default (no rows); add V(entries) for the rows with Apple's
    original cells (RV(entries[].as_written)) beside the values a firewall can use (host without URL path, port
    and host misprints corrected, C(SSH) read as TCP), every such correction explained in RV(entries[].notes).
  - With O(article_path), also compares a saved copy of Apple's article (HTML, or its text as a browser saves
    or copies it, in any of Apple's languages) with the bundled catalog and reports the rows added, removed and
    changed, and the rows it could not read.
author:
  - mdmops.apple maintainers (@mdmops)
extends_documentation_fragment:
  - mdmops.apple.catalog_selection
  - mdmops.apple.attributes.read_only
options:
  views:
    description:
      - What to return. V(services), V(entries) (the selected rows, the largest view), V(endpoints),
        V(hosts), V(wildcard_hosts), V(outside_apple_range), V(ports), V(ranges), V(counts), V(catalog);
        V(all) for every view.
      - The same names as the views of the P(mdmops.apple.network_catalog#lookup) lookup.
    type: list
    elements: str
    choices: [all, services, entries, endpoints, hosts, wildcard_hosts, outside_apple_range, ports, ranges, counts,
              catalog]
    default: [services, endpoints, hosts, wildcard_hosts, outside_apple_range, ports, ranges, counts, catalog]
    version_added: 0.2.0
  article_path:
    description:
      - Path, on the managed host, of a saved copy of Apple's article, the HTML page or its text (C(|) tables,
        tab-separated rows as browsers save text or copy a page, or one cell per line).
      - When set, RV(article_diff) reports how the page differs from the bundled catalog. Tables are read by
        column position and matched to services by the hosts they share, so any language works.
      - Must be a regular file of at most 8 MiB; a FIFO, a device, a directory or a missing file fails with a
        message saying so, as does a file with no recognisable host table.
    type: path
seealso:
  - name: Use Apple products on enterprise networks
    description: Apple's article, the source of the catalog.
    link: https://support.apple.com/101555
  - module: mdmops.apple.network_probe
  - module: mdmops.apple.egress_firewall
  - plugin: mdmops.apple.network_catalog
    plugin_type: lookup
notes:
  - The catalog travels with the module (it is data in the collection's module_utils), so the managed
    host needs no network access and no extra files.
  - C(network) is a reviewed field of each catalog row, V(apple) (expected inside Apple's ranges), V(cdn) (an
    Apple name served through a content delivery network such as Akamai; it may resolve outside Apple's ranges)
    or V(third_party) (another company's domain, such as DigiCert or Cloudflare). Apple does not publish these
    mappings, and they change; treat RV(outside_apple_range) as the names an IP-only rule set cannot promise to
    cover.
'''

EXAMPLES = r'''
- name: Everything an enrolled device needs for MDM, on macOS (the rows too)
  mdmops.apple.network_info:
    services: [device_management, device_setup]
    platforms: [macOS]
    views: [entries, endpoints, outside_apple_range]
  register: apple_net

- name: Show the host/port pairs
  ansible.builtin.debug:
    msg: "{{ apple_net.endpoints | map(attribute='host') | zip(apple_net.endpoints | map(attribute='port')) | list }}"

- name: What an MDM server must reach (APNs provider API, enrollment, Apps and Books)
  mdmops.apple.network_info:
    initiators: [mdm_servers]
  register: mdm_server_net

- name: Which selected names can an IP-only firewall rule on 17.0.0.0/8 not cover?
  ansible.builtin.debug:
    var: apple_net.outside_apple_range

- name: Did Apple change the article? Compare a saved copy with the bundled catalog
  mdmops.apple.network_info:
    article_path: /tmp/apple-enterprise-networks.html
    views: [counts]
  register: refresh
  failed_when: refresh.article_diff.differs or refresh.article_diff.problems
'''

RETURN = r'''
services:
  description: The services with at least one selected row (one per table of Apple's article, plus C(push_provider)).
  returned: when V(services) is in O(views) (default)
  type: list
  elements: dict
  contains:
    id:
      description: Stable service id, for the O(services) option.
      type: str
      sample: device_management
    title:
      description: English title of the table.
      type: str
      sample: Device management
    title_as_written:
      description: The table's heading in the article's language (empty for services that are not in the article).
      type: str
      sample: Gestion des appareils
    summary:
      description: What the table is for, in English.
      type: str
    initiators:
      description: Who opens most connections of this table.
      type: list
      elements: str
      sample: [devices]
    source:
      description: V(apple_article) for the article's tables, V(apns_guidance) for the push provider rows.
      type: str
    default:
      description: Whether V(all) selects this service.
      type: bool
    entries:
      description: Number of rows of the service in the whole catalog.
      type: int
  sample: [{"id": "device_management", "title": "Device management", "entries": 10}]
entries:
  description: The selected rows.
  returned: when V(entries) is in O(views)
  type: list
  elements: dict
  contains:
    service:
      description: Service id of the row.
      type: str
      sample: device_management
    host:
      description: Host name as a firewall or proxy can match it (lower case, no URL path); C(*.) for wildcards.
      type: str
      sample: "*.push.apple.com"
    wildcard:
      description: Whether the host is a C(*.) wildcard (it cannot be resolved once into addresses).
      type: bool
    ports:
      description: Ports a firewall opens for this row.
      type: list
      elements: int
      sample: [443, 80, 5223, 2197]
    protocols:
      description: Transport protocols (V(tcp), V(udp)).
      type: list
      elements: str
      sample: [tcp]
    platforms:
      description: Platforms Apple lists for the row; empty when Apple names none.
      type: list
      elements: str
      sample: [iOS, iPadOS, tvOS, macOS, visionOS]
    supports_proxy:
      description: What Apple's "supports proxies" column says, V(true), V(false), or V(null) when the cell is empty.
      type: bool
    network:
      description: V(apple), V(cdn) or V(third_party), a reviewed field of the row; see the notes.
      type: str
      sample: apple
    probe_name:
      description: For a wildcard row, the concrete name M(mdmops.apple.network_probe) resolves for it; null otherwise.
      type: str
      sample: 1-courier.push.apple.com
    apns_range:
      description: Whether Apple's narrower APNs ranges serve this host (what C(apns_ranges) of egress_firewall uses).
      type: bool
    since:
      description: For a row taken from a newer edition of the article than the bundled copy, when; null otherwise.
      type: str
    description:
      description: Apple's description, in the article's language (empty when Apple gives none).
      type: str
    purpose:
      description: What the host is for, in English.
      type: str
      sample: Push notifications
    initiators:
      description: Who opens the connection, V(devices), V(mdm_servers) or V(administrators).
      type: list
      elements: str
    retired:
      description: Whether Apple has retired the service (never selected unless O(include_retired)).
      type: bool
    source:
      description: V(apple_article) or V(apns_guidance).
      type: str
    notes:
      description: Corrections made to Apple's cells and other facts worth knowing, in English.
      type: list
      elements: str
    as_written:
      description: Apple's six cells exactly as written, by column position.
      type: dict
      contains:
        host:
          description: Host cell.
          type: str
          sample: www.apple.com/fr
        ports:
          description: Ports cell.
          type: str
          sample: "80, 433"
        protocol:
          description: Protocol cell.
          type: str
          sample: SSH
        platforms:
          description: Operating system cell.
          type: str
        description:
          description: Description cell.
          type: str
        proxy:
          description: Supports proxies cell.
          type: str
endpoints:
  description: One item per selected row, port and protocol.
  returned: when V(endpoints) is in O(views) (default)
  type: list
  elements: dict
  contains:
    service:
      description: Service id.
      type: str
    host:
      description: Host name (firewall form).
      type: str
    port:
      description: Port number.
      type: int
    protocol:
      description: V(tcp) or V(udp).
      type: str
  sample: [{"service": "device_management", "host": "*.push.apple.com", "port": 5223, "protocol": "tcp"}]
hosts:
  description: The distinct selected host names, sorted.
  returned: when V(hosts) is in O(views) (default)
  type: list
  elements: str
  sample: ["*.push.apple.com", "albert.apple.com"]
wildcard_hosts:
  description: The selected C(*.) wildcard hosts; a firewall covers them with a DNS-fed set or Apple's ranges.
  returned: when V(wildcard_hosts) is in O(views) (default)
  type: list
  elements: str
  sample: ["*.push.apple.com"]
outside_apple_range:
  description: Selected hosts that may resolve outside Apple's ranges, with their network class and services.
  returned: when V(outside_apple_range) is in O(views) (default)
  type: list
  elements: dict
  contains:
    host:
      description: Host name.
      type: str
    network:
      description: V(cdn) or V(third_party).
      type: str
    services:
      description: Services whose rows name the host.
      type: list
      elements: str
  sample: [{"host": "crl3.digicert.com", "network": "third_party", "services": ["certificate_validation"]}]
ports:
  description: The selected ports by protocol.
  returned: when V(ports) is in O(views) (default)
  type: dict
  contains:
    tcp:
      description: TCP ports.
      type: list
      elements: int
    udp:
      description: UDP ports.
      type: list
      elements: int
  sample: {"tcp": [22, 80, 443, 2197, 5223], "udp": [123, 443]}
ranges:
  description: Apple's address ranges, all (V(apple)) and the narrower APNs ones (V(apns)).
  returned: when V(ranges) is in O(views) (default)
  type: dict
  sample: {"apple": {"ipv4": ["17.0.0.0/8"], "ipv6": ["2620:149::/32"]}, "apns": {"ipv4": ["17.249.0.0/16"]}}
counts:
  description: Counts of the selection.
  returned: when V(counts) is in O(views) (default)
  type: dict
  contains:
    services:
      description: Services with at least one selected row.
      type: int
    entries:
      description: Selected rows.
      type: int
    endpoints:
      description: Items in RV(endpoints).
      type: int
    hosts:
      description: Distinct host names.
      type: int
    wildcard_hosts:
      description: Distinct wildcard hosts.
      type: int
    outside_apple_range:
      description: Hosts that may resolve outside Apple's ranges.
      type: int
    retired:
      description: Selected retired rows.
      type: int
  sample: {"services": 2, "entries": 20, "endpoints": 29, "hosts": 19, "wildcard_hosts": 2,
           "outside_apple_range": 0, "retired": 0}
catalog:
  description: Where the bundled catalog comes from.
  returned: when V(catalog) is in O(views) (default)
  type: dict
  contains:
    title:
      description: Title of Apple's article.
      type: str
    article:
      description: Address of the article.
      type: str
    language:
      description: Language of the copy the catalog was built from.
      type: str
    revision:
      description: Latest entry of the article's change log in that copy.
      type: str
    source_file:
      description: Path, in the collection's source tree, of that copy.
      type: str
    updated:
      description: When rows from newer editions of the article were last added (see RV(entries[].since)).
      type: str
    update_notes:
      description: Where the rows from newer editions come from.
      type: str
article_diff:
  description: How the page at O(article_path) differs from the bundled catalog (rows keyed by service and host).
  returned: when O(article_path) is set
  type: dict
  contains:
    differs:
      description: Whether any row was added, removed or changed.
      type: bool
    added:
      description: Rows on the page that the catalog lacks.
      type: list
      elements: dict
    removed:
      description: Catalog rows missing from the page.
      type: list
      elements: dict
    changed:
      description: Rows whose ports, protocols, platforms or proxy support differ, with before and after values.
      type: list
      elements: dict
    unchanged:
      description: Number of rows that match.
      type: int
    problems:
      description: Rows of the page that could not be read, with their location; a catalog host that is on the page
        but in no row that could be read is listed here, never as removed.
      type: list
      elements: str
    tables:
      description: Host tables found on the page.
      type: int
    rows:
      description: Rows read from the page.
      type: int
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mdmops.apple.plugins.module_utils._argspec import catalog_selection_spec
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import (
    CatalogError, load_bundled, select_from_params,
)
from ansible_collections.mdmops.apple.plugins.module_utils._files import FileError, read_regular

VIEWS = ("services", "entries", "endpoints", "hosts", "wildcard_hosts", "outside_apple_range", "ports", "ranges",
         "counts", "catalog")
DEFAULT_VIEWS = [v for v in VIEWS if v != "entries"]
ARTICLE_LIMIT = 8 * 1024 * 1024


def views_of(sel, catalog, wanted):
    """Only the views asked for are computed."""
    makers = {
        "services": lambda: sel.services,
        "entries": lambda: sel.entries,
        "endpoints": sel.endpoints,
        "hosts": sel.hosts,
        "wildcard_hosts": sel.wildcard_hosts,
        "outside_apple_range": sel.outside_apple_range,
        "ports": sel.ports,
        "ranges": lambda: catalog.ranges,
        "counts": sel.counts,
        "catalog": lambda: catalog.meta,
    }
    names = VIEWS if "all" in wanted else [v for v in VIEWS if v in wanted]
    return dict((name, makers[name]()) for name in names)


def main():
    argument_spec = catalog_selection_spec()
    argument_spec.update(
        views=dict(type="list", elements="str", default=list(DEFAULT_VIEWS), choices=["all"] + list(VIEWS)),
        article_path=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    catalog = load_bundled()
    try:
        sel = select_from_params(catalog, module.params)
    except CatalogError as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=False)
    result.update(views_of(sel, catalog, module.params["views"]))
    path = module.params["article_path"]
    if path:
        try:
            text = read_regular(path, option="article_path", limit=ARTICLE_LIMIT)
        except FileError as exc:
            module.fail_json(msg="%s; save Apple's article as HTML or text and give that file" % exc)
        from ansible_collections.mdmops.apple.plugins.module_utils._catalog_parse import refresh_report
        try:
            result["article_diff"] = refresh_report(text, catalog, source="article_path %s" % path)
        except CatalogError as exc:
            module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

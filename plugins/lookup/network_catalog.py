# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
name: network_catalog
short_description: Read Apple's enterprise network catalog in playbooks and templates
version_added: 0.1.0
description:
  - Returns a view of the bundled Apple network catalog (the tables of Apple's article "Use Apple products on
    enterprise networks", plus the APNs provider API), filtered like M(mdmops.apple.network_info), on the
    controller, without a task.
  - Handy for templates (proxy allow lists, PAC files) and for feeding other vendors' modules.
  - The selection options are those of M(mdmops.apple.network_info), checked by the same code with the same
    messages (an unknown service, an empty O(services) list, a value that is not a list of names all fail).
author:
  - mdmops.apple maintainers (@mdmops)
extends_documentation_fragment:
  - mdmops.apple.catalog_selection
options:
  _terms:
    description:
      - The view to return, one per term. V(endpoints) (one dict per host, port and protocol), V(entries) (the rows),
        V(hosts) (distinct names), V(wildcard_hosts), V(outside_apple_range), V(ports) (ports by protocol),
        V(ranges) (Apple's IPv4 and IPv6 ranges), V(apns_ranges) (the narrower APNs ranges), V(services), V(counts).
    required: true
    type: list
    elements: str
notes:
  - With one term whose view is a list (V(hosts), V(endpoints)...), that list is the result, so C(query) returns
    it as is; with several terms, the result has one item per term.
  - The view names are those of the O(mdmops.apple.network_info#module:views) option of M(mdmops.apple.network_info),
    plus V(apns_ranges).
seealso:
  - module: mdmops.apple.network_info
'''

EXAMPLES = r'''
- name: Host names for a proxy allow list (no HTTPS inspection for these)
  ansible.builtin.debug:
    msg: "{{ query('mdmops.apple.network_catalog', 'hosts', services=['device_management', 'push_provider']) }}"

- name: The ports devices need, by protocol
  ansible.builtin.debug:
    msg: "{{ lookup('mdmops.apple.network_catalog', 'ports', initiators=['devices']) }}"

- name: Address objects for another firewall vendor's collection
  ansible.builtin.set_fact:
    apple_ranges: "{{ lookup('mdmops.apple.network_catalog', 'ranges') }}"
'''

RETURN = r'''
_raw:
  description: The requested view (a single list view is returned as the list itself), or one item per term.
  type: list
  elements: raw
'''

from ansible.errors import AnsibleLookupError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.lookup import LookupBase
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import (
    SELECTION_KEYS, CatalogError, load_bundled, select_from_params,
)


def _view(selection, catalog, name):
    views = {
        "endpoints": selection.endpoints,
        "entries": lambda: selection.entries,
        "hosts": selection.hosts,
        "wildcard_hosts": selection.wildcard_hosts,
        "outside_apple_range": selection.outside_apple_range,
        "ports": selection.ports,
        "ranges": catalog.apple_networks,
        "apns_ranges": lambda: catalog.apple_networks(apns_only=True),
        "services": lambda: selection.services,
        "counts": selection.counts,
    }
    if not isinstance(name, str) or name not in views:
        raise AnsibleLookupError("mdmops.apple.network_catalog: unknown view %.80r; use one of %s"
                                 % (name, ", ".join(sorted(views))))
    return views[name]()


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        if "include_retired" in kwargs:
            # the option parser reads any unknown word as false; a module would refuse it, so do we
            try:
                boolean(kwargs["include_retired"], strict=True)
            except TypeError:
                raise AnsibleLookupError("mdmops.apple.network_catalog: include_retired must be true or false, got %.80r"
                                         % (kwargs["include_retired"],))
        self.set_options(var_options=variables, direct=kwargs)
        catalog = load_bundled()
        params = dict((key, self.get_option(key)) for key in SELECTION_KEYS)
        try:
            selection = select_from_params(catalog, params)
        except CatalogError as exc:
            raise AnsibleLookupError("mdmops.apple.network_catalog: %s" % exc)
        if not terms:
            raise AnsibleLookupError("mdmops.apple.network_catalog: name a view, for example 'hosts'")
        views = [_view(selection, catalog, term) for term in terms]
        if len(views) == 1 and isinstance(views[0], list):
            return views[0]
        return views

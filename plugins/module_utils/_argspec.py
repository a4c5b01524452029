# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument-spec builders shared by the modules, so one concept has one spelling.

Private module_utils, pure Python (plain dicts in AnsibleModule's format).
Each builder has a matching doc fragment:

- :func:`catalog_selection_spec` -> ``mdmops.apple.catalog_selection``
  (``services``, ``platforms``, ``protocols``, ``initiators``, ``hosts``,
  ``include_retired``);
- :func:`ip_versions_spec` -> ``mdmops.apple.ip_versions`` (``ip_versions``:
  a list of 4 and/or 6, as egress_firewall has it).
"""

from __future__ import annotations

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import INITIATORS, PROTOCOLS

IP_VERSIONS = (4, 6)


def catalog_selection_spec(hosts=True):
    """The catalog selection options (``hosts`` too unless ``hosts=False``)."""
    spec = {
        "services": {"type": "list", "elements": "str", "default": ["all"]},
        "platforms": {"type": "list", "elements": "str", "default": []},
        "protocols": {"type": "list", "elements": "str", "default": [], "choices": list(PROTOCOLS)},
        "initiators": {"type": "list", "elements": "str", "default": [], "choices": list(INITIATORS)},
        "include_retired": {"type": "bool", "default": False},
    }
    if hosts:
        spec["hosts"] = {"type": "list", "elements": "str", "default": []}
    return spec


def ip_versions_spec(default=None):
    """``ip_versions``: IP families to act on, a list of 4 and/or 6 (default both)."""
    return {"ip_versions": {"type": "list", "elements": "int", "choices": list(IP_VERSIONS),
                            "default": list(default or IP_VERSIONS)}}


def check_ip_versions(value):
    """Return the sorted families of ``ip_versions``, or raise ValueError with a message."""
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError("ip_versions must list 4 and/or 6, got %r" % (value,))
    out = set()
    for v in value:
        if isinstance(v, bool) or v not in IP_VERSIONS:
            raise ValueError("ip_versions must list 4 and/or 6, got %r" % (value,))
        out.add(int(v))
    return sorted(out)

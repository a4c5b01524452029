# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The IP-version option (argument spec: module_utils/_argspec.py ip_versions_spec()).
    DOCUMENTATION = r'''
options:
  ip_versions:
    description:
      - IP families to act on, V(4) and/or V(6). Both by default.
    type: list
    elements: int
    choices: [4, 6]
    default: [4, 6]
'''

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The attributes block of modules that only read (info and check modules).
    READ_ONLY = r'''
attributes:
  check_mode:
    support: full
    description: The module changes nothing; it runs the same in check mode and reports C(changed=false).
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
'''

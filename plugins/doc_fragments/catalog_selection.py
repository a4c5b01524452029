# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Options that select rows of the Apple network catalog
    # (argument spec: module_utils/_argspec.py catalog_selection_spec()).
    DOCUMENTATION = r'''
options:
  services:
    description:
      - Catalog services (one per table of Apple's article, plus C(push_provider)) to select.
      - V(all) selects every service. Groups are accepted too, V(abm_asm) (both Apple Business and School
        Manager tables) and V(content_caching) (server and clients).
      - The service ids are listed in the README and returned by M(mdmops.apple.network_info) as RV(ignore:services).
      - An unknown id fails with the list of valid ids. An empty list fails too (it would select nothing; write
        V(all) for every service).
    type: list
    elements: str
    default: [all]
  platforms:
    description:
      - Keep rows that Apple lists for at least one of these platforms
        (V(iOS), V(iPadOS), V(tvOS), V(watchOS), V(macOS), V(visionOS); case does not matter).
      - Rows that name no platform (hosts used from any web browser, such as Apple Business Manager,
        and the MDM server rows) are always kept.
      - Empty means every platform.
    type: list
    elements: str
    default: []
  protocols:
    description:
      - Keep only these transport protocols. Empty means both.
    type: list
    elements: str
    choices: [tcp, udp]
    default: []
  initiators:
    description:
      - Keep rows whose connections are opened by one of these parties.
      - V(devices) are the managed Apple devices, V(mdm_servers) the MDM server (for example towards
        C(api.push.apple.com) or C(mdmenrollment.apple.com)), V(administrators) the browsers of the people who run
        Apple Business Manager, Apple School Manager or the Apple Push Certificates Portal.
      - Empty means all.
    type: list
    elements: str
    choices: [devices, mdm_servers, administrators]
    default: []
  hosts:
    description:
      - Keep only rows whose host is, or whose wildcard covers, one of these names
        (for example V(1-courier.push.apple.com) keeps the C(*.push.apple.com) rows).
      - Empty means every host.
    type: list
    elements: str
    default: []
  include_retired:
    description:
      - Include rows Apple has retired, such as the legacy binary APNs provider API on TCP 2195/2196
        (shut down on 31 March 2021). They are never selected otherwise.
    type: bool
    default: false
'''

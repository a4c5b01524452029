# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The HTTP CONNECT proxy options (argument spec: module_utils/_apns/_proxy.py PROXY_ARGSPEC,
    # checked by proxy_from_options(); mask url_secrets() in module.no_log_values first).
    DOCUMENTATION = r'''
options:
  proxy:
    description:
      - An HTTP CONNECT proxy to probe through, V(http://host:port) (IPv6 as V(http://[address]:port)); the port is
        required. V(https://) and V(socks) proxies are not supported.
      - The proxy resolves the names probed through it (each probe is one C(CONNECT name:port)).
      - Give credentials in O(proxy_username) and O(proxy_password), not in the URL (a URL holding C(user:password@)
        is refused, and what it held is masked in the task's output).
      - Results show the proxy as V(http://host:port) only.
    type: str
  proxy_username:
    description: User name for the proxy's basic authentication (C(Proxy-Authorization)); requires O(proxy).
    type: str
  proxy_password:
    description: Password for O(proxy_username). Never logged or returned.
    type: str
'''

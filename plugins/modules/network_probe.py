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
  - With O(tls=true), every TCP endpoint on a TLS port (443, 2197, 5223, 8443) gets a TLS handshake instead of a
    bare connection, with the SNI and ALPN its service uses (APNs couriers C(N-courier.push.apple.com) with SNI
    V(courier.push.apple.com) and ALPN V(apns-security-v3); V(api.push.apple.com) and V(api.sandbox.push.apple.com)
    with ALPN V(h2); any other host with SNI the host and ALPN V(h2), V(http/1.1)), and the TLS statuses V(intercepted) (the
    chain of a push host does not end at O(expected_roots), which means HTTPS inspection; the issuer found is named),
    V(untrusted) (the chain does not validate against O(ca_path)) and V(tls_failed) (handshake error, TLS alert,
    wrong or missing ALPN) join the list; a V(timeout) can then also be a handshake that got no answer.
  - With O(proxy), TCP and TLS probes go through that HTTP CONNECT proxy, as hosts that must use one do. The proxy
    resolves the names (each probe is a C(CONNECT name:port), local DNS is not used, RV(results[].addresses) stays empty
    and RV(results[].resolved_by) says V(proxy)); the TCP layer is a tunnel opened, the TLS layer a handshake inside
    the tunnel, so an inspecting proxy is reported V(intercepted), naming its CA. Its own failures are
    V(proxy_refused) (CONNECT answered with an error, e.g. C(403) from a deny rule, the proxy's status line is
    quoted), V(proxy_auth_required) (C(407), credentials missing or refused) and V(proxy_unreachable) (the proxy
    itself refused the connection, did not answer it, or has no route). When the proxy reports that I(its)
    connection to the target was refused, timed out or had no route, or that it could not resolve the name (Squid's
    C(X-Squid-Error)), the result is V(refused), V(timeout), V(unreachable) or V(dns_failed) as for a direct probe.
    A proxy that takes the connection but does not answer CONNECT within O(timeout) is V(timeout). UDP cannot cross
    an HTTP proxy, so UDP endpoints are still probed directly (O(ip_versions) then only applies to them).
  - Wildcard hosts are probed through the concrete name each catalog row gives (RV(mdmops.apple.network_info#module:entries[].probe_name),
    for example V(1-courier.push.apple.com) for V(*.push.apple.com)); O(names) overrides those names.
author:
  - mdmops.apple maintainers (@mdmops)
extends_documentation_fragment:
  - mdmops.apple.catalog_selection
  - mdmops.apple.ip_versions
  - mdmops.apple.proxy
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
  tls:
    description:
      - Run the TLS layer on every TLS port of the selection (see the description); each such result gets
        RV(results[].layer=tls) and a RV(results[].tls) record (chain, protocol version, negotiated ALPN, remedy).
      - Works without the C(cryptography) Python package. The chain is read with
        C(SSLSocket.get_unverified_chain) (Python 3.10 and later); on older Pythons only the leaf is seen, and
        interception is then judged by chain validation alone.
    type: bool
    default: false
  expected_roots:
    description:
      - Names (common name or full distinguished name, case-insensitive) of the roots the chain of a push host
        (anything under V(push.apple.com)) must end at; anything else is reported as V(intercepted).
      - Only used with O(tls=true).
      - The default holds the provider API's roots (USERTrust since February 2025, AAA Certificate Services
        before) and Apple's own roots, under which no inspection proxy can issue.
    type: list
    elements: str
    default: ['USERTrust RSA Certification Authority', 'AAA Certificate Services', 'Apple Root CA', 'Apple Root CA - G2',
              'Apple Root CA - G3']
  ca_path:
    description:
      - Trust anchors for chain validation with O(tls=true), a PEM file or an OpenSSL hashed directory; default the
        system trust store. Validation is separate from the interception check.
    type: path
  fail_on_unreachable:
    description:
      - Fail the task when any probe ends worse than V(ok), V(no_answer) or V(skipped), and when no probe ran
        at all (every selected endpoint skipped, or nothing selected), since nothing was then shown reachable.
    type: bool
    default: false
notes:
  - One result per selected endpoint; endpoints that share an address, port and protocol are probed once.
  - A TCP connection that succeeds proves the path, not the absence of HTTPS interception; use O(tls=true) for that.
  - Apple requires that the push hosts not be inspected; a V(intercepted) result says which CA re-signed them.
  - With O(proxy), each probe is one connection to the proxy and one C(CONNECT); O(timeout) bounds the connection to
    the proxy and its answer to C(CONNECT) together (then, with O(tls=true), each wait of the handshake).
  - A TLS result whose chain fails validation costs a second connection (to read the chain without verifying it).
    With O(tls=true), O(timeout) bounds the connection and each wait of the handshake.
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

- name: Push hosts, with TLS (SNI, ALPN, chain, HTTPS inspection)
  mdmops.apple.network_probe:
    services: [device_management]
    hosts: ['*.push.apple.com']
    tls: true
    fail_on_unreachable: true

- name: Print it
  ansible.builtin.debug:
    var: probe.table

- name: Push and enrollment hosts through the corporate proxy (TLS inside the tunnel shows inspection)
  mdmops.apple.network_probe:
    services: [device_management]
    protocols: [tcp]
    tls: true
    proxy: http://proxy.example.com:3128
    proxy_username: probe
    proxy_password: "{{ vault_proxy_password }}"
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
      description: The address probed (the first one); null through O(proxy) (the proxy resolved the name).
      type: str
    status:
      description: Outcome, see the description.
      type: str
      sample: ok
    latency_ms:
      description: Time to connect or to get the UDP answer, in milliseconds.
      type: float
    error:
      description: What went wrong, when it did (for TLS, the same as RV(results[].tls.detail)).
      type: str
    layer:
      description: V(tcp), V(udp) or V(tls) (a TCP endpoint on a TLS port).
      type: str
      returned: when O(tls=true)
    proxy:
      description: The proxy this probe went through (V(http://host:port), never the credentials); null for UDP
        probes, which go direct.
      type: str
      returned: when O(proxy) is set
      sample: http://proxy.example.com:3128
    resolved_by:
      description: Who resolved the name, V(proxy) (TCP and TLS probes through O(proxy)) or V(local) (UDP probes).
      type: str
      returned: when O(proxy) is set
      sample: proxy
    remedy:
      description: One line on what to do for a probe through the proxy (empty when V(ok); for TLS results the same
        as RV(results[].tls.remedy)).
      type: str
      returned: when O(proxy) is set, for TCP and TLS probes
    tls:
      description: The TLS layer's record, for results whose RV(results[].layer) is V(tls) (null otherwise, and when
        the name did not resolve).
      type: dict
      returned: when O(tls=true)
      contains:
        sni:
          description: Server name sent.
          type: str
          sample: courier.push.apple.com
        alpn_offered:
          description: ALPN protocols offered.
          type: list
          elements: str
          sample: [apns-security-v3]
        alpn:
          description: ALPN protocol the server selected (null if none).
          type: str
          sample: apns-security-v3
        tls_version:
          description: Protocol version negotiated.
          type: str
          sample: TLSv1.3
        cipher:
          description: Cipher suite negotiated.
          type: str
        chain:
          description: The certificates the server presented, leaf first.
          type: list
          elements: dict
          contains:
            subject:
              description: Subject, most specific attribute first.
              type: str
            issuer:
              description: Issuer, most specific attribute first.
              type: str
            subject_cn:
              description: Common name of the subject.
              type: str
            issuer_cn:
              description: Common name of the issuer.
              type: str
            not_before:
              description: Start of validity (ISO 8601, UTC).
              type: str
            not_after:
              description: End of validity (ISO 8601, UTC).
              type: str
            sha256:
              description: SHA-256 fingerprint of the DER certificate (hex).
              type: str
            self_signed:
              description: Whether subject and issuer are the same.
              type: bool
            parse_error:
              description: Why the certificate could not be read (the fingerprint still is); null when it was.
              type: str
        chain_source:
          description: How the chain was read, V(get_unverified_chain), V(_ssl.get_unverified_chain) or V(leaf_only).
          type: str
        root:
          description: The root the chain ends at (issuer of the top certificate, or its subject if self-signed).
          type: str
          sample: USERTrust RSA Certification Authority
        chain_verified:
          description: Whether the chain validated (with the name) against O(ca_path) or the system store;
            null when the handshake failed.
          type: bool
        verify_error:
          description: Why validation failed.
          type: str
        detail:
          description: One line on what was found; for V(intercepted) it starts with C(HTTPS inspection on).
          type: str
        remedy:
          description: One line on what to do (empty when V(ok)).
          type: str
  sample: [{"service": "device_management", "host": "*.push.apple.com", "name": "1-courier.push.apple.com",
            "port": 5223, "protocol": "tcp", "addresses": ["17.57.146.20"], "address": "17.57.146.20",
            "status": "ok", "latency_ms": 0.4, "error": null}]
remedies:
  description: For each failed TLS result (with O(proxy), each failed TCP result too), C(host:port) and its one-line
    remedy, e.g. what to exempt from HTTPS inspection and where.
  returned: when O(tls=true) or O(proxy) is set
  type: list
  elements: str
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
  description: The results as fixed-width lines, for display (with O(tls=true), the PROTO column says C(tls) for TLS results).
  returned: always
  type: list
  elements: str
'''


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.mdmops.apple.plugins.module_utils._apns._proxy import (
    PROXY_ARGSPEC, PROXY_REQUIRED_BY, proxy_from_options, url_secrets,
)
from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import DEFAULT_EXPECTED_ROOTS, ca_path_error
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
        tls=dict(type="bool", default=False),
        expected_roots=dict(type="list", elements="str",
                            default=list(DEFAULT_EXPECTED_ROOTS)),
        ca_path=dict(type="path"),
    )
    argument_spec.update(PROXY_ARGSPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, required_by=PROXY_REQUIRED_BY)
    p = module.params
    if not 0 < p["timeout"] <= 60:
        module.fail_json(msg="timeout must be more than 0 and at most 60 seconds, got %s" % p["timeout"])
    if not 1 <= p["concurrency"] <= 256:
        module.fail_json(msg="concurrency must be between 1 and 256, got %s" % p["concurrency"])
    problem = check_names(p["names"])
    if problem:
        module.fail_json(msg=problem)
    roots = [r.strip() for r in p["expected_roots"] or [] if r and r.strip()]
    if p["tls"] and not roots:
        module.fail_json(msg="expected_roots is empty: give the names of the roots push hosts must chain to "
                             "(see the default in the module documentation)")
    if p["ca_path"]:
        error = ca_path_error(p["ca_path"], load=p["tls"])
        if error:
            module.fail_json(msg=error)
    proxy = None
    if p["proxy"] is not None:
        # credentials in the URL are refused below; never echo them (the invocation included)
        module.no_log_values.update(url_secrets(p["proxy"]))
        try:
            proxy = proxy_from_options(p["proxy"], p["proxy_username"], p["proxy_password"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
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
                        ip_version=families[0] if len(families) == 1 else 0, catalog_names=sel.probe_names(),
                        tls=dict(expected_roots=roots, ca_path=p["ca_path"]) if p["tls"] else None, proxy=proxy)
    failed = [r for r in results if r["status"] not in BENIGN]
    out = dict(changed=False, results=results, summary=summarise(results), failed_probes=failed,
               table=table(results))
    if p["tls"] or proxy:
        seen = set()
        out["remedies"] = []
        for r in failed:
            key = (r["name"], r["port"])
            text = r["tls"]["remedy"] if r.get("tls") else r.get("remedy")
            if text and key not in seen:
                seen.add(key)
                out["remedies"].append("%s:%s %s: %s" % (r["name"], r["port"], r["status"], text))
    if p["fail_on_unreachable"]:
        if failed:
            inspected = [r for r in failed if r["status"] == "intercepted"]
            module.fail_json(msg="%s%d of %d probes failed: %s" % (
                inspected[0]["error"] + ". " if inspected else "", len(failed), len(results),
                ", ".join("%s %s/%s %s" % (r["name"] or r["host"], r["port"], r["protocol"], r["status"])
                          for r in failed[:10])), **out)
        if not any(r["status"] != "skipped" for r in results):
            module.fail_json(msg="fail_on_unreachable: no probe ran (%d endpoints selected, all skipped), so nothing "
                                 "was shown reachable; select services whose hosts can be probed, or give concrete "
                                 "names for wildcards in `names`" % len(results), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()

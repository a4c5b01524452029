#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: push_connectivity
short_description: Verify the Apple push path from a host, layer by layer, and say which layer is broken
version_added: 0.1.0
description:
  - Probes, from the managed host and concurrently, what Apple push notifications and device management need, one
    layer after the other for each endpoint, V(dns) (the name resolves), V(tcp) (a connection opens; V(udp) for UDP
    rows when asked), V(tls) (a handshake with the SNI and ALPN APNs uses, the chain, HTTPS interception), V(provider)
    (the APNs provider API accepts the push certificate and its topic) and V(ats) (the MDM server's URLs meet App
    Transport Security).
  - A layer runs only when the layers before it passed for that endpoint, so each problem is reported once, at the
    layer that is broken, with a one-line RV(probes[].remedy); the later layers of that endpoint are V(skipped).
  - Statuses are those of M(mdmops.apple.network_probe) (V(ok), V(dns_failed), V(refused), V(timeout),
    V(unreachable), V(blocked_locally), V(no_answer), V(skipped), V(error)), plus V(intercepted) (the chain of a push
    host does not end at O(expected_roots) - HTTPS inspection, naming the CA that re-signed it), V(untrusted),
    V(tls_failed), V(certificate_rejected), V(wrong_environment), V(topic_disallowed), V(throttled), V(apns_error),
    V(ats_failed), and through a proxy V(proxy_refused), V(proxy_auth_required), V(proxy_unreachable).
  - The provider layer sends one HTTP/2 C(POST /3/device/<dummy token>) per provider endpoint and run, with the push
    certificate as TLS client certificate and its topic as C(apns-topic); no device receives anything. APNs answering
    C(400 BadDeviceToken) proves the certificate, its environment and its topic were accepted.
  - Never changes anything (C(changed) is always false); check mode runs the same probes.
  - The result feeds the report filters as is (P(mdmops.apple.probe_report#filter), P(mdmops.apple.probe_junit#filter)
    and the other C(probe_*) filters), for example C(result | mdmops.apple.probe_junit(fail_on=[...])), with
    C(certificates=result.certificates) for the certificate expiry metric.
author:
  - mdmops.apple maintainers (@mdmops)
requirements:
  - cryptography >= 41.0 (only when a push certificate is given)
  - httpx with HTTP/2 (C(httpx[http2])) on the managed host (only for the provider layer)
extends_documentation_fragment:
  - mdmops.apple.catalog_selection
  - mdmops.apple.push_certificate_input.certificate_prefixed
  - mdmops.apple.proxy
  - mdmops.apple.attributes.read_only
options:
  services:
    description:
      - Catalog services whose rows are probed (see M(mdmops.apple.network_info) for the ids; V(all) and groups
        are accepted).
      - Default (unset), the push services, every service with a row on Apple's APNs ranges in the catalog,
        C(device_management) (C(*.push.apple.com) and the other device-management hosts) and C(push_provider)
        (C(api.push.apple.com)).
      - An empty list selects no catalog row, only O(endpoints) (and O(mdm_urls)) are then probed; with neither,
        the module fails.
      - Wildcard hosts are probed through the concrete name the catalog gives (C(1-courier.push.apple.com) for
        C(*.push.apple.com)).
      - The provider API row (C(api.push.apple.com)) is probed at the host of O(environment).
    type: list
    elements: str
    default: null
  initiators:
    description:
      - Keep catalog rows whose connections are opened by one of these parties.
      - Default (unset), V(devices) and V(mdm_servers) (the rows an administrator's browser opens are left out).
    type: list
    elements: str
    choices: [devices, mdm_servers, administrators]
    default: null
  endpoints:
    description:
      - Extra targets, probed in addition to the catalog rows (or instead of them with O(services=[])).
      - Each is a C(host:port) string (an IPv6 address in brackets, C([2001:db8::1]:443)) or a mapping with C(host)
        and C(port), and optionally C(address) (connect there instead of resolving C(host); the name still gives
        the SNI), C(service) (the label in the results, default V(endpoints)), C(protocol) (V(tcp), default, or
        V(udp)) and C(tls) (true or false, whether the tls layer runs on this port; default, on the TLS ports 443,
        2197, 5223 and 8443).
      - An endpoint whose host is C(api.push.apple.com) or C(api.sandbox.push.apple.com) on 443 or 2197 gets the
        provider layer.
    type: list
    elements: raw
    default: []
  layers:
    description:
      - Layers to run, among V(dns), V(tcp), V(udp), V(tls), V(provider) and V(ats); they always run in that order
        for each endpoint.
      - Default (unset), V(dns), V(tcp) and V(tls), plus V(provider) when a push certificate is given and V(ats) when
        O(mdm_urls) are; through O(proxy) the default leaves V(dns) out (the proxy resolves the names).
      - V(provider) needs a push certificate with its key, V(ats) needs O(mdm_urls).
      - With an explicit list that leaves V(provider) out, a certificate given is only read for RV(certificates).
      - UDP catalog rows are probed only when V(udp) is listed.
    type: list
    elements: str
    choices: [dns, tcp, udp, tls, provider, ats]
  timeout:
    description: Seconds to wait for each connection, handshake or answer (more than 0, at most 60).
    type: float
    default: 3.0
  concurrency:
    description: Endpoints probed at once (1 to 256).
    type: int
    default: 32
  environment:
    description:
      - APNs environment of the provider API probed for the catalog's provider row, V(production)
        (C(api.push.apple.com)) or V(sandbox) (C(api.sandbox.push.apple.com)). MDM push certificates are production
        certificates.
      - O(endpoints) are probed as given, each at its own environment.
    type: str
    choices: [production, sandbox]
    default: production
  expected_roots:
    description:
      - Names (common name or full distinguished name, case-insensitive) of the roots the chain of a push host
        (anything under V(push.apple.com)) must end at; anything else is reported as V(intercepted).
      - The default holds the provider API's roots (USERTrust since February 2025, AAA Certificate Services before)
        and Apple's own roots.
    type: list
    elements: str
    default: ['USERTrust RSA Certification Authority', 'AAA Certificate Services', 'Apple Root CA', 'Apple Root CA - G2',
              'Apple Root CA - G3']
  ca_path:
    description:
      - Trust anchors for chain validation (tls, provider and ats layers), a PEM file or an OpenSSL hashed directory;
        default the system trust store. Validation is separate from the interception check.
    type: path
  proxy:
    description:
      - Every tcp, tls, provider and ats probe goes through this HTTP CONNECT proxy, as hosts that must use one do;
        the tcp layer is a tunnel opened, the tls layer a handshake inside it (an inspecting proxy is V(intercepted),
        naming its CA), the provider layer a request inside it. UDP cannot cross an HTTP proxy and stays direct.
      - A proxy that refuses the tunnel is V(proxy_refused) (its status line quoted), one that wants credentials
        V(proxy_auth_required), one that cannot be reached V(proxy_unreachable); when the proxy reports that its own
        connection to the target failed, the probe has the target's status (V(refused), V(timeout),
        V(unreachable), V(dns_failed)) as the proxy saw it.
      - The default O(layers) leave V(dns) out (the proxy resolves the names); listed, it resolves locally and
        stops nothing.
  mdm_urls:
    description:
      - HTTPS URLs of the MDM server (server URL, check-in URL, enrollment URL) to check against App Transport
        Security, which Apple devices require of them, TLS 1.2 or later, forward-secret cipher suites, a certificate
        signed with SHA-256 or better with an RSA key of 2048 bits or more (ECC 256 or more), and a chain the device
        trusts (O(ca_path)). Each failed requirement is listed in RV(probes[].ats.failures).
      - Adds the V(ats) layer; these probes have RV(probes[].service=mdm_server).
    type: list
    elements: str
    default: []
  fail_on:
    description:
      - Which findings fail the task, statuses (for example V(intercepted), V(timeout), V(certificate_rejected)),
        layers (V(provider) is any failed provider probe) or V(any) (any probe that is not V(ok), V(no_answer) or
        V(skipped)).
      - Default, none, the task reports RV(ok) and never fails on findings, so pipelines choose.
      - When the task fails, its C(msg) names the findings (HTTPS inspection first) and the result is returned in full.
    type: list
    elements: str
    default: []
notes:
  - The catalog selection options O(platforms), O(protocols), O(hosts) and O(include_retired) narrow the catalog rows;
    with O(services=[]) they must not be set.
  - Endpoints that share a name, an address and a port are probed once per layer, whatever the selection repeats
    (the provider API sees at most one request per endpoint per run).
  - A TLS result whose chain fails validation costs a second connection (to read the chain without verifying it).
seealso:
  - module: mdmops.apple.network_probe
  - module: mdmops.apple.push_certificate_info
'''

EXAMPLES = r'''
- name: Can this host reach APNs and Apple's device management hosts (dns, tcp, tls)?
  mdmops.apple.push_connectivity:
  register: push

- name: From the MDM server, with the push certificate (the provider layer is added) and its MDM URL
  mdmops.apple.push_connectivity:
    initiators: [mdm_servers]
    certificate_path: /etc/nanomdm/push.pem
    privatekey_path: /etc/nanomdm/push.key
    mdm_urls: [https://mdm.example.com/mdm]
    fail_on: [intercepted, certificate_rejected, wrong_environment, topic_disallowed, refused, timeout]
  register: push

- name: Only a few endpoints, through the corporate proxy
  mdmops.apple.push_connectivity:
    services: []
    endpoints:
      - api.push.apple.com:443
      - {host: 1-courier.push.apple.com, port: 5223}
    proxy: http://proxy.example.com:3128
    fail_on: [any]

- name: JUnit for the pipeline, metrics with the certificate's expiry
  ansible.builtin.copy:
    content: "{{ push | mdmops.apple.probe_junit(fail_on=['intercepted', 'timeout']) }}"
    dest: push-junit.xml
    mode: "0644"
  delegate_to: localhost

- name: Print what to fix
  ansible.builtin.debug:
    var: push.remedies
'''

RETURN = r'''
ok:
  description: Whether every probe ended V(ok), V(no_answer) or V(skipped) (independent of O(fail_on)).
  returned: always
  type: bool
  sample: true
probes:
  description: One item per endpoint and layer (dns once per service and name, ats once per MDM URL).
  returned: always
  type: list
  elements: dict
  contains:
    service:
      description: Catalog service of the row, the C(service) of an extra endpoint (default V(endpoints)), or
        V(mdm_server) for the ats layer.
      type: str
      sample: device_management
    host:
      description: Catalog host (may be a wildcard), the endpoint's host, or the host of the MDM URL.
      type: str
      sample: '*.push.apple.com'
    name:
      description: The name probed (a wildcard's concrete name; null when a wildcard has none).
      type: str
      sample: 1-courier.push.apple.com
    address:
      description: The address probed (null when nothing was reached, or when a proxy resolved the name).
      type: str
      sample: 17.57.146.20
    port:
      description: Port probed (null for the dns layer).
      type: int
      sample: 5223
    layer:
      description: V(dns), V(tcp), V(udp), V(tls), V(provider) or V(ats).
      type: str
      sample: tls
    status:
      description: Outcome, see the description.
      type: str
      sample: ok
    latency_ms:
      description: Time the probe took, in milliseconds (null when it did not run).
      type: float
      sample: 12.5
    remedy:
      description: One line on what to do (empty when the status is V(ok) or the probe did not run).
      type: str
      sample: ''
    detail:
      description: One line on what was found; for V(intercepted) it starts with C(HTTPS inspection on); for
        V(skipped), C(not run:) and the layer that stopped it.
      type: str
    proxy:
      description: The proxy the probe went through, V(http://host:port) (never the credentials).
      type: str
      returned: when O(proxy) is set, for the tcp, tls, provider and ats layers
      sample: http://proxy.example.com:3128
    addresses:
      description: The addresses the name resolved to (dns layer only).
      type: list
      elements: str
      returned: for the dns layer
    topic:
      description: The C(apns-topic) sent (provider layer only).
      type: str
      returned: for the provider layer (not when skipped)
    environment:
      description: APNs environment of the endpoint, V(production) or V(sandbox) (provider layer only).
      type: str
      returned: for the provider layer (not when skipped)
    tls:
      description: The TLS layer's record (as in M(mdmops.apple.network_probe)'s RV(mdmops.apple.network_probe#module:results[].tls)).
      type: dict
      returned: for the tls layer (not when skipped)
      contains:
        sni:
          description: Server name sent.
          type: str
          sample: courier.push.apple.com
        alpn_offered:
          description: ALPN protocols offered.
          type: list
          elements: str
        alpn:
          description: ALPN protocol the server selected (null if none).
          type: str
        tls_version:
          description: Protocol version negotiated.
          type: str
        cipher:
          description: Cipher suite negotiated.
          type: str
        chain:
          description: The certificates the server presented, leaf first (subject, issuer, subject_cn, issuer_cn,
            not_before, not_after, sha256, self_signed, parse_error).
          type: list
          elements: dict
        chain_source:
          description: How the chain was read.
          type: str
        root:
          description: The root the chain ends at.
          type: str
          sample: USERTrust RSA Certification Authority
        chain_verified:
          description: Whether the chain validated against O(ca_path) or the system store.
          type: bool
        verify_error:
          description: Why validation failed.
          type: str
        detail:
          description: Same as RV(probes[].detail).
          type: str
        remedy:
          description: Same as RV(probes[].remedy).
          type: str
    provider:
      description: The provider layer's record.
      type: dict
      returned: for the provider layer (not when skipped)
      contains:
        http_status:
          description: HTTP status APNs answered (null when no answer came).
          type: int
          sample: 400
        reason:
          description: The C(reason) of APNs' answer.
          type: str
          sample: BadDeviceToken
        apns_id:
          description: The C(apns-id) header of the answer.
          type: str
        topic:
          description: The C(apns-topic) sent.
          type: str
        environment:
          description: V(production) or V(sandbox).
          type: str
        http_version:
          description: HTTP version of the answer.
          type: str
          sample: HTTP/2
        tls_version:
          description: TLS version of the connection.
          type: str
        root:
          description: The root the server chain ends at.
          type: str
    ats:
      description: The ats layer's record.
      type: dict
      returned: for the ats layer
      contains:
        url:
          description: The MDM URL checked.
          type: str
        checks:
          description: Each requirement (V(https), V(tls_version), V(forward_secrecy), V(signature_hash), V(key_size),
            V(trust), V(hostname), V(expiry)) mapped to V(ok), V(failed) or V(unknown) (could not be judged).
          type: dict
        failures:
          description: Each App Transport Security requirement that failed.
          type: list
          elements: dict
          contains:
            requirement:
              description: V(tls_version), V(forward_secrecy), V(signature_hash), V(key_size), V(trust), V(hostname),
                V(expiry) or V(https).
              type: str
            detail:
              description: What was found.
              type: str
            remedy:
              description: What to do.
              type: str
        tls_version:
          description: TLS version the server negotiated.
          type: str
        cipher:
          description: Cipher suite negotiated.
          type: str
        signature_hash:
          description: Hash of the leaf certificate's signature.
          type: str
        key_type:
          description: Type of the leaf's public key.
          type: str
        key_bits:
          description: Size of the leaf's public key in bits.
          type: int
        subject:
          description: Subject of the leaf certificate.
          type: str
        issuer:
          description: Issuer of the leaf certificate.
          type: str
        not_after:
          description: End of validity of the leaf (ISO 8601, UTC).
          type: str
        san:
          description: The leaf's subjectAltName entries.
          type: list
          elements: str
        http_status:
          description: HTTP status of a C(GET) of the URL's path (any answer shows the URL is served over https).
          type: int
        verify_error:
          description: Why chain validation failed.
          type: str
summary:
  description: Counts of the probes.
  returned: always
  type: dict
  contains:
    total:
      description: Number of probes.
      type: int
    ok:
      description: Probes that ended V(ok).
      type: int
    not_ok:
      description: Probes that ended worse than V(ok), V(no_answer) or V(skipped).
      type: int
    inconclusive:
      description: Probes that ended V(no_answer) or V(skipped).
      type: int
    failed:
      description: Probes that are findings of O(fail_on) (0 without it).
      type: int
    by_status:
      description: Number of probes by status.
      type: dict
      sample: {"ok": 30, "skipped": 1, "timeout": 1}
    by_layer:
      description: Number of probes by layer, then status.
      type: dict
      sample: {"tcp": {"ok": 14}, "tls": {"ok": 12}}
    by_service_layer:
      description: Number of probes by service, then layer, then status.
      type: dict
      sample: {"push_provider": {"dns": {"ok": 1}, "tcp": {"ok": 2}, "tls": {"ok": 2}}}
certificates:
  description: Facts of the push certificate given (none without one), for reports and the expiry metric; never key
    material.
  returned: always
  type: list
  elements: dict
  contains:
    topic:
      description: Push topic (the subject UID).
      type: str
      sample: com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
      sample: "2026-03-01T10:00:00Z"
    days_left:
      description: Whole days until RV(certificates[].not_after), negative once expired.
      type: int
    environment:
      description: Environment Apple's push certificate extensions mark it for, V(production), V(sandbox) or
        V(both); null when it carries neither.
      type: str
findings:
  description: The probes that are findings of O(fail_on) (empty without it).
  returned: always
  type: list
  elements: dict
remedies:
  description: For each failed probe, C(host:port layer status) and its one-line remedy (each line once).
  returned: always
  type: list
  elements: str
table:
  description: The probes as fixed-width lines, for display.
  returned: always
  type: list
  elements: str
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.mdmops.apple.plugins.module_utils._apns import _connectivity as conn
from ansible_collections.mdmops.apple.plugins.module_utils._apns._proxy import (
    PROXY_ARGSPEC, PROXY_REQUIRED_BY, proxy_from_options, url_secrets,
)
from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import DEFAULT_EXPECTED_ROOTS, ca_path_error
from ansible_collections.mdmops.apple.plugins.module_utils._argspec import catalog_selection_spec
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import CatalogError, load_bundled, select_from_params
from ansible_collections.mdmops.apple.plugins.module_utils._push._args import (
    certificate_input_constraints, certificate_input_spec, merge_constraints,
)

RENAMED = {"path": "certificate_path", "content": "certificate_content"}


def argument_spec():
    spec = catalog_selection_spec()
    spec["services"] = dict(type="list", elements="str")
    spec["initiators"] = dict(spec["initiators"], default=None)
    for name, option in certificate_input_spec(key=True, fmt=False).items():
        spec[RENAMED.get(name, name)] = option
    spec.update(PROXY_ARGSPEC)
    spec.update(
        endpoints=dict(type="list", elements="raw", default=[]),
        layers=dict(type="list", elements="str", choices=list(conn.LAYERS)),
        timeout=dict(type="float", default=3.0),
        concurrency=dict(type="int", default=32),
        environment=dict(type="str", default="production", choices=sorted(conn.ENVIRONMENTS)),
        expected_roots=dict(type="list", elements="str", default=list(DEFAULT_EXPECTED_ROOTS)),
        ca_path=dict(type="path"),
        mdm_urls=dict(type="list", elements="str", default=[]),
        fail_on=dict(type="list", elements="str", default=[]),
    )
    return spec


def constraints():
    raw = certificate_input_constraints(key=True, required=False)
    raw["mutually_exclusive"] = [tuple(RENAMED.get(n, n) for n in pair) for pair in raw["mutually_exclusive"]]
    return merge_constraints(raw, {"required_by": PROXY_REQUIRED_BY})


def selection(p, layers):
    """Catalog targets of the selection options (none with services: [])."""
    if p["services"] == []:
        given = [k for k in ("platforms", "protocols", "hosts", "initiators") if p[k]] + \
            (["include_retired"] if p["include_retired"] else [])
        if given:
            raise conn.ConnectivityError("services is empty (only endpoints are probed), so %s would select nothing: "
                                         "leave %s out, or name services" % (", ".join(given), " and ".join(given)))
        return []
    catalog = load_bundled()
    params = dict(p)
    if p["services"] is None:
        params["services"] = conn.default_services(catalog)
    if p["initiators"] is None:
        params["initiators"] = ["devices", "mdm_servers"]
    return conn.catalog_targets(select_from_params(catalog, params), p["environment"], layers)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, **constraints())
    p = module.params
    if not 0 < p["timeout"] <= 60:
        module.fail_json(msg="timeout must be more than 0 and at most 60 seconds, got %s" % p["timeout"])
    if not 1 <= p["concurrency"] <= 256:
        module.fail_json(msg="concurrency must be between 1 and 256, got %s" % p["concurrency"])
    cert_given = bool(p["certificate_path"]) or p["certificate_content"] not in (None, "")
    orphans = [k for k in ("certificate_password", "privatekey_path", "privatekey_content", "privatekey_passphrase")
               if p[k] not in (None, "")]
    if orphans and not cert_given:
        module.fail_json(msg="%s given without a push certificate: give certificate_path or certificate_content too, "
                             "or leave %s out" % (", ".join(orphans), " and ".join(orphans)))
    for url in p["mdm_urls"] or []:     # an MDM URL with user:password@ is refused; what it held is masked
        module.no_log_values.update(url_secrets(url))
    proxy_cfg = None
    if p["proxy"] is not None:
        # a URL holding user:password@ is refused, and what it held is masked in everything the task prints
        module.no_log_values.update(url_secrets(p["proxy"]))
        try:
            proxy_cfg = proxy_from_options(p["proxy"], p["proxy_username"], p["proxy_password"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    try:
        fail_on = conn.check_fail_on(p["fail_on"])
        mdm_urls = [conn.parse_mdm_url(u, i) for i, u in enumerate(p["mdm_urls"] or [])]
        layers = conn.check_layers(p["layers"], cert_given, mdm_urls, proxy_cfg is not None)
        endpoints = conn.parse_endpoints(p["endpoints"])
        targets = selection(p, layers) + conn.extra_targets(endpoints, layers)
    except (conn.ConnectivityError, CatalogError) as exc:
        module.fail_json(msg=str(exc))
    if not targets and not mdm_urls:
        module.fail_json(msg="nothing to probe: services is empty and no endpoints (or mdm_urls) are given; give "
                             "endpoints ('host:port'), or leave services unset for the push services of the catalog")
    roots = [r.strip() for r in p["expected_roots"] or [] if r and r.strip()]
    if not roots and set(layers) & {"tls", "provider"}:
        module.fail_json(msg="expected_roots is empty: give the names of the roots push hosts must chain to "
                             "(see the default in the module documentation)")
    if p["ca_path"]:
        error = ca_path_error(p["ca_path"])
        if error:
            module.fail_json(msg=error)
    certificates, cert_pem, key_pem, topic = [], None, None, None
    if cert_given:
        from ansible_collections.mdmops.apple.plugins.module_utils._push._material import (
            CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY, CertificateError,
        )
        if not HAS_CRYPTOGRAPHY:
            module.fail_json(msg=missing_required_lib("cryptography >= 41.0"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
        try:
            facts, cert_pem, key_pem = conn.certificate_facts(conn.certificate_input(p))
        except CertificateError as exc:
            module.fail_json(msg=str(exc))
        certificates.append(facts)
        topic = facts["topic"]
        if "provider" in layers and key_pem is None:
            module.fail_json(msg="the provider layer needs the push certificate's private key: give privatekey_path "
                                 "or privatekey_content (or a certificate input that holds the key), or set layers "
                                 "without provider to only read the certificate's facts")
    if "provider" in layers:
        from ansible_collections.mdmops.apple.plugins.module_utils._apns._provider import ProviderUnavailable, _import_httpx
        try:
            _import_httpx()
        except ProviderUnavailable as exc:
            module.fail_json(msg=str(exc))
    engines = conn.Engines(timeout=p["timeout"], expected_roots=roots, ca_path=p["ca_path"], proxy=proxy_cfg,
                           cert_pem=cert_pem, key_pem=key_pem, topic=topic)
    try:
        probes = conn.run(targets, layers, engines, concurrency=p["concurrency"], mdm_urls=mdm_urls,
                          proxied=proxy_cfg is not None)
    except RuntimeError as exc:   # _provider.ProviderUnavailable: httpx/h2 missing or unusable on this host
        module.fail_json(msg=str(exc))
    except Exception as exc:  # a bug: say so in one line; the traceback is in `exception` (-vvv)
        module.fail_json(msg="push_connectivity failed unexpectedly (%s: %s); please report it with the task's "
                             "options" % (type(exc).__name__, exc), exception=traceback.format_exc())
    if "provider" in layers and not any(pr["layer"] == "provider" for pr in probes):
        module.warn("a push certificate is given but no APNs provider endpoint (api.push.apple.com or "
                    "api.sandbox.push.apple.com on 443 or 2197) is selected, so the provider layer did not run; add "
                    "push_provider to services or the endpoint to endpoints")
    findings = [pr for pr in probes if conn.is_finding(pr, fail_on)]
    out = dict(changed=False, ok=not any(pr["status"] not in conn.BENIGN for pr in probes), probes=probes,
               summary=conn.summarise(probes, fail_on), certificates=certificates, findings=findings,
               remedies=conn.remedies(probes), table=conn.table(probes))
    if findings:
        module.fail_json(msg=conn.failure_message(findings, probes, fail_on), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()

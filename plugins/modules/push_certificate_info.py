#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: push_certificate_info
short_description: Inspect an Apple MDM push (APNs) certificate, in a file or in an MDM console
version_added: 0.1.0
description:
  - Reads an MDM push certificate from a file or from inline content, in PEM (certificate alone, with its key,
    or with a chain), DER or PKCS#12 form, and returns its push topic, expiry, issuer, fingerprints and key facts.
  - With O(console), also (or only) reads what an MDM console holds through its API (topic, serial, expiry, days
    left, in RV(console_certificate)), for monitoring; with a certificate given too, says whether the console holds it.
  - Optionally checks that a private key (O(privatekey_path) or O(privatekey_content), or a key inside the input)
    belongs to the certificate (RV(key_matches)), and compares the certificate with another one
    (for example the one an MDM console currently holds) to tell a renewal from a certificate issued to another
    Apple Account.
  - Never returns key material, and never changes anything.
  - Option names follow community.crypto; the former names C(password), C(compare_to_password) (deprecated) and
    C(private_key_path), C(private_key_content), C(private_key_passphrase) (aliases) are still accepted.
  - Fingerprints are colon-separated uppercase hexadecimal, like C(openssl x509 -fingerprint).
    O(expires_within_days) drives RV(expires_soon).
author:
  - mdmops.apple maintainers (@mdmops)
requirements:
  - cryptography >= 41.0
extends_documentation_fragment:
  - mdmops.apple.push_certificate_input
  - mdmops.apple.console
options:
  certificate_password:
    aliases: [password]
  console:
    description:
      - Read what this MDM console holds (see M(mdmops.apple.push_certificate) for the consoles); the connection
        options (O(url), O(api_key), ...) are used only with it, so C(module_defaults) for the action group
        C(group/mdmops.apple.consoles) can set them for every console module of a play.
      - The console's basic-auth password is given with O(api_key) here (C(password) is still the deprecated alias
        of O(certificate_password)).
      - At least one of O(path), O(content) and O(console) is required.
    type: str
    choices: [intune, micromdm, nanomdm]
  topic:
    description:
      - The push topic to read from consoles that keep one certificate per topic (NanoMDM).
      - Defaults to the topic of the certificate given with O(path) or O(content).
    type: str
  compare_to_path:
    description:
      - Path of another certificate (any supported format) to compare with, typically the certificate in use.
      - Sets RV(same_certificate_as_compared), RV(same_topic_as_compared) and RV(is_renewal_of_compared).
      - Read like O(path) (regular files only, at most 1 MiB).
    type: path
  compare_to_content:
    description:
      - The certificate to compare with, as inline content (see O(content)).
      - Mutually exclusive with O(compare_to_path).
    type: str
  compare_to_certificate_password:
    description:
      - Password of the compared certificate when it is a PKCS#12 file.
    type: str
    aliases: [compare_to_password]
  console_csr:
    description:
      - Also download the certificate signing request the console made for Apple's portal, from consoles that
        make their own and keep its private key (Intune, C(downloadApplePushNotificationCertificateSigningRequest));
        returned as RV(console_csr). A CSR holds no secret.
      - Other consoles fail with a message naming M(mdmops.apple.push_certificate_request), which makes the key
        and the request for them.
    type: bool
    default: false
  expires_within_days:
    description:
      - RV(expires_soon) is true when the certificate expires in fewer days than this (or has expired).
    type: int
    default: 30
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads (the console too).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: N/A
    details: The module changes nothing, so there is no difference to show.
notes:
  - RV(is_mdm_push) identifies the kind of certificate by its issuer name and topic; it is not a trust check.
seealso:
  - module: mdmops.apple.push_certificate_request
  - module: mdmops.apple.push_certificate
"""

EXAMPLES = r"""
- name: Inspect the push certificate in use
  mdmops.apple.push_certificate_info:
    path: /etc/nanomdm/push.pem
    privatekey_path: /etc/nanomdm/push.key
  register: push

- name: Fail when it expires within 30 days or is not an MDM push certificate
  ansible.builtin.assert:
    that:
      - push.is_mdm_push
      - not push.expires_soon
      - push.key_matches
    fail_msg: "{{ push.topic }} expires on {{ push.not_after }} ({{ push.days_remaining }} days left)"

- name: Check that a renewed certificate keeps the topic before uploading it
  mdmops.apple.push_certificate_info:
    path: "/tmp/MDM_ Example Corp_Certificate.pem"
    compare_to_path: /etc/nanomdm/push.pem
  register: renewed
  failed_when: not renewed.same_topic_as_compared

- name: What a NanoMDM server holds for a topic (monitoring)
  mdmops.apple.push_certificate_info:
    console: nanomdm
    url: https://mdm.example.com:9000
    api_key: "{{ vault_nanomdm_api_key }}"
    topic: com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
  register: held
  failed_when: not held.console_certificate.holds or held.console_certificate.expires_soon

- name: Inspect a password-protected PKCS#12 bundle
  mdmops.apple.push_certificate_info:
    path: /root/push.p12
    certificate_password: "{{ vault_push_p12_password }}"
"""

RETURN = r"""
subject:
  description: Subject of the certificate, RFC 4514 string (most significant attribute last).
  returned: when O(path) or O(content) is given
  type: str
  sample: C=US,CN=APSP:3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11,UID=com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
subject_ordered:
  description: Subject attributes as C([name, value]) pairs in certificate order.
  returned: when O(path) or O(content) is given
  type: list
  elements: list
  sample: [["UID", "com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11"], ["CN", "APSP:3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11"], ["C", "US"]]
issuer:
  description: Issuer of the certificate, RFC 4514 string.
  returned: when O(path) or O(content) is given
  type: str
  sample: C=US,O=Apple Inc.,OU=Apple Certification Authority,CN=Apple Application Integration 2 Certification Authority
issuer_ordered:
  description: Issuer attributes as C([name, value]) pairs in certificate order.
  returned: when O(path) or O(content) is given
  type: list
  elements: list
  sample: [["CN", "Apple Application Integration 2 Certification Authority"], ["OU", "Apple Certification Authority"]]
issuer_common_name:
  description: Common name of the issuer.
  returned: when O(path) or O(content) is given
  type: str
  sample: Apple Application Integration 2 Certification Authority
common_name:
  description: Common name of the subject (C(APSP:<uuid>) for an MDM push certificate).
  returned: when O(path) or O(content) is given
  type: str
  sample: APSP:3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
topic:
  description:
    - The push topic, from the subject UID attribute (OID 0.9.2342.19200300.100.1.1).
    - V(null) when the certificate has no UID attribute.
  returned: when O(path) or O(content) is given
  type: str
  sample: com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
serial_number:
  description: Serial number, decimal.
  returned: when O(path) or O(content) is given
  type: str
  sample: "1234567890123456789"
serial_number_hex:
  description: Serial number, uppercase hexadecimal without separators (like C(openssl x509 -serial)).
  returned: when O(path) or O(content) is given
  type: str
  sample: 112210F47DE98115
fingerprint_sha1:
  description: SHA-1 fingerprint of the certificate DER, colon-separated uppercase hex.
  returned: when O(path) or O(content) is given
  type: str
  sample: "9F:2B:...:1C"
fingerprint_sha256:
  description: SHA-256 fingerprint of the certificate DER, colon-separated uppercase hex.
  returned: when O(path) or O(content) is given
  type: str
  sample: "4A:7E:...:D0"
public_key_fingerprint_sha256:
  description:
    - SHA-256 of the certificate's SubjectPublicKeyInfo, colon-separated uppercase hex.
    - Equals C(public_key_fingerprint_sha256) returned by M(mdmops.apple.push_certificate_request) for the key
      whose CSR produced the certificate.
  returned: when O(path) or O(content) is given
  type: str
  sample: "0B:33:...:9E"
public_key_type:
  description: Type of the certificate's public key.
  returned: when O(path) or O(content) is given
  type: str
  sample: RSA
public_key_size:
  description: Size of the public key in bits (curve name for EC keys).
  returned: when O(path) or O(content) is given
  type: raw
  sample: 2048
signature_algorithm:
  description: Signature algorithm of the certificate.
  returned: when O(path) or O(content) is given
  type: str
  sample: sha256WithRSAEncryption
not_before:
  description: Start of validity, ISO 8601 UTC.
  returned: when O(path) or O(content) is given
  type: str
  sample: "2025-03-01T10:00:00Z"
not_after:
  description: End of validity, ISO 8601 UTC.
  returned: when O(path) or O(content) is given
  type: str
  sample: "2026-03-01T10:00:00Z"
days_remaining:
  description: Whole days until RV(not_after); negative once expired.
  returned: when O(path) or O(content) is given
  type: int
  sample: 241
expired:
  description: Whether the certificate has expired.
  returned: when O(path) or O(content) is given
  type: bool
  sample: false
not_yet_valid:
  description: Whether the certificate's validity has not begun yet (often a wrong clock).
  returned: when O(path) or O(content) is given
  type: bool
  sample: false
expires_soon:
  description: Whether the certificate expires within O(expires_within_days) days, or has already expired.
  returned: when O(path) or O(content) is given
  type: bool
  sample: false
is_mdm_push:
  description:
    - Whether the certificate looks like an MDM push certificate, that is issued by
      C(Apple Application Integration 2 Certification Authority) with a topic starting with C(com.apple.mgmt.).
  returned: when O(path) or O(content) is given
  type: bool
  sample: true
mdm_push_reasons:
  description: Why the certificate is not an MDM push certificate; empty when RV(is_mdm_push) is true.
  returned: when O(path) or O(content) is given
  type: list
  elements: str
  sample: []
input_format:
  description: Format the input was read as.
  returned: when O(path) or O(content) is given
  type: str
  sample: pem
certificates_found:
  description: Number of certificates found in the input (leaf plus chain).
  returned: when O(path) or O(content) is given
  type: int
  sample: 3
chain_subjects:
  description: Subjects of the other certificates in the input, issuers of the leaf first.
  returned: when O(path) or O(content) is given
  type: list
  elements: str
  sample: ["C=US,O=Apple Inc.,OU=Apple Certification Authority,CN=Apple Application Integration 2 Certification Authority"]
chain_verified:
  description: Whether the input holds a chain and each certificate's signature verifies with the next one's key.
  returned: when O(path) or O(content) is given
  type: bool
  sample: true
contains_private_key:
  description: Whether the input itself holds a private key (as a PKCS#12 bundle or a combined PEM does).
  returned: when O(path) or O(content) is given
  type: bool
  sample: false
key_matches:
  description: Whether the private key belongs to the certificate.
  returned: when O(privatekey_path) or O(privatekey_content) is given, or the input itself holds a readable key
  type: bool
  sample: true
private_key_type:
  description: Type and size of the private key that was checked.
  returned: when RV(key_matches) is returned
  type: str
  sample: RSA 2048
same_certificate_as_compared:
  description: Whether the certificate is the compared certificate.
  returned: when O(compare_to_path) or O(compare_to_content) is given
  type: bool
  sample: false
same_topic_as_compared:
  description: Whether both certificates carry the same push topic (a renewal under the same Apple Account).
  returned: when O(compare_to_path) or O(compare_to_content) is given
  type: bool
  sample: true
is_renewal_of_compared:
  description: Same topic, a different certificate, and a later expiry than the compared certificate.
  returned: when O(compare_to_path) or O(compare_to_content) is given
  type: bool
  sample: true
compared:
  description: Facts about the compared certificate.
  returned: when O(compare_to_path) or O(compare_to_content) is given
  type: dict
  contains:
    subject:
      description: Subject, RFC 4514 string.
      type: str
      returned: always
      sample: C=US,CN=APSP:3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11,UID=com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
    topic:
      description: Push topic.
      type: str
      returned: always
      sample: com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
    serial_number:
      description: Serial number, decimal.
      type: str
      returned: always
      sample: "1234567890123456789"
    fingerprint_sha256:
      description: SHA-256 fingerprint.
      type: str
      returned: always
      sample: "4A:7E:...:D0"
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
      returned: always
      sample: "2025-03-01T10:00:00Z"
console_certificate:
  description:
    - What the console holds (never key material).
  returned: when O(console) is given
  type: dict
  contains:
    console:
      description: The console's kind.
      type: str
      returned: always
      sample: nanomdm
    holds:
      description:
        - Whether the console holds a push certificate (for O(topic) where it keeps one per topic); V(null) when
          it cannot tell.
      type: bool
      returned: always
      sample: true
    known:
      description: Whether the console could tell what it holds (V(false) for servers without a read route).
      type: bool
      returned: always
      sample: true
    reason:
      description: Why it holds nothing or cannot tell; V(null) otherwise.
      type: str
      returned: always
      sample: null
    topic:
      description: The topic it holds.
      type: str
      returned: always
      sample: com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
    serial_number:
      description: Serial number, decimal; V(null) where its API does not say (NanoMDM).
      type: str
      returned: always
      sample: "1234567890123456789"
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
      returned: always
      sample: "2026-03-01T10:00:00Z"
    days_remaining:
      description: Whole days until RV(console_certificate.not_after); negative once expired.
      type: int
      returned: always
      sample: 241
    expired:
      description: Whether it has expired.
      type: bool
      returned: always
      sample: false
    expires_soon:
      description: Whether it expires within O(expires_within_days) days or has expired.
      type: bool
      returned: always
      sample: false
    fingerprint_sha256:
      description: SHA-256 fingerprint; V(null) where its API does not return the certificate (NanoMDM).
      type: str
      returned: always
      sample: "4A:7E:...:D0"
    apple_id:
      description: The Apple Account it records (Intune); V(null) otherwise.
      type: str
      returned: always
      sample: null
    facts:
      description: The console's own fields, as it returned them.
      type: dict
      returned: always
      sample: {"topic": "com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11", "not_after": "2026-03-01T10:00:00Z"}
    comparison:
      description: Whether the console holds the certificate given with O(path) or O(content).
      type: dict
      returned: when O(path) or O(content) is given
      contains:
        verdict:
          description: V(same), V(different) or V(unknown) (the console could not tell).
          type: str
          returned: always
          sample: same
        basis:
          description: What the verdict rests on.
          type: str
          returned: always
          sample: SHA-256 fingerprint
console_csr:
  description:
    - The console's own certificate signing request (O(console_csr)), to upload to Apple's Push Certificates
      Portal (renew the current certificate there with the Apple Account that created it).
  returned: when O(console_csr) is true
  type: dict
  contains:
    pem:
      description: The request, PEM.
      type: str
      returned: always
      sample: "-----BEGIN CERTIFICATE REQUEST-----\nMIIC...\n-----END CERTIFICATE REQUEST-----\n"
    subject:
      description: Its subject (RFC 4514).
      type: str
      returned: always
      sample: CN=Intune MDM Push
    public_key_fingerprint_sha256:
      description: SHA-256 of its public key (DER SubjectPublicKeyInfo), to match the certificate Apple issues.
      type: str
      returned: always
      sample: "9C:1B:...:77"
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import ConsoleError
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._args import (
    connect_from_params,
    console_choice_spec,
    console_connection_spec,
    csr_summary,
    url_masks,
    held_summary,
)
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import certificate_facts
from ansible_collections.mdmops.apple.plugins.module_utils._push._args import (
    certificate_input_constraints,
    certificate_input_spec,
    merge_constraints,
)
from ansible_collections.mdmops.apple.plugins.module_utils._push._facts import certificate_info
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    CertificateError,
    CertificateInput,
)


def argument_spec() -> dict:
    spec = certificate_input_spec(deprecated_aliases={"certificate_password": ["password"]})
    compare = certificate_input_spec("compare_to_", key=False, fmt=False,
                                     deprecated_aliases={"certificate_password": ["compare_to_password"]})
    spec.update(compare)
    spec["expires_within_days"] = dict(type="int", default=30)
    spec.update(console_choice_spec(required=False))
    spec.update(console_connection_spec(password=False))
    spec["topic"] = dict(type="str")
    spec["console_csr"] = dict(type="bool", default=False)
    return spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        **merge_constraints(certificate_input_constraints(required=False),
                            certificate_input_constraints("compare_to_", key=False, required=False),
                            {"required_one_of": [("path", "content", "console")]})
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography >= 41.0"), exception=CRYPTOGRAPHY_IMPORT_ERROR)

    params = module.params
    result, cert = {}, None
    module.no_log_values.update(url_masks(params))   # a URL with user:password@ is refused, never shown
    source = CertificateInput.from_params(params)
    if not source.given and CertificateInput.from_params(params, "compare_to_").given:
        module.fail_json(msg="compare_to_path and compare_to_content compare with the certificate given with path or "
                             "content: give one of those too")
    if source.given:
        try:
            result, warnings = certificate_info(
                source, CertificateInput.from_params(params, "compare_to_"),
                expires_within_days=params["expires_within_days"],
            )
            cert = source.load().certificate
        except CertificateError as exc:
            module.fail_json(msg=str(exc))
        for warning in warnings:
            module.warn(warning)
    if params["console_csr"] and not params["console"]:
        module.fail_json(msg="console_csr downloads the request a console made: give console (and its connection "
                             "options) too")
    if params["console"]:
        result.update(read_console(module, cert))
    module.exit_json(changed=False, **result)


def read_console(module: AnsibleModule, cert) -> dict:
    """``console_certificate`` (and ``console_csr`` when asked) of the module's result."""
    params = module.params
    try:
        console, warnings = connect_from_params(params)
    except ConsoleError as exc:
        module.fail_json(msg=str(exc), step=exc.step)
    for warning in warnings:
        module.warn(warning)
    if params["console_csr"] and not console.capabilities.can_csr:
        console.session.close()
        module.fail_json(msg="console_csr: %s does not make certificate signing requests (it takes the key with the "
                             "certificate): make the key and the request with mdmops.apple.push_certificate_request; "
                             "nothing was read" % console.title, step="csr")
    facts = certificate_facts(cert) if cert is not None else None
    out = {}
    try:
        held = console.read(params["topic"] or (facts or {}).get("topic"))
        if params["console_csr"]:
            out["console_csr"] = csr_summary(console.csr())
    except ConsoleError as exc:
        module.fail_json(msg=str(exc), step=exc.step, status=exc.status)
    finally:
        console.session.close()
    summary = held_summary(console, held, facts, params["expires_within_days"])
    if not summary["known"]:
        module.warn("%s cannot tell what it holds: %s" % (console.title, summary["reason"]))
    out["console_certificate"] = summary
    return out


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: push_certificate_request
short_description: Create the private key and CSR for an Apple MDM push certificate
version_added: 0.1.0
description:
  - Generates (or keeps) an RSA private key and a certificate signing request (CSR) to upload to the
    Apple Push Certificates Portal (U(https://identity.apple.com)), usually through your MDM vendor.
  - Optionally, with an MDM vendor certificate and its key, writes the vendor-signed request that the portal
    accepts directly (base64 of an XML plist with C(PushCertRequestCSR), C(PushCertCertificateChain) and
    C(PushCertSignature)).
  - Idempotent. An existing key is kept. An existing CSR is kept when it was made for that key with the requested
    subject. An existing signed request is kept when it holds the current CSR, its signature verifies with the
    vendor certificate and its chain is the requested one.
  - Files are written atomically (temporary file in the same directory, then rename); the private key is created
    with mode C(0600) and is never readable by others, even briefly. The CSR and the signed request get C(0644).
  - All inputs are validated before anything is written. Key material never appears in the result or the diff.
author:
  - mdmops.apple maintainers (@mdmops)
requirements:
  - cryptography >= 41.0
options:
  privatekey_path:
    description:
      - Path of the RSA private key. Created when missing; kept when present (see O(force)).
      - Must be a regular file or absent, in an existing directory; see the notes for paths.
    type: path
    required: true
    aliases: [private_key_path]
  privatekey_passphrase:
    description:
      - Passphrase to encrypt a new private key with, and to read an existing encrypted one.
      - An empty passphrase is an error (it would leave the key unencrypted); leave the option out for an
        unencrypted key.
    type: str
    aliases: [private_key_passphrase]
  privatekey_format:
    description:
      - Format of a new private key. V(pkcs8) writes C(BEGIN PRIVATE KEY); V(pkcs1) writes C(BEGIN RSA PRIVATE KEY),
        which some MDM servers (such as MicroMDM) require.
      - An existing key is never rewritten only to change its format.
    type: str
    choices: [pkcs1, pkcs8]
    default: pkcs8
  key_size:
    description:
      - Size in bits of a new RSA key.
      - Apple's push certificate requests are RSA 2048, what Apple's own tools generate; 3072 and 4096 are
        accepted for policies that require them. Any other value is an error (never silently replaced).
    type: int
    choices: [2048, 3072, 4096]
    default: 2048
  csr_path:
    description:
      - Path of the CSR (PEM). Must be a regular file or absent.
      - An existing file that holds a private key, or anything but a CSR, is not replaced unless O(force) is set.
    type: path
    required: true
  common_name:
    description:
      - Common name (CN) of the CSR subject. Apple sets the certificate's own subject; this only helps you
        recognise the request.
    type: str
  email_address:
    description:
      - E-mail address of the CSR subject.
    type: str
  organization:
    description:
      - Organization (O) of the CSR subject.
    type: str
  organizational_unit:
    description:
      - Organizational unit (OU) of the CSR subject.
    type: str
  country:
    description:
      - Two-letter country code (C) of the CSR subject.
    type: str
  force:
    description:
      - Regenerate the private key, the CSR and the signed request even when they could be kept.
      - The old key is lost (unless O(backup) is set); if it belongs to the push certificate in use, keep a copy.
      - Also needed to replace an existing O(csr_path) or O(signed_request_path) that holds a private key or
        something else than what the module writes there.
    type: bool
    default: false
  backup:
    description:
      - Before replacing an existing file, keep a timestamped copy next to it
        (C(<file>.<pid>.<YYYY-mm-dd@HH:MM:SS>~)), created with mode C(0600) from its first byte, never over an
        existing file or through a symlink. If a backup cannot be made, nothing is written.
    type: bool
    default: false
  signed_request_path:
    description:
      - Where to write the vendor-signed request. Requires O(vendor_certificate_path) and
        O(vendor_private_key_path). Must be a regular file or absent.
    type: path
  vendor_certificate_path:
    description:
      - The MDM vendor certificate (C(mdm.cer) from the Apple Developer portal), in any format
        M(mdmops.apple.push_certificate_info) reads.
    type: path
  vendor_private_key_path:
    description:
      - The private key of the MDM vendor certificate. Must match it; otherwise the task fails and nothing is written.
    type: path
  vendor_private_key_passphrase:
    description:
      - Passphrase of the vendor private key (or password of a PKCS#12 vendor certificate). An empty passphrase is
        an error.
    type: str
  vendor_chain_path:
    description:
      - PEM file with the certificates above the vendor certificate (the Apple WWDR intermediate, then the
        Apple root), appended to C(PushCertCertificateChain).
    type: path
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: Reports what would change and writes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: Subject and public key fingerprints before and after; never key material.
notes:
  - Output paths (O(privatekey_path), O(csr_path), O(signed_request_path)) must each be a regular file or absent
    (a device such as C(/dev/null), a FIFO or a directory is refused, never replaced) and must name different
    files, none of them an input file (through symlinks and hard links too). A symlink is followed only when it
    is owned by root or the remote user in a directory nobody else can write to (or a sticky one such as C(/tmp)).
  - Every input and output is checked before anything is written; on failure nothing is changed.
  - The Apple Push Certificates Portal accepts RSA keys only.
  - To renew a push certificate, upload a new CSR with the Apple Account that created it; the renewed certificate
    keeps the topic. Check it with M(mdmops.apple.push_certificate_info) and O(mdmops.apple.push_certificate_info#module:compare_to_path).
seealso:
  - module: mdmops.apple.push_certificate_info
  - name: Apple Push Certificates Portal
    description: Where the CSR or the vendor-signed request is uploaded.
    link: https://identity.apple.com
"""

EXAMPLES = r"""
- name: Create the key and CSR for a push certificate
  mdmops.apple.push_certificate_request:
    privatekey_path: /etc/nanomdm/push.key
    csr_path: /etc/nanomdm/push.csr
    common_name: mdm.example.com
    email_address: mdm-admins@example.com
    country: US
  register: request

- name: Sign the request with our MDM vendor certificate (upload the result to identity.apple.com)
  mdmops.apple.push_certificate_request:
    privatekey_path: /etc/nanomdm/push.key
    csr_path: /etc/nanomdm/push.csr
    common_name: mdm.example.com
    signed_request_path: /etc/nanomdm/PushCertificateRequest.plist.b64
    vendor_certificate_path: /etc/mdm-vendor/mdm.cer
    vendor_private_key_path: /etc/mdm-vendor/vendor.key
    vendor_private_key_passphrase: "{{ vault_vendor_key_passphrase }}"
    vendor_chain_path: /etc/mdm-vendor/apple-wwdr-and-root.pem

- name: Start over with a new key (keep a backup of the old one)
  mdmops.apple.push_certificate_request:
    privatekey_path: /etc/nanomdm/push.key
    csr_path: /etc/nanomdm/push.csr
    force: true
    backup: true
"""

RETURN = r"""
privatekey_path:
  description: Path of the private key.
  returned: success
  type: str
  sample: /etc/nanomdm/push.key
csr_path:
  description: Path of the CSR.
  returned: success
  type: str
  sample: /etc/nanomdm/push.csr
signed_request_path:
  description: Path of the vendor-signed request, V(null) when none was requested.
  returned: success
  type: str
  sample: /etc/nanomdm/PushCertificateRequest.plist.b64
csr_subject:
  description: Subject of the CSR, RFC 4514 string (empty when no subject field was given).
  returned: success
  type: str
  sample: C=US,CN=mdm.example.com,emailAddress=mdm-admins@example.com
public_key_fingerprint_sha256:
  description:
    - SHA-256 of the key's SubjectPublicKeyInfo, colon-separated uppercase hex. The push certificate Apple issues
      for this CSR has the same value (see M(mdmops.apple.push_certificate_info)).
    - V(null) in check mode when the key does not exist yet.
  returned: success
  type: str
  sample: "0B:33:...:9E"
actions:
  description: What was (or, in check mode, would be) done to each file.
  returned: success
  type: dict
  contains:
    privatekey:
      description: One of V(keep), V(create), V(regenerate), V(fix_mode) (mode set to 0600).
      type: str
      returned: always
      sample: keep
    csr:
      description: One of V(keep), V(create), V(regenerate).
      type: str
      returned: always
      sample: create
    signed_request:
      description: One of V(none) (not requested), V(keep), V(create), V(regenerate).
      type: str
      returned: always
      sample: none
changed_files:
  description: Paths that were (or would be) written or had their mode changed.
  returned: success
  type: list
  elements: str
  sample: [/etc/nanomdm/push.csr]
changes:
  description: Why each change was (or would be) made, for humans.
  returned: success
  type: list
  elements: str
  sample: ["csr_path /etc/nanomdm/push.csr does not exist: a CSR will be generated"]
backup_files:
  description: Backups made before replacing files (with O(backup)).
  returned: when O(backup) is true
  type: list
  elements: str
  sample: [/etc/nanomdm/push.key.12345.2025-03-01@10:00:00~]
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mdmops.apple.plugins.module_utils._push._material import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    CertificateError,
)
from ansible_collections.mdmops.apple.plugins.module_utils._push._request import (
    KEY_SIZES,
    RequestSpec,
    apply_request,
    plan_request,
    request_result,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            privatekey_path=dict(type="path", required=True, aliases=["private_key_path"]),
            privatekey_passphrase=dict(type="str", no_log=True, aliases=["private_key_passphrase"]),
            privatekey_format=dict(type="str", default="pkcs8", choices=["pkcs1", "pkcs8"]),
            key_size=dict(type="int", default=2048, choices=list(KEY_SIZES)),
            csr_path=dict(type="path", required=True),
            common_name=dict(type="str"),
            email_address=dict(type="str"),
            organization=dict(type="str"),
            organizational_unit=dict(type="str"),
            country=dict(type="str"),
            force=dict(type="bool", default=False),
            backup=dict(type="bool", default=False),
            signed_request_path=dict(type="path"),
            vendor_certificate_path=dict(type="path"),
            vendor_private_key_path=dict(type="path"),
            vendor_private_key_passphrase=dict(type="str", no_log=True),
            vendor_chain_path=dict(type="path"),
        ),
        required_together=[("signed_request_path", "vendor_certificate_path", "vendor_private_key_path")],
        required_by={"vendor_chain_path": "signed_request_path",
                     "vendor_private_key_passphrase": "vendor_private_key_path"},
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography >= 41.0"), exception=CRYPTOGRAPHY_IMPORT_ERROR)

    try:
        plan = plan_request(RequestSpec.from_params(module.params))
    except CertificateError as exc:
        module.fail_json(msg=str(exc))
    for warning in plan.warnings:
        module.warn(warning)

    backups = []
    applied = False
    if plan.changed and not module.check_mode:
        try:
            backups = apply_request(plan, backup=module.params["backup"])
        except CertificateError as exc:
            module.fail_json(msg=str(exc), changed_files=plan.changed_files)
        applied = True

    result = request_result(plan, applied)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    if module.params["backup"]:
        result["backup_files"] = backups
    module.exit_json(**result)


if __name__ == "__main__":
    main()

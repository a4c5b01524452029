#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: push_certificate
short_description: Upload or renew the Apple MDM push (APNs) certificate of an MDM console, safely
version_added: 0.1.0
description:
  - Puts an MDM push certificate into an MDM console through the console's API (NanoMDM, MicroMDM, Microsoft
    Intune), in five steps that are the same for every console.
  - B(Read) what the console holds (NanoMDM keeps one certificate per topic and is read by O(expected_topic), else
    by the new certificate's topic).
  - B(Compare). When the console already holds this certificate (same SHA-256 fingerprint, else same serial and
    topic, else for NanoMDM, whose API returns only topic and expiry, same topic and expiry to the second), nothing
    is written and RV(ignore:changed) is V(false).
  - B(Guard), before any write. Every failing check is listed in one error, with what the console holds, and each
    says which option overrides it or that none does. The certificate must be an MDM push certificate (issued by
    Apple Application Integration 2 CA, topic C(com.apple.mgmt.)), valid now and for O(min_days_valid) more days,
    with its private key (unless the console keeps the key of its own request, like Intune); its topic must be
    O(expected_topic) when given and the topic the console holds (a different topic strands every enrolled device;
    O(allow_new_topic) for a deliberate move); a console that holds nothing is a first setup (O(allow_new_topic));
    no downgrade (a certificate that expires before the one the console holds).
  - B(Back up) what the console holds to O(backup_dir) (new files, mode C(0600); metadata as JSON, and the
    certificate itself where the console returns it; no console returns a private key).
  - B(Upload), then B(read back) and fail loudly (with the backup's path) when the console does not report the
    new certificate.
  - A console that cannot tell what it holds (NanoMDM up to v0.9.0, MicroMDM without C(GET /v1/config/certificate))
    needs O(expected_topic) (or O(allow_new_topic)); the certificate is then uploaded on every run, with a warning,
    and RV(ignore:changed) is V(true), never V(false) on a guess; RV(verified) is V(null).
  - Never returns or logs key material, the API key, passwords or client secrets.
author:
  - mdmops.apple maintainers (@mdmops)
requirements:
  - cryptography >= 41.0
  - httpx (on the host that talks to the console)
extends_documentation_fragment:
  - mdmops.apple.console
  - mdmops.apple.console.password
options:
  console:
    description:
      - The console's kind. V(nanomdm) (U(https://github.com/micromdm/nanomdm), C(PUT /v1/pushcert)),
        V(micromdm) (U(https://github.com/micromdm/micromdm), C(PUT /v1/config/certificate)), V(intune)
        (Microsoft Graph C(deviceManagement/applePushNotificationCertificate), OAuth2 client credentials with
        O(tenant_id), O(client_id), O(client_secret); Intune keeps the private key of the request it made, so only
        the certificate is sent and O(apple_id) is required).
      - Workspace ONE UEM, Jamf Pro, SimpleMDM and Fleet are planned on the same interface.
    type: str
    required: true
    choices: [intune, micromdm, nanomdm]
  state:
    description:
      - V(present) puts the certificate into the console.
      - V(absent) removes the push certificate where the console's API can (none of the supported ones can; it
        fails and says so, changing nothing).
    type: str
    choices: [present, absent]
    default: present
  certificate_path:
    description:
      - Path of the push certificate on the managed host (the one Apple's portal issued), PEM (alone, with its key
        or with a chain), DER or PKCS#12; the format is detected.
      - Only a regular file is read, at most 1 MiB.
      - One of O(certificate_path) and O(certificate_content) is required with O(state=present).
    type: path
  certificate_content:
    description:
      - The push certificate itself, as PEM text, or base64 of a DER certificate or of a PKCS#12 file.
      - Mutually exclusive with O(certificate_path).
    type: str
  certificate_password:
    description:
      - Password of a PKCS#12 certificate input, or passphrase of an encrypted key inside a PEM certificate input.
      - Not the console's password (O(password)).
    type: str
  privatekey_path:
    description:
      - Path of the certificate's private key (PEM or DER; PKCS#1, PKCS#8; encrypted or not; or a PKCS#12 file).
      - Without O(privatekey_path) and O(privatekey_content), a key inside the certificate input is used.
      - Required (one way or another) for V(nanomdm) and V(micromdm), which sign pushes with it; the key is sent
        unencrypted over the console's TLS connection, as their APIs require (MicroMDM in PKCS#1, converted here).
      - Ignored, with a warning, for consoles that keep the key of their own request (Intune).
    type: path
    aliases: [private_key_path]
  privatekey_content:
    description:
      - The private key as PEM text (or base64 of DER). Mutually exclusive with O(privatekey_path).
    type: str
    aliases: [private_key_content]
  privatekey_passphrase:
    description:
      - Passphrase of an encrypted private key; the key is decrypted in memory before the upload.
    type: str
    aliases: [private_key_passphrase]
  apple_id:
    description:
      - The Apple Account that created the push certificate in Apple's portal, for consoles that record it
        (required with V(intune)). Ignored by NanoMDM and MicroMDM.
    type: str
  expected_topic:
    description:
      - The push topic your devices are enrolled with (C(com.apple.mgmt.External.<uuid>); RV(certificate.topic) of
        M(mdmops.apple.push_certificate_info) on the current certificate).
      - The upload is refused unless the certificate carries it. Needed for consoles that cannot tell what they hold.
    type: str
  allow_new_topic:
    description:
      - Allow a certificate whose topic differs from the one the console holds, or a console that holds nothing
        (first setup), or a console that cannot tell what it holds and no O(expected_topic).
      - A new topic means every enrolled device must re-enroll; set it only for a first setup or a deliberate move.
    type: bool
    default: false
  min_days_valid:
    description:
      - Refuse a certificate valid for fewer days than this (an expired one is always refused).
    type: int
    default: 30
  backup_dir:
    description:
      - Directory (existing) where what the console holds is saved before it is replaced, as new files of mode
        C(0600) named C(<console>-<topic uuid>-<time>.json) (and C(.pem) when the console returns the certificate).
      - It must be a directory that only its owner (root or the user running the task) can write, or a sticky one
        such as C(/tmp); a symbolic link is followed only when a trusted user made it. It is checked before the
        console is contacted, in check mode too.
      - Nothing is uploaded when the backup cannot be written.
    type: path
attributes:
  check_mode:
    support: full
    description: Reads the console and runs every guard; reports what would be uploaded; sends nothing.
  diff_mode:
    support: full
    description: Shows the topic, serial number and expiry the console holds before and after (never key material).
notes:
  - NanoMDM and MicroMDM store what they are given without checks of their own (NanoMDM takes expired certificates
    and overwrites silently); the guards of this module are the protection.
  - A failed upload cannot be rolled back by the module (no console returns the previous private key); the guards
    and O(backup_dir) are what keep a console from being left with a wrong certificate.
  - Set the connection options once for every console module with C(module_defaults) and the action group
    C(group/mdmops.apple.consoles).
seealso:
  - module: mdmops.apple.push_certificate_info
  - module: mdmops.apple.push_certificate_request
"""

EXAMPLES = r"""
- name: Renew the push certificate of a NanoMDM server (same topic), with a backup
  mdmops.apple.push_certificate:
    console: nanomdm
    url: https://mdm.example.com:9000
    api_key: "{{ vault_nanomdm_api_key }}"
    certificate_path: "/root/MDM_ Example Corp_Certificate.pem"
    privatekey_path: /root/push.key
    expected_topic: com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
    backup_dir: /var/backups/push

- name: First setup of a MicroMDM server (it holds no certificate yet)
  mdmops.apple.push_certificate:
    console: micromdm
    url: https://micromdm.example.com
    api_key: "{{ vault_micromdm_api_key }}"
    certificate_path: /root/push.p12
    certificate_password: "{{ vault_p12_password }}"
    allow_new_topic: true

- name: Several consoles, credentials set once
  module_defaults:
    group/mdmops.apple.consoles:
      console: nanomdm
      url: "{{ nanomdm_url }}"
      api_key: "{{ vault_nanomdm_api_key }}"
      ca_path: /etc/ssl/mdm-ca.pem
  block:
    - name: What the console holds
      mdmops.apple.push_certificate_info:
        topic: "{{ push_topic }}"
      register: held

    - name: Upload the renewal (check mode shows what would change)
      mdmops.apple.push_certificate:
        certificate_path: /root/push.pem
        privatekey_path: /root/push.key
        expected_topic: "{{ push_topic }}"
      check_mode: true
      diff: true
"""

RETURN = r"""
console:
  description: The console's kind.
  returned: always
  type: str
  sample: nanomdm
uploaded:
  description: Whether the certificate was sent to the console (false in check mode and when it already held it).
  returned: success
  type: bool
  sample: true
verified:
  description:
    - V(true) when the console reports the certificate after the upload (or already held it), V(null) when it
      cannot tell (a console without a read route, or check mode before an upload).
  returned: success
  type: bool
  sample: true
comparison:
  description: Whether the console already held this certificate, and what that was decided on.
  returned: success
  type: dict
  contains:
    verdict:
      description: V(same), V(different) or V(unknown) (the console could not tell).
      type: str
      returned: success
      sample: different
    basis:
      description: What the verdict rests on (fingerprint, serial and topic, topic and expiry, or why unknown).
      type: str
      returned: success
      sample: SHA-256 fingerprint
certificate:
  description: The certificate given (never its key).
  returned: success
  type: dict
  contains:
    topic:
      description: Its push topic.
      type: str
      returned: success
      sample: com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
    serial_number:
      description: Serial number, decimal.
      type: str
      returned: success
      sample: "1234567890123456789"
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
      returned: success
      sample: "2027-03-01T10:00:00Z"
    fingerprint_sha256:
      description: SHA-256 fingerprint, colon-separated uppercase hex.
      type: str
      returned: success
      sample: "4A:7E:...:D0"
held_before:
  description:
    - What the console held before; V(null) when it held nothing (for this topic, NanoMDM).
  returned: success
  type: dict
  contains: &held
    known:
      description: Whether the console could tell what it holds; when V(false), RV(held_before.reason) says why.
      type: bool
      returned: success
      sample: true
    reason:
      description: Why the console could not tell.
      type: str
      returned: when RV(held_before.known) is false
      sample: "this NanoMDM server has no read route (GET /v1/pushcert, added after v0.9.0) ..."
    topic:
      description: The topic it holds.
      type: str
      returned: success
      sample: com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11
    serial_number:
      description: Serial number, decimal (V(null) where the console's API does not return it, NanoMDM).
      type: str
      returned: success
      sample: "1234567890123456788"
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
      returned: success
      sample: "2026-03-01T10:00:00Z"
    fingerprint_sha256:
      description: SHA-256 fingerprint (V(null) where the console's API does not return the certificate).
      type: str
      returned: success
      sample: "9F:2B:...:1C"
    apple_id:
      description: The Apple Account the console records (Intune), else V(null).
      type: str
      returned: success
      sample: null
    facts:
      description: The console's own fields, as it returned them (never key material).
      type: dict
      returned: success
      sample: {"topic": "com.apple.mgmt.External.3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11", "not_after": "2026-03-01T10:00:00Z"}
held_after:
  description:
    - What the console reports after the upload (the same as RV(held_before) when nothing was uploaded; V(null) in
      check mode when an upload would happen).
  returned: success
  type: dict
  contains: *held
backup_path:
  description: The backup file of what the console held (JSON), when one was written.
  returned: success
  type: str
  sample: /var/backups/push/nanomdm-3f1c6d2e-8a4b-4b6a-9d1e-2f7c5a9b0c11-20260301T100000.000000Z.json
refusals:
  description: Each guard that refused the certificate (the module failed; nothing was sent).
  returned: when a guard refused the certificate
  type: list
  elements: str
  sample: ["the certificate's topic com.apple.mgmt.External.b... differs from the topic the console holds, ..."]
step:
  description: The step that failed (V(connect), V(read), V(guard), V(backup), V(upload), V(read back)).
  returned: failure
  type: str
  sample: upload
status:
  description: The console's HTTP status in the failed step, when it answered.
  returned: failure
  type: int
  sample: 401
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import ConsoleError
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._args import (
    connect_from_params,
    console_choice_spec,
    console_connection_spec,
    url_masks,
)
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._module import (
    CertificateOptions,
    remove_certificate,
)
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._rotate import (
    RotationRefused,
    RotationSpec,
    rotate,
)
from ansible_collections.mdmops.apple.plugins.module_utils._files import FileError, check_output_dir
from ansible_collections.mdmops.apple.plugins.module_utils._push._args import certificate_input_spec
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    CertificateError,
)


def argument_spec() -> dict:
    cert = certificate_input_spec(fmt=False)
    spec = dict(console_choice_spec(), **console_connection_spec())
    spec.update(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        certificate_path=cert["path"],
        certificate_content=cert["content"],
        certificate_password=cert["certificate_password"],
        privatekey_path=cert["privatekey_path"],
        privatekey_content=cert["privatekey_content"],
        privatekey_passphrase=cert["privatekey_passphrase"],
        apple_id=dict(type="str"),
        expected_topic=dict(type="str"),
        allow_new_topic=dict(type="bool", default=False),
        min_days_valid=dict(type="int", default=30),
        backup_dir=dict(type="path"),
    )
    return spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[("certificate_path", "certificate_content"), ("privatekey_path", "privatekey_content")],
        required_if=[("state", "present", ("certificate_path", "certificate_content"), True)],
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography >= 41.0"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    module.no_log_values.update(url_masks(params))   # a URL with user:password@ is refused, never shown
    name = params["console"]

    def fail(exc: ConsoleError, **extra) -> None:
        module.fail_json(msg=str(exc), console=name, step=exc.step or None, status=exc.status, **extra)

    if params["min_days_valid"] < 0:
        module.fail_json(msg="min_days_valid must be 0 or more, not %d" % params["min_days_valid"], console=name)
    if params["state"] == "present" and name == "intune" and not (params["apple_id"] or "").strip():
        module.fail_json(msg="apple_id is required with console intune: the Apple Account (Managed Apple ID or Apple "
                             "ID) that created the push certificate in Apple's portal, which Intune records with it; "
                             "nothing was read or sent", console=name)
    if params["backup_dir"] is not None:
        try:
            params["backup_dir"] = check_output_dir(params["backup_dir"], "backup_dir")
        except FileError as exc:
            module.fail_json(msg="%s; nothing was read or sent" % exc, console=name)

    # the certificate first: a bad input fails before the console is contacted
    cert = key = None
    if params["state"] == "present":
        source = CertificateOptions.from_module_params(params)
        try:
            material = source.load()
            cert = material.certificate
            key = source.load_key(material)
        except CertificateError as exc:
            module.fail_json(msg=str(exc), console=name)
        for note in material.notes:
            module.warn(note)

    try:
        console, warnings = connect_from_params(params)
    except ConsoleError as exc:
        fail(exc)
    for warning in warnings:
        module.warn(warning)
    try:
        if params["state"] == "absent":
            result, diff = remove_certificate(console, params["expected_topic"], params["backup_dir"],
                                              module.check_mode)
        else:
            spec = RotationSpec(cert=cert, key=key, expected_topic=params["expected_topic"],
                                allow_new_topic=params["allow_new_topic"], min_days_valid=params["min_days_valid"],
                                apple_id=params["apple_id"], backup_dir=params["backup_dir"])
            rotation = rotate(console, spec, check_mode=module.check_mode)
            result, diff = rotation.as_dict(), rotation.diff()
    except RotationRefused as exc:
        fail(exc, refusals=list(exc.refusals),
             held_before=exc.held.as_dict() if exc.held is not None else None)
    except ConsoleError as exc:
        fail(exc)
    finally:
        console.session.close()
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()

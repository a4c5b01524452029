# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan and apply a push certificate request: private key, CSR, optional vendor-signed request.

``plan_request`` reads what exists, validates every input and decides what to
change (nothing is written, so check mode is just "plan, don't apply");
``apply_request`` then generates and writes atomically. No Ansible imports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.mdmops.apple.plugins.module_utils._certs import (
    CertificateError,
    SubjectSpec,
    build_csr,
    build_signed_request,
    check_writable,
    chain_pem_text,
    csr_der,
    csr_matches,
    csr_pem,
    file_mode,
    format_name,
    generate_rsa_key,
    key_description,
    key_matches,
    load_certificates,
    load_csr,
    load_private_key,
    not_after,
    not_expired,
    parse_signed_request,
    private_key_pem,
    public_key_fingerprint,
    read_file,
    require_rsa,
    to_bytes,
    verify_signed_request,
    write_file_atomic,
    MIN_RSA_BITS,
)

KEY_MODE = 0o600
PUBLIC_MODE = 0o644

KEEP, CREATE, REGENERATE, FIX_MODE, NONE = "keep", "create", "regenerate", "fix_mode", "none"


@dataclass
class RequestSpec:
    """What the user asked for (module parameters, already typed)."""

    privatekey_path: str
    csr_path: str
    subject: SubjectSpec = field(default_factory=SubjectSpec)
    key_size: int = MIN_RSA_BITS
    privatekey_passphrase: Optional[bytes] = None
    privatekey_format: str = "pkcs8"
    force: bool = False
    signed_request_path: Optional[str] = None
    vendor_certificate_path: Optional[str] = None
    vendor_private_key_path: Optional[str] = None
    vendor_private_key_passphrase: Optional[bytes] = None
    vendor_chain_path: Optional[str] = None

    @classmethod
    def from_params(cls, params: Dict[str, Any]) -> "RequestSpec":
        return cls(
            privatekey_path=params["privatekey_path"],
            csr_path=params["csr_path"],
            subject=SubjectSpec(common_name=params.get("common_name"), email_address=params.get("email_address"),
                                organization=params.get("organization"),
                                organizational_unit=params.get("organizational_unit"),
                                country=params.get("country")),
            key_size=params.get("key_size") or MIN_RSA_BITS,
            privatekey_passphrase=to_bytes(params.get("privatekey_passphrase")),
            privatekey_format=params.get("privatekey_format") or "pkcs8",
            force=bool(params.get("force")),
            signed_request_path=params.get("signed_request_path"),
            vendor_certificate_path=params.get("vendor_certificate_path"),
            vendor_private_key_path=params.get("vendor_private_key_path"),
            vendor_private_key_passphrase=to_bytes(params.get("vendor_private_key_passphrase")),
            vendor_chain_path=params.get("vendor_chain_path"),
        )


@dataclass
class RequestPlan:
    spec: RequestSpec
    subject: Any
    key_action: str
    csr_action: str
    signed_action: str
    key: Any = None
    csr: Any = None
    vendor_cert: Any = None
    vendor_key: Any = None
    chain: List[Any] = field(default_factory=list)
    reasons: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    before: Dict[str, Any] = field(default_factory=dict)

    @property
    def actions(self) -> Dict[str, str]:
        return {"privatekey": self.key_action, "csr": self.csr_action, "signed_request": self.signed_action}

    @property
    def changed_files(self) -> List[str]:
        files = []
        if self.key_action != KEEP:
            files.append(self.spec.privatekey_path)
        if self.csr_action != KEEP:
            files.append(self.spec.csr_path)
        if self.signed_action not in (KEEP, NONE) and self.spec.signed_request_path:
            files.append(self.spec.signed_request_path)
        return files

    @property
    def replaced_files(self) -> List[str]:
        """Existing files whose content will be replaced (candidates for a backup)."""
        return [path for path, action in ((self.spec.privatekey_path, self.key_action),
                                          (self.spec.csr_path, self.csr_action),
                                          (self.spec.signed_request_path, self.signed_action))
                if path and action == REGENERATE and os.path.exists(path)]

    @property
    def changed(self) -> bool:
        return bool(self.changed_files)


def _octal(mode: Optional[int]) -> Optional[str]:
    return None if mode is None else "%04o" % mode


def _key_facts(key: Any, path: str) -> Dict[str, Any]:
    return {"exists": True, "type": key_description(key), "public_key_fingerprint_sha256": public_key_fingerprint(key),
            "mode": _octal(file_mode(path))}


def _csr_facts(csr: Any) -> Dict[str, Any]:
    return {"exists": True, "subject": format_name(csr.subject),
            "public_key_fingerprint_sha256": public_key_fingerprint(csr)}


def _load_vendor(spec: RequestSpec, plan: RequestPlan) -> None:
    given = [spec.vendor_certificate_path, spec.vendor_private_key_path, spec.signed_request_path]
    if not any(given):
        return
    if not all(given):
        raise CertificateError("a vendor-signed request needs vendor_certificate_path, vendor_private_key_path and "
                               "signed_request_path together")
    material = load_certificates(read_file(spec.vendor_certificate_path, "vendor_certificate_path"),
                                 "vendor_certificate_path %s" % spec.vendor_certificate_path, "auto",
                                 spec.vendor_private_key_passphrase)
    vendor_cert = material.certificate
    key_source = "vendor_private_key_path %s" % spec.vendor_private_key_path
    vendor_key = load_private_key(read_file(spec.vendor_private_key_path, "vendor_private_key_path"), key_source,
                                  spec.vendor_private_key_passphrase, "vendor_private_key_passphrase")
    require_rsa(vendor_key, key_source, "signing a push certificate request")
    match = key_matches(vendor_cert, vendor_key)
    if not match.ok:
        raise CertificateError("%s: does not belong to the vendor certificate %s: %s; nothing was written"
                               % (key_source, format_name(vendor_cert.subject), match.reason))
    chain: List[Any] = []
    if spec.vendor_chain_path:
        loaded = load_certificates(read_file(spec.vendor_chain_path, "vendor_chain_path"),
                                   "vendor_chain_path %s" % spec.vendor_chain_path)
        chain = [loaded.certificate] + loaded.chain
        if chain[0].subject != vendor_cert.issuer:
            plan.warnings.append("vendor_chain_path does not start with the issuer of the vendor certificate (%s); "
                                 "Apple may reject the request" % format_name(vendor_cert.issuer))
    if not not_expired(vendor_cert).ok:
        plan.warnings.append("the vendor certificate expired on %s: Apple will reject requests it signs"
                             % not_after(vendor_cert).strftime("%Y-%m-%d"))
    plan.vendor_cert, plan.vendor_key, plan.chain = vendor_cert, vendor_key, chain


def _plan_key(spec: RequestSpec, plan: RequestPlan) -> None:
    path = spec.privatekey_path
    if not os.path.exists(path):
        plan.key_action = CREATE
        plan.reasons.append("privatekey_path %s does not exist: a new RSA %d key will be generated"
                            % (path, spec.key_size))
        plan.before["privatekey"] = {"exists": False}
        return
    if spec.force:
        plan.key_action = REGENERATE
        plan.reasons.append("force: the private key at %s will be replaced by a new RSA %d key"
                            % (path, spec.key_size))
        plan.before["privatekey"] = {"exists": True, "mode": _octal(file_mode(path))}
        return
    source = "privatekey_path %s" % path
    try:
        key = load_private_key(read_file(path, "privatekey_path"), source, spec.privatekey_passphrase,
                               "privatekey_passphrase")
        require_rsa(key, source)
    except CertificateError as exc:
        raise CertificateError("%s; the existing key is kept untouched (it may belong to your current push "
                               "certificate): fix the input, or set force: true to replace it" % exc)
    plan.key = key
    plan.before["privatekey"] = _key_facts(key, path)
    if file_mode(path) != KEY_MODE:
        plan.key_action = FIX_MODE
        plan.reasons.append("the private key at %s has mode %s: it will be set to 0600"
                            % (path, _octal(file_mode(path))))
    else:
        plan.key_action = KEEP
    if key.key_size != spec.key_size:
        plan.warnings.append("the existing key at %s has %d bits, not key_size %d; it is kept (set force: true to "
                             "replace it)" % (path, key.key_size, spec.key_size))


def _plan_csr(spec: RequestSpec, plan: RequestPlan) -> None:
    path = spec.csr_path
    exists = os.path.exists(path)
    existing = None
    if exists:
        try:
            existing = load_csr(read_file(path, "csr_path"), "csr_path %s" % path)
        except CertificateError as exc:
            plan.reasons.append("%s: it will be regenerated" % exc)
    plan.before["csr"] = _csr_facts(existing) if existing is not None else {"exists": exists}
    if not exists:
        plan.csr_action = CREATE
        plan.reasons.append("csr_path %s does not exist: a CSR will be generated" % path)
    elif existing is None:
        plan.csr_action = REGENERATE
    elif plan.key_action in (CREATE, REGENERATE):
        plan.csr_action = REGENERATE
        plan.reasons.append("the CSR at %s will be regenerated for the new private key" % path)
    elif spec.force:
        plan.csr_action = REGENERATE
        plan.reasons.append("force: the CSR at %s will be regenerated" % path)
    else:
        keep, why = csr_matches(existing, plan.key, plan.subject)
        if keep:
            plan.csr_action, plan.csr = KEEP, existing
        else:
            plan.csr_action = REGENERATE
            plan.reasons.append("the CSR at %s will be regenerated: %s" % (path, why))


def _signed_facts(request: Any) -> Dict[str, Any]:
    try:
        csr = load_csr(request.csr_der, "PushCertRequestCSR")
        facts = _csr_facts(csr)
        facts = {"exists": True, "csr_subject": facts["subject"],
                 "csr_public_key_fingerprint_sha256": facts["public_key_fingerprint_sha256"]}
    except CertificateError:
        facts = {"exists": True, "csr_subject": None, "csr_public_key_fingerprint_sha256": None}
    facts["chain_certificates"] = request.chain_pem.count("-----BEGIN CERTIFICATE-----")
    return facts


def _plan_signed(spec: RequestSpec, plan: RequestPlan) -> None:
    path = spec.signed_request_path
    if not path:
        plan.signed_action = NONE
        return
    existing = None
    if os.path.exists(path):
        try:
            existing = parse_signed_request(read_file(path, "signed_request_path"), "signed_request_path %s" % path)
        except CertificateError as exc:
            plan.reasons.append("%s: it will be regenerated" % exc)
        plan.before["signed_request"] = _signed_facts(existing) if existing else {"exists": True}
    else:
        plan.before["signed_request"] = {"exists": False}
        plan.signed_action = CREATE
        plan.reasons.append("signed_request_path %s does not exist: a vendor-signed request will be written" % path)
        return
    if existing is None:
        plan.signed_action = REGENERATE
    elif plan.csr_action != KEEP:
        plan.signed_action = REGENERATE
        plan.reasons.append("the signed request at %s will be regenerated for the new CSR" % path)
    elif spec.force:
        plan.signed_action = REGENERATE
        plan.reasons.append("force: the signed request at %s will be regenerated" % path)
    elif existing.csr_der != csr_der(plan.csr):
        plan.signed_action = REGENERATE
        plan.reasons.append("the signed request at %s holds another CSR than %s: it will be regenerated"
                            % (path, spec.csr_path))
    elif not verify_signed_request(existing, plan.vendor_cert).ok:
        plan.signed_action = REGENERATE
        plan.reasons.append("the signed request at %s was not signed by the given vendor certificate: it will be "
                            "regenerated" % path)
    elif existing.chain_pem != chain_pem_text([plan.vendor_cert] + plan.chain):
        plan.signed_action = REGENERATE
        plan.reasons.append("the certificate chain in the signed request at %s differs from the vendor certificate "
                            "and vendor_chain_path: it will be regenerated" % path)
    else:
        plan.signed_action = KEEP


def plan_request(spec: RequestSpec) -> RequestPlan:
    """Read what exists, validate all inputs, and decide what to change. Writes nothing."""
    if spec.key_size < MIN_RSA_BITS:
        raise CertificateError("key_size must be at least %d, not %d" % (MIN_RSA_BITS, spec.key_size))
    if spec.privatekey_format not in ("pkcs1", "pkcs8"):
        raise CertificateError("privatekey_format must be pkcs1 or pkcs8")
    plan = RequestPlan(spec=spec, subject=spec.subject.to_name(), key_action=KEEP, csr_action=KEEP,
                       signed_action=NONE)
    _load_vendor(spec, plan)
    _plan_key(spec, plan)
    _plan_csr(spec, plan)
    _plan_signed(spec, plan)
    for path, option, action in ((spec.privatekey_path, "privatekey_path", plan.key_action),
                                 (spec.csr_path, "csr_path", plan.csr_action),
                                 (spec.signed_request_path, "signed_request_path", plan.signed_action)):
        if path and action in (CREATE, REGENERATE):
            check_writable(path, option)
    return plan


def apply_request(plan: RequestPlan) -> None:
    """Generate and write what ``plan`` says (key first, then CSR, then signed request)."""
    spec = plan.spec
    if plan.key_action in (CREATE, REGENERATE):
        plan.key = generate_rsa_key(spec.key_size)
        pem = private_key_pem(plan.key, spec.privatekey_passphrase, spec.privatekey_format)
        write_file_atomic(spec.privatekey_path, pem, KEY_MODE)
    elif plan.key_action == FIX_MODE:
        os.chmod(spec.privatekey_path, KEY_MODE)
    if plan.csr_action != KEEP:
        plan.csr = build_csr(plan.key, plan.subject)
        _write(spec.csr_path, csr_pem(plan.csr))
    if plan.signed_action in (CREATE, REGENERATE):
        _write(spec.signed_request_path,
               build_signed_request(plan.csr, plan.vendor_cert, plan.vendor_key, plan.chain))


def _write(path: str, data: bytes) -> None:
    write_file_atomic(path, data, PUBLIC_MODE)


def _after(plan: RequestPlan, applied: bool) -> Dict[str, Any]:
    spec = plan.spec
    after: Dict[str, Any] = {}
    if plan.key is not None:
        after["privatekey"] = _key_facts(plan.key, spec.privatekey_path) if applied else dict(
            plan.before["privatekey"], mode=_octal(KEY_MODE))
    else:  # check mode, key still to be generated
        after["privatekey"] = {"exists": True, "type": "RSA %d" % spec.key_size,
                               "public_key_fingerprint_sha256": "(new key)", "mode": _octal(KEY_MODE)}
    if plan.csr is not None:
        after["csr"] = _csr_facts(plan.csr)
    else:
        after["csr"] = {"exists": True, "subject": format_name(plan.subject),
                        "public_key_fingerprint_sha256": (public_key_fingerprint(plan.key) if plan.key is not None
                                                          else "(new key)")}
    if spec.signed_request_path:
        after["signed_request"] = {"exists": True, "csr_subject": after["csr"]["subject"],
                                   "csr_public_key_fingerprint_sha256": after["csr"]["public_key_fingerprint_sha256"],
                                   "chain_certificates": 1 + len(plan.chain)}
    return after


def request_result(plan: RequestPlan, applied: bool) -> Dict[str, Any]:
    """The module result (no key material, ever)."""
    spec = plan.spec
    fingerprint = public_key_fingerprint(plan.key) if plan.key is not None else None
    return {
        "changed": plan.changed,
        "privatekey_path": spec.privatekey_path,
        "csr_path": spec.csr_path,
        "signed_request_path": spec.signed_request_path,
        "csr_subject": format_name(plan.csr.subject if plan.csr is not None else plan.subject),
        "public_key_fingerprint_sha256": fingerprint,
        "actions": plan.actions,
        "changed_files": plan.changed_files,
        "changes": list(plan.reasons) if plan.changed else [],
        "diff": {"before": plan.before, "after": _after(plan, applied)},
    }

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts about push certificates: describe one, its chain, and compare two.

``certificate_info`` is everything ``push_certificate_info`` returns. Pure
Python on ``cryptography``; no Ansible imports.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.mdmops.apple.plugins.module_utils._push._guards import key_matches, mdm_push_reasons
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import (
    CertificateError,
    CertificateInput,
    LoadedMaterial,
    certificate_fingerprint,
    common_name,
    format_name,
    iso8601,
    issuer_common_name,
    key_description,
    key_type_and_size,
    name_pairs,
    not_after,
    not_before,
    public_key_fingerprint,
    push_topic,
    utc,
)

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
except ImportError:  # pragma: no cover - _material reports the missing library
    pass


def describe_certificate(cert: "x509.Certificate", at: Optional[_dt.datetime] = None,
                         expires_within_days: int = 30) -> Dict[str, Any]:
    """Facts about one certificate, as returned by ``push_certificate_info`` (never key material)."""
    moment = utc(at)
    start, end = not_before(cert), not_after(cert)
    remaining = (end - moment).total_seconds() / 86400.0
    expired = moment > end
    key_type, key_size = key_type_and_size(cert.public_key())
    reasons = mdm_push_reasons(cert)
    try:
        signature_algorithm = cert.signature_algorithm_oid._name  # pylint: disable=protected-access
    except AttributeError:  # pragma: no cover
        signature_algorithm = cert.signature_algorithm_oid.dotted_string
    return {
        "subject": format_name(cert.subject),
        "subject_ordered": name_pairs(cert.subject),
        "issuer": format_name(cert.issuer),
        "issuer_ordered": name_pairs(cert.issuer),
        "issuer_common_name": issuer_common_name(cert),
        "common_name": common_name(cert),
        "topic": push_topic(cert),
        "serial_number": str(cert.serial_number),
        "serial_number_hex": "%X" % cert.serial_number,
        "fingerprint_sha1": certificate_fingerprint(cert, "sha1"),
        "fingerprint_sha256": certificate_fingerprint(cert, "sha256"),
        "public_key_fingerprint_sha256": public_key_fingerprint(cert),
        "public_key_type": key_type,
        "public_key_size": key_size,
        "signature_algorithm": signature_algorithm,
        "not_before": iso8601(start),
        "not_after": iso8601(end),
        "days_remaining": int(math.floor(remaining)),
        "expired": expired,
        "not_yet_valid": moment < start,
        "expires_soon": expired or remaining < expires_within_days,
        "is_mdm_push": not reasons,
        "mdm_push_reasons": reasons,
    }


def chain_facts(material: LoadedMaterial) -> Dict[str, Any]:
    """Chain facts of a loaded input: what was found and whether each link's signature verifies."""
    verified = True
    current = material.certificate
    for parent in material.chain:
        if current.issuer != parent.subject or not _directly_issued_by(current, parent):
            verified = False
            break
        current = parent
    return {
        "input_format": material.format,
        "certificates_found": material.certificates_found,
        "chain_subjects": [format_name(c.subject) for c in material.chain],
        "chain_verified": bool(material.chain) and verified,
        "contains_private_key": material.private_key is not None or material.private_key_encrypted,
    }


def _directly_issued_by(cert: "x509.Certificate", issuer: "x509.Certificate") -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def compare_certificates(cert: "x509.Certificate", other: "x509.Certificate") -> Dict[str, Any]:
    """How ``cert`` relates to ``other`` (the certificate it is compared to)."""
    same_cert = cert.fingerprint(hashes.SHA256()) == other.fingerprint(hashes.SHA256())
    topic, other_topic = push_topic(cert), push_topic(other)
    same_topic = bool(topic) and topic == other_topic
    return {
        "same_certificate_as_compared": same_cert,
        "same_topic_as_compared": same_topic,
        "is_renewal_of_compared": same_topic and not same_cert and not_after(cert) > not_after(other),
        "compared": {
            "subject": format_name(other.subject),
            "topic": other_topic,
            "serial_number": str(other.serial_number),
            "fingerprint_sha256": certificate_fingerprint(other, "sha256"),
            "not_after": iso8601(not_after(other)),
        },
    }


def certificate_info(source: CertificateInput, compare_to: Optional[CertificateInput] = None,
                     expires_within_days: int = 30,
                     at: Optional[_dt.datetime] = None) -> Tuple[Dict[str, Any], List[str]]:
    """Everything ``push_certificate_info`` returns, and warnings for the user.

    ``source`` is the certificate (with its key, if any); ``compare_to`` the
    certificate to compare with (its key options are ignored).
    """
    if expires_within_days < 0:
        raise CertificateError("expires_within_days must be 0 or more, not %d" % expires_within_days)
    material = source.load()
    cert = material.certificate
    result = describe_certificate(cert, at, expires_within_days)
    result.update(chain_facts(material))
    warnings = list(material.notes)

    key = source.load_key(material)
    if key is not None:
        result["key_matches"] = key_matches(cert, key).ok
        result["private_key_type"] = key_description(key)

    if compare_to is not None and compare_to.given:
        other = compare_to.load().certificate
        result.update(compare_certificates(cert, other))
    return result, warnings

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Guards on push certificate material: same topic, key match, expiry, MDM push shape, RSA key.

Each guard returns a :class:`GuardResult` (``ok`` and a reason a human
understands, true or false); ``require_rsa`` raises. The console upload and
rotation workflow, the request module and push verification build on these.
Pure Python on ``cryptography``; no Ansible imports.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

from ansible_collections.mdmops.apple.plugins.module_utils._push._material import (
    AAI2_ISSUER_CN,
    MDM_TOPIC_PREFIX,
    MIN_RSA_BITS,
    UID_OID,
    CertificateError,
    format_name,
    iso8601,
    issuer_common_name,
    key_description,
    not_after,
    not_before,
    public_key_fingerprint,
    push_topic,
    utc,
)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
except ImportError:  # pragma: no cover - _material reports the missing library
    pass


def mdm_push_reasons(cert: "x509.Certificate") -> List[str]:
    """Why ``cert`` is not an MDM push certificate; empty when it looks like one.

    This identifies the kind of certificate by its names; it is not a trust
    check (the lab forges the same names).
    """
    reasons = []
    issuer_cn = issuer_common_name(cert)
    if issuer_cn != AAI2_ISSUER_CN:
        reasons.append("it was issued by %r, not by %r: MDM push certificates come from the Apple Push "
                       "Certificates Portal (identity.apple.com)" % (issuer_cn or format_name(cert.issuer), AAI2_ISSUER_CN))
    topic = push_topic(cert)
    if not topic:
        reasons.append("its subject has no UID attribute (%s), so it carries no push topic" % UID_OID)
    elif not topic.startswith(MDM_TOPIC_PREFIX):
        reasons.append("its topic %r does not start with %r: it is an app push certificate, not an MDM one"
                       % (topic, MDM_TOPIC_PREFIX))
    return reasons


@dataclass(frozen=True)
class GuardResult:
    """The verdict of one guard: ``ok`` and a reason a human understands (true or false)."""

    ok: bool
    reason: str
    guard: str = ""

    def __bool__(self) -> bool:
        return self.ok


def same_topic(current: "x509.Certificate", new: "x509.Certificate") -> GuardResult:
    """A replacement push certificate must keep the topic, or every device must re-enroll."""
    current_topic, new_topic = push_topic(current), push_topic(new)
    if not new_topic:
        return GuardResult(False, "the new certificate has no push topic (subject UID attribute): it is not an MDM "
                                  "push certificate", "same_topic")
    if not current_topic:
        return GuardResult(False, "the current certificate has no push topic (subject UID attribute), so the new "
                                  "topic %s cannot be checked against it" % new_topic, "same_topic")
    if current_topic != new_topic:
        return GuardResult(False, "the new certificate's topic %s differs from the current %s: it was issued to "
                                  "another Apple Account (or is a new certificate rather than a renewal); uploading "
                                  "it would require every device to re-enroll: renew the existing certificate in the "
                                  "Apple Push Certificates Portal with the Apple Account that created it"
                                  % (new_topic, current_topic), "same_topic")
    return GuardResult(True, "the new certificate keeps the topic %s" % new_topic, "same_topic")


def key_matches(cert: "x509.Certificate", key: Any) -> GuardResult:
    """The private key belongs to the certificate (same public key)."""
    cert_fp, key_fp = public_key_fingerprint(cert), public_key_fingerprint(key)
    if cert_fp == key_fp:
        return GuardResult(True, "the private key (%s) matches the certificate" % key_description(key), "key_matches")
    return GuardResult(False, "the private key (%s, public key SHA-256 %s) does not belong to the certificate "
                              "(%s, public key SHA-256 %s): use the key that generated the CSR uploaded to Apple "
                              "for this certificate" % (key_description(key), key_fp,
                                                        key_description(cert.public_key()), cert_fp), "key_matches")


def not_expired(cert: "x509.Certificate", at: Optional[_dt.datetime] = None) -> GuardResult:
    """The certificate has not expired at ``at`` (now by default)."""
    moment, end = utc(at), not_after(cert)
    if moment > end:
        days = int((moment - end).total_seconds() // 86400)
        return GuardResult(False, "the certificate expired on %s (%d day%s ago): devices no longer receive pushes "
                                  "with it; renew it in the Apple Push Certificates Portal (renewing keeps the topic)"
                                  % (iso8601(end), days, "" if days == 1 else "s"), "not_expired")
    return GuardResult(True, "the certificate is valid until %s" % iso8601(end), "not_expired")


def already_valid(cert: "x509.Certificate", at: Optional[_dt.datetime] = None) -> GuardResult:
    """The certificate's validity has begun at ``at`` (a future not_before usually means a wrong clock)."""
    moment, start = utc(at), not_before(cert)
    if moment < start:
        return GuardResult(False, "the certificate is not valid before %s: check this host's clock"
                           % iso8601(start), "already_valid")
    return GuardResult(True, "the certificate is valid since %s" % iso8601(start), "already_valid")


def valid_for_at_least(cert: "x509.Certificate", days: int, at: Optional[_dt.datetime] = None) -> GuardResult:
    """The certificate stays valid for at least ``days`` more days."""
    moment, end = utc(at), not_after(cert)
    remaining = (end - moment).total_seconds() / 86400.0
    if remaining < days:
        if remaining < 0:
            state = "it expired on %s" % iso8601(end)
        else:
            state = "it expires on %s, in %d day%s" % (iso8601(end), int(remaining), "" if int(remaining) == 1 else "s")
        return GuardResult(False, "the certificate must stay valid for at least %d days but %s: renew it first"
                           % (days, state), "valid_for_at_least")
    return GuardResult(True, "the certificate stays valid for %d more days (until %s)"
                       % (int(remaining), iso8601(end)), "valid_for_at_least")


def looks_like_mdm_push(cert: "x509.Certificate") -> GuardResult:
    """The certificate is shaped like an MDM push certificate (issuer and topic)."""
    reasons = mdm_push_reasons(cert)
    if reasons:
        return GuardResult(False, "not an MDM push certificate: " + "; ".join(reasons), "looks_like_mdm_push")
    return GuardResult(True, "an MDM push certificate for topic %s issued by %s" % (push_topic(cert), AAI2_ISSUER_CN),
                       "looks_like_mdm_push")


def failed_guards(results: Sequence[GuardResult]) -> List[GuardResult]:
    return [result for result in results if not result.ok]


def require_rsa(key: Any, source: str, purpose: str = "an MDM push certificate request",
                min_bits: int = MIN_RSA_BITS) -> Any:
    """Fail unless ``key`` is an RSA private key of at least ``min_bits``."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError("%s: is an %s key; %s needs an RSA key (the Apple Push Certificates Portal "
                               "accepts RSA only): use an RSA key, or set force: true to replace it with a new one"
                               % (source, key_description(key), purpose))
    if key.key_size < min_bits:
        raise CertificateError("%s: the RSA key has %d bits; %s needs at least %d: set force: true to replace it"
                               % (source, key.key_size, purpose, min_bits))
    return key

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put a push certificate into a console safely: read, guard, back up, upload, read back.

The same steps for every console (the adapters only speak their API):

1. **read** what the console holds (by ``expected_topic``, else by the new certificate's topic:
   consoles that keep one certificate per topic read by topic);
2. **compare**: when the console already holds this certificate, nothing is written
   (``changed: false``); when it cannot tell (a server without a read route), the upload goes
   ahead and the result says so: never ``changed: false`` on a guess;
3. **guard**, before any write: an MDM push certificate; valid now and for ``min_days_valid``
   days; the key matches (unless the console keeps its own key); the topic is
   ``expected_topic`` and the one the console holds (``allow_new_topic`` for a first setup or a
   deliberate move); no downgrade (a certificate that expires before the held one). Every
   refusal is listed, with what the console holds and the option that overrides it (if any);
4. **back up** what the console holds (``backup_dir``, 0600, a new file each time);
5. **upload**, then **read back** and fail loudly unless the console reports the new certificate.

Check mode stops after 3. Pure Python; no Ansible imports.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import Console, ConsoleError, Held, compare
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import (
    certificate_facts,
    parse_time,
)
from ansible_collections.mdmops.apple.plugins.module_utils._files import FileError, create_exclusive
from ansible_collections.mdmops.apple.plugins.module_utils._push._guards import (
    already_valid,
    key_matches,
    looks_like_mdm_push,
    not_expired,
    valid_for_at_least,
)
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import utc

try:
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - _material reports the missing library
    pass


#: Appended to the refusals no option overrides (each refusal names its override or says there is none).
NO_OVERRIDE = " (no option overrides this)"


class RotationRefused(ConsoleError):
    """The guards refused the certificate; nothing was written. ``refusals`` lists each reason."""

    def __init__(self, message: str, refusals: List[str], held: Optional[Held], **kw: Any) -> None:
        super().__init__(message, kind="refused", **kw)
        self.refusals = refusals
        self.held = held


@dataclass
class RotationSpec:
    """What to put in the console. ``key`` is the private key object (None when the console keeps
    its own, like Intune); ``cert`` the leaf certificate object."""

    cert: Any
    key: Any = None
    expected_topic: Optional[str] = None
    allow_new_topic: bool = False
    min_days_valid: int = 30
    apple_id: Optional[str] = None
    backup_dir: Optional[str] = None
    at: Optional[_dt.datetime] = None


@dataclass
class Rotation:
    """The outcome; ``as_dict()`` is what a module returns (never key material)."""

    console: str
    changed: bool = False
    uploaded: bool = False
    verified: Optional[bool] = None
    verdict: str = ""
    basis: str = ""
    before: Optional[Dict[str, Any]] = None
    after: Optional[Dict[str, Any]] = None
    new: Dict[str, Any] = field(default_factory=dict)
    backup_path: Optional[str] = None
    warnings: List[str] = field(default_factory=list)
    answer: Dict[str, Any] = field(default_factory=dict)

    def diff(self) -> Dict[str, Any]:
        def short(facts: Optional[Dict[str, Any]]) -> Dict[str, Any]:
            facts = facts or {}
            return {k: facts.get(k) for k in ("topic", "serial_number", "not_after")}
        return {"before": short(self.before), "after": short(self.new if self.changed else self.before)}

    def as_dict(self) -> Dict[str, Any]:
        return {"console": self.console, "changed": self.changed, "uploaded": self.uploaded,
                "verified": self.verified, "held_before": self.before, "held_after": self.after,
                "certificate": self.new, "comparison": {"verdict": self.verdict, "basis": self.basis},
                "backup_path": self.backup_path, "warnings": list(self.warnings)}


def _held_text(held: Optional[Held]) -> str:
    if held is None:
        return "the console holds no push certificate"
    if not held.known:
        return "the console cannot tell what it holds (%s)" % held.reason
    parts = ["topic %s" % held.topic] if held.topic else []
    if held.serial:
        parts.append("serial %s" % held.serial)
    if held.not_after:
        parts.append("valid until %s" % held.not_after)
    return "the console holds " + (", ".join(parts) or "a certificate it does not describe")


def guard(console: Console, spec: RotationSpec, held: Optional[Held],
          facts: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    """(refusals, warnings) for putting ``spec.cert`` into ``console`` which holds ``held``."""
    refusals: List[str] = []
    warnings: List[str] = []
    cert, at = spec.cert, utc(spec.at)
    for result in (looks_like_mdm_push(cert), already_valid(cert, at), not_expired(cert, at)):
        if not result.ok:
            refusals.append(result.reason + NO_OVERRIDE)
    if not_expired(cert, at).ok:
        result = valid_for_at_least(cert, spec.min_days_valid, at)
        if not result.ok:
            refusals.append(result.reason + " (min_days_valid=%d: a lower min_days_valid accepts it)"
                            % spec.min_days_valid)
    if console.capabilities.holds_private_key:
        if spec.key is not None:
            warnings.append("%s keeps the private key of its own request: the key given is not sent and not checked"
                            % console.title)
    elif spec.key is None:
        refusals.append("%s needs the certificate's private key: give privatekey_path or privatekey_content"
                        % console.title + NO_OVERRIDE)
    else:
        result = key_matches(cert, spec.key)
        if not result.ok:
            refusals.append(result.reason + NO_OVERRIDE)
    topic = facts.get("topic")
    if spec.expected_topic and spec.expected_topic != topic:
        refusals.append("the certificate's topic %s is not expected_topic %s: renew the certificate with the Apple "
                        "Account that created it (its topic stays), or correct expected_topic" % (topic, spec.expected_topic)
                        + NO_OVERRIDE)
    if held is None:
        where = (" for topic %s (%s keeps one certificate per topic; it may hold others)" % (topic, console.title)
                 if console.capabilities.per_topic else "")
        if not spec.allow_new_topic:
            refusals.append("%s holds no push certificate%s: uploading one is a first setup (devices enrolled "
                            "under another topic would be stranded); set allow_new_topic: true if that is intended"
                            % (console.title, where))
    elif not held.known:
        if spec.expected_topic and spec.expected_topic == topic:
            warnings.append("%s cannot tell what it holds (%s): the topic is checked against expected_topic only"
                            % (console.title, held.reason))
        elif spec.allow_new_topic:
            warnings.append("%s cannot tell what it holds (%s): uploading on allow_new_topic, the topic could not "
                            "be checked" % (console.title, held.reason))
        else:
            refusals.append("%s cannot tell what it holds (%s), so the topic cannot be checked: give expected_topic "
                            "(the topic your devices enrolled with, from push_certificate_info on the current "
                            "certificate), or allow_new_topic: true for a first setup" % (console.title, held.reason))
    else:
        if held.topic and held.topic != topic and not spec.allow_new_topic:
            refusals.append("the certificate's topic %s differs from the topic the console holds, %s: it was issued "
                            "to another Apple Account (or is a new certificate, not a renewal) and every enrolled "
                            "device would have to re-enroll; renew the existing certificate with the Apple Account "
                            "that created it (allow_new_topic: true only for a deliberate move)" % (topic, held.topic))
        held_end, new_end = parse_time(held.not_after), parse_time(facts.get("not_after"))
        if held_end and new_end and new_end < held_end and held.topic == topic:
            refusals.append("downgrade: the certificate expires on %s, before the one the console holds (%s); "
                            "upload the newest renewal" % (facts.get("not_after"), held.not_after) + NO_OVERRIDE)
    return refusals, warnings


def _backup(console: Console, held: Held, backup_dir: str, at: _dt.datetime) -> str:
    if not os.path.isdir(backup_dir):
        raise ConsoleError("backup_dir %s is not a directory: create it (0700) or correct the option" % backup_dir,
                           console=console.name, step="backup", kind="input")
    stamp = at.strftime("%Y%m%dT%H%M%S.%fZ")
    name = "%s-%s-%s" % (console.name, (held.topic or "unknown").rsplit(".", 1)[-1], stamp)
    record = dict(held.as_dict(), console=console.name, saved_at=at.isoformat())
    try:
        if held.certificate_pem:
            create_exclusive(os.path.join(backup_dir, name + ".pem"), held.certificate_pem.encode("ascii"),
                             option="backup_dir")
            record["certificate_file"] = name + ".pem"
        return create_exclusive(os.path.join(backup_dir, name + ".json"),
                                (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"),
                                option="backup_dir")
    except FileError as exc:
        raise ConsoleError("backup of what %s holds failed, nothing was uploaded: %s" % (console.title, exc),
                           console=console.name, step="backup", kind="input") from None


def rotate(console: Console, spec: RotationSpec, check_mode: bool = False) -> Rotation:
    """Read, compare, guard, (unless ``check_mode``) back up, upload and read back.
    Raises RotationRefused (nothing written) or ConsoleError."""
    at = utc(spec.at)
    facts = certificate_facts(spec.cert)
    result = Rotation(console=console.name, new=facts)
    read_topic = spec.expected_topic or facts["topic"]
    held = console.read(read_topic)
    result.verdict, result.basis = compare(held, facts, console.capabilities.identity)
    result.before = held.as_dict() if held is not None else None     # after compare: the serial it read
    if result.verdict == "same":
        result.after = result.before
        result.verified = True
        for check in (not_expired(spec.cert, at), valid_for_at_least(spec.cert, spec.min_days_valid, at)):
            if not check.ok:
                result.warnings.append("the console already holds this certificate, but " + check.reason)
        if spec.expected_topic and spec.expected_topic != facts["topic"]:
            result.warnings.append("the console already holds this certificate, but its topic %s is not "
                                   "expected_topic %s" % (facts["topic"], spec.expected_topic))
        return result
    refusals, warnings = guard(console, spec, held, facts)
    result.warnings.extend(warnings)
    if refusals:
        raise RotationRefused("%s: refused to upload the certificate for topic %s (serial %s, valid until %s); %s; "
                              "nothing was changed:\n- %s" % (console.title, facts["topic"], facts["serial_number"],
                                                              facts["not_after"], _held_text(held),
                                                              "\n- ".join(refusals)),
                              refusals, held, console=console.name, step="guard")
    result.changed = True
    if result.verdict == "unknown":
        result.warnings.append("%s could not say whether it already holds this certificate (%s): it is uploaded "
                               "again" % (console.title, result.basis))
    if check_mode:
        return result
    if spec.backup_dir and held is not None and held.known:
        result.backup_path = _backup(console, held, spec.backup_dir, at)
    key_pem = None
    if not console.capabilities.holds_private_key:
        key_pem = spec.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    cert_pem = spec.cert.public_bytes(serialization.Encoding.PEM)
    result.answer = console.upload(cert_pem, key_pem, spec.apple_id)
    result.uploaded = True
    after = console.read(facts["topic"])
    verdict, basis = compare(after, facts, console.capabilities.identity)
    result.after = after.as_dict() if after is not None else None
    if verdict == "different":
        raise ConsoleError("%s accepted the upload but does not report the new certificate when read back (%s; "
                           "expected topic %s, serial %s, valid until %s; %s): check the console's logs, it may "
                           "still use the previous certificate%s"
                           % (console.title, basis, facts["topic"], facts["serial_number"], facts["not_after"],
                              _held_text(after), ", backed up in %s" % result.backup_path if result.backup_path else ""),
                           console=console.name, step="read back", kind="not_applied")
    result.verified = True if verdict == "same" else None      # None: could not be verified
    if verdict == "unknown":
        result.warnings.append("%s cannot be read back (%s): the upload was accepted but could not be verified"
                               % (console.title, basis))
    return result

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the module ``push_certificate`` does beyond :func:`._rotate.rotate`: its certificate options
(``certificate_path``/``certificate_content``, named so in messages) and ``state=absent``. Pure Python."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import Console, ConsoleError
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._rotate import _backup
from ansible_collections.mdmops.apple.plugins.module_utils._push._material import CertificateInput, utc

_NAMES = {"path": "certificate_path", "content": "certificate_content"}


@dataclass
class CertificateOptions(CertificateInput):
    """:class:`CertificateInput` read from push_certificate's options (``certificate_path``,
    ``certificate_content``; messages name those)."""

    @classmethod
    def from_module_params(cls, params: Mapping[str, Any]) -> "CertificateOptions":
        return cls(path=params.get("certificate_path"), content=params.get("certificate_content"),
                   certificate_password=params.get("certificate_password"),
                   privatekey_path=params.get("privatekey_path"), privatekey_content=params.get("privatekey_content"),
                   privatekey_passphrase=params.get("privatekey_passphrase"))

    def option(self, name: str) -> str:
        return _NAMES.get(name, name)


def remove_certificate(console: Console, topic: Optional[str], backup_dir: Optional[str], check_mode: bool,
                       at: Optional[_dt.datetime] = None) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """state=absent: (result, diff). Refused, before any request, where the console's API cannot remove."""
    if not console.capabilities.can_remove:
        raise ConsoleError("state=absent is not supported for %s: its API has no route to remove the push "
                           "certificate; remove it in the console itself (nothing was read or changed)"
                           % console.title, console=console.name, step="remove", kind="unsupported")
    held = console.read(topic)
    result: Dict[str, Any] = {"console": console.name, "changed": False, "uploaded": False, "verified": None,
                              "held_before": held.as_dict() if held is not None else None, "held_after": None,
                              "certificate": {}, "comparison": {"verdict": "", "basis": ""}, "backup_path": None,
                              "warnings": []}
    if held is not None and not held.known:
        raise ConsoleError("%s cannot tell what it holds (%s): state=absent cannot decide whether to remove"
                           % (console.title, held.reason), console=console.name, step="read", kind="unknown")
    before = {k: (held.as_dict() if held else {}).get(k) for k in ("topic", "serial_number", "not_after")}
    diff = {"before": before, "after": {"topic": None, "serial_number": None, "not_after": None}}
    if held is None:
        diff["after"] = before
        return result, diff
    result["changed"] = True
    if check_mode:
        return result, diff
    if backup_dir:
        result["backup_path"] = _backup(console, held, backup_dir, utc(at))
    console.remove()
    after = console.read(topic)
    if after is not None:
        raise ConsoleError("%s accepted the removal but still reports a push certificate when read back"
                           % console.title, console=console.name, step="read back", kind="not_applied")
    result["verified"] = True
    return result, diff

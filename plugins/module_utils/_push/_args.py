# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument-spec builders for the options every certificate module shares.

One spelling per concept, as in community.crypto: the certificate is ``path``
or ``content`` (PEM, DER or PKCS#12; ``format``; ``certificate_password`` for a
PKCS#12 bundle), its key ``privatekey_path`` or ``privatekey_content`` with
``privatekey_passphrase`` (``private_key_*`` are accepted as aliases). The
matching documentation is the doc fragment ``mdmops.apple.push_certificate_input``;
:class:`._material.CertificateInput` reads what these options give.

Plain dictionaries (no Ansible imports), merged into a module's argument spec::

    spec = certificate_input_spec()
    module = AnsibleModule(argument_spec=dict(spec, other=dict(type="int")),
                           **certificate_input_constraints())
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

COLLECTION = "mdmops.apple"
#: Release that drops the deprecated option aliases.
ALIAS_REMOVAL_VERSION = "2.0.0"
FORMAT_CHOICES = ["auto", "pem", "der", "pkcs12"]


def _deprecated(names: Sequence[str]) -> List[Dict[str, str]]:
    return [dict(name=name, version=ALIAS_REMOVAL_VERSION, collection_name=COLLECTION) for name in names]


def _option(spec: Dict[str, Any], aliases: Iterable[str] = (), deprecated: Iterable[str] = ()) -> Dict[str, Any]:
    aliases, deprecated = list(aliases), list(deprecated)
    if aliases or deprecated:
        spec["aliases"] = aliases + [name for name in deprecated if name not in aliases]
    if deprecated:
        spec["deprecated_aliases"] = _deprecated(deprecated)
    return spec


def certificate_input_spec(prefix: str = "", key: bool = True, fmt: bool = True,
                           deprecated_aliases: Optional[Mapping[str, Sequence[str]]] = None) -> Dict[str, Any]:
    """Options for one certificate input, every name prefixed with ``prefix``.

    ``key`` adds the private key options, ``fmt`` the ``format`` option (without
    it the format is detected). ``deprecated_aliases`` maps an (unprefixed)
    option to former names a module keeps for compatibility, e.g.
    ``{"certificate_password": ["password"]}``; they warn and go away in
    :data:`ALIAS_REMOVAL_VERSION`.
    """
    old = dict(deprecated_aliases or {})

    def name(option: str) -> str:
        return prefix + option

    spec: Dict[str, Any] = {
        name("path"): _option(dict(type="path"), deprecated=old.get("path", ())),
        name("content"): _option(dict(type="str", no_log=True), deprecated=old.get("content", ())),
        name("certificate_password"): _option(dict(type="str", no_log=True),
                                              deprecated=old.get("certificate_password", ())),
    }
    if fmt:
        spec[name("format")] = dict(type="str", default="auto", choices=list(FORMAT_CHOICES))
    if key:
        for option, kind in (("privatekey_path", "path"), ("privatekey_content", "str"),
                             ("privatekey_passphrase", "str")):
            entry = dict(type=kind)
            if kind == "str":
                entry["no_log"] = True
            spec[name(option)] = _option(entry, aliases=[name(option.replace("privatekey", "private_key"))],
                                         deprecated=old.get(option, ()))
    return spec


def certificate_input_constraints(prefix: str = "", key: bool = True, required: bool = True) -> Dict[str, List[Any]]:
    """``mutually_exclusive``, ``required_one_of`` and ``required_by`` for :func:`certificate_input_spec`."""
    def name(option: str) -> str:
        return prefix + option

    constraints: Dict[str, Any] = {
        "mutually_exclusive": [(name("path"), name("content"))],
        "required_one_of": [(name("path"), name("content"))] if required else [],
        "required_by": {},
    }
    if key:
        constraints["mutually_exclusive"].append((name("privatekey_path"), name("privatekey_content")))
    return constraints


def merge_constraints(*parts: Mapping[str, Any]) -> Dict[str, Any]:
    """Combine several constraint dictionaries into AnsibleModule keyword arguments."""
    merged: Dict[str, Any] = {"mutually_exclusive": [], "required_one_of": [], "required_by": {}}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, Mapping):
                merged.setdefault(key, {}).update(value)
            else:
                merged.setdefault(key, []).extend(value)
    return {key: value for key, value in merged.items() if value}

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MDM consoles behind one small interface: read what a console holds, upload, remove, CSR.

The contract every adapter keeps (``nanomdm.py``, ``micromdm.py`` now; ``intune``,
``workspace_one``, ``jamf_pro``, ``simplemdm``, ``fleet`` on the same shape):

* ``Console.read(topic=None)`` returns

  - ``None``: the console answered that it holds no push certificate (for ``topic`` where the
    console keeps one per topic);
  - a :class:`Held` with ``known=True``: what it holds, with as many of ``topic``, ``serial``,
    ``not_after``, ``fingerprint_sha256``, ``apple_id`` as its API tells (NanoMDM: topic and
    expiry only);
  - a :class:`Held` with ``known=False`` and a ``reason``: the console cannot tell (NanoMDM
    servers without the read route, a read that needs a topic nobody gave). The caller must not
    claim ``changed: false`` on such an answer, nor pass a guard that needs the current state,
    without saying so.

  Anything else (auth refused, server error, bad answer) raises :class:`ConsoleError`.
* ``upload(cert_pem, key_pem=None, apple_id=None)`` sends the certificate (and the unencrypted
  key when ``capabilities.holds_private_key`` is False: the console needs ours; when True, like
  Intune, the console kept the key of its own CSR and only the certificate goes). It returns
  what the console said (a dict, never key material). It does not read back: the caller does
  that with ``read()`` and compares with :func:`compare`.
* ``remove()`` where ``capabilities.can_remove``; ``csr()`` where ``capabilities.can_csr``
  (the console's own signing request, PEM text).
* No adapter guards anything (topic, key match, expiry, downgrade): that is the caller's job
  (``_rotate``), done before any write, identically for every console.
* Errors are :class:`ConsoleError` whose ``str()`` names the console, the step, the HTTP status
  and what to do, and never holds a secret (the HTTP layer redacts).

Pure Python; no Ansible imports.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ansible_collections.mdmops.apple.plugins.module_utils._http import HttpError, Session

# name -> module under _consoles; the planned ones are listed so messages can say "not yet".
REGISTRY = {
    "nanomdm": "nanomdm",
    "micromdm": "micromdm",
    "intune": "intune",
}
PLANNED = ("workspace_one", "jamf_pro", "simplemdm", "fleet")


class ConsoleError(Exception):
    """A console step failed; ``str()`` is the message for the user (no secrets).

    ``console``, ``step`` (``read``, ``upload``, ``remove``, ``csr``, ``connect``), ``status``
    (HTTP status or None), ``kind`` (``auth``, ``http``, ``timeout``, ``answer``, ``unsupported``,
    ``input``...) help callers decide and tests assert."""

    def __init__(self, message: str, *, console: str = "", step: str = "", status: Optional[int] = None,
                 kind: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.console = console
        self.step = step
        self.status = status
        self.kind = kind

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Capabilities:
    """What a console's API can do.

    * ``holds_private_key``: the console keeps the private key of its own CSR (Intune); we upload
      the certificate only, and key matching is skipped.
    * ``can_read``: it can say what it holds (False for NanoMDM servers before the read route:
      found out on the first read).
    * ``can_remove``: the API deletes the push certificate.
    * ``can_csr``: the console makes the CSR (Intune).
    * ``per_topic``: it keeps one certificate per topic (NanoMDM): an upload with a new topic adds
      one, it does not replace the old one, and reads need a topic.
    * ``identity``: what :func:`compare` can match on: ``fingerprint`` (the whole certificate),
      ``serial`` or ``not_after`` (NanoMDM: topic and expiry are all its API returns).
    """

    holds_private_key: bool = False
    can_read: bool = True
    can_remove: bool = False
    can_csr: bool = False
    per_topic: bool = False
    identity: str = "fingerprint"


@dataclass
class Held:
    """What a console holds (see the module docstring for ``known``)."""

    known: bool = True
    topic: Optional[str] = None
    serial: Optional[str] = None            # decimal, as push_certificate_info's serial_number
    # other decimal serials the console's value may stand for (Intune: all digits reads as hex or as decimal);
    # compare() keeps, in ``serial``, the reading that matches the certificate it compares with
    serial_alternatives: Tuple[str, ...] = ()
    not_after: Optional[str] = None         # ISO 8601 UTC, as push_certificate_info
    fingerprint_sha256: Optional[str] = None  # colon hex, as push_certificate_info
    apple_id: Optional[str] = None
    reason: str = ""
    certificate_pem: Optional[str] = None   # when the console returns the certificate itself
    facts: Dict[str, Any] = field(default_factory=dict)   # the console's own fields, as returned

    @classmethod
    def unknown(cls, reason: str, **facts: Any) -> "Held":
        return cls(known=False, reason=reason, facts=dict(facts))

    def as_dict(self) -> Dict[str, Any]:
        """For module results and backups' metadata (the certificate is public; no key here)."""
        out = {"known": self.known, "topic": self.topic, "serial_number": self.serial,
               "not_after": self.not_after, "fingerprint_sha256": self.fingerprint_sha256,
               "apple_id": self.apple_id, "facts": dict(self.facts)}
        if not self.known:
            out["reason"] = self.reason
        return out


def compare(held: Optional[Held], cert_facts: Dict[str, Any], identity: str = "fingerprint") -> Tuple[str, str]:
    """Does the console hold the certificate described by ``cert_facts`` (``describe_certificate``
    keys: topic, serial_number, not_after, fingerprint_sha256)? Returns ``(verdict, basis)``:
    ``same``, ``different`` or ``unknown``, and what it was decided on.

    ``unknown`` whenever the console could not tell or told too little: never a guess. A serial the
    console gave ambiguously (``held.serial_alternatives``) matches in any of its readings; the one
    that matched is then ``held.serial``, so what is reported afterwards agrees."""
    if held is None:
        return "different", "the console holds no push certificate"
    if not held.known:
        return "unknown", held.reason or "the console cannot tell what it holds"
    if held.fingerprint_sha256 and cert_facts.get("fingerprint_sha256"):
        same = held.fingerprint_sha256.replace(":", "").upper() == \
            str(cert_facts["fingerprint_sha256"]).replace(":", "").upper()
        return ("same" if same else "different"), "SHA-256 fingerprint"
    if held.serial and cert_facts.get("serial_number") and held.topic:
        wanted = str(cert_facts["serial_number"])
        if wanted != str(held.serial) and wanted in held.serial_alternatives:
            held.serial = wanted        # the reading of an ambiguous value that names this certificate
        same = str(held.serial) == wanted and held.topic == cert_facts.get("topic")
        return ("same" if same else "different"), "serial number and topic"
    if held.topic and held.not_after and identity == "not_after":
        if held.topic != cert_facts.get("topic"):
            return "different", "topic"
        same = _same_instant(held.not_after, cert_facts.get("not_after"))
        return ("same" if same else "different"), "topic and expiry (all the console's API returns)"
    return "unknown", "the console returned neither fingerprint, serial nor expiry"


def _same_instant(first: Optional[str], second: Optional[str]) -> bool:
    from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import parse_time
    a, b = parse_time(first), parse_time(second)
    return a is not None and b is not None and abs((a - b).total_seconds()) < 1


class Console:
    """Base class of the adapters. Subclasses set ``name``, ``title``, ``capabilities`` and
    implement ``read``/``upload`` (and ``remove``/``csr`` when they can)."""

    name = "console"
    title = "console"
    capabilities = Capabilities()
    reference = ""        # where the API is documented (or the source that defines it)

    def __init__(self, session: Session) -> None:
        self.session = session
        # instance copy: a read may find out that this server cannot read
        self.capabilities = type(self).capabilities

    # -- the interface ---------------------------------------------------------------
    def read(self, topic: Optional[str] = None) -> Optional[Held]:
        raise NotImplementedError

    def upload(self, cert_pem: bytes, key_pem: Optional[bytes] = None, apple_id: Optional[str] = None) -> Dict[str, Any]:
        raise NotImplementedError

    def remove(self) -> Dict[str, Any]:
        raise self.error("remove", "%s has no API to remove its push certificate; remove it in the console "
                         "itself (state=absent is not supported for %s)" % (self.title, self.name),
                         kind="unsupported")

    def csr(self) -> str:
        raise self.error("csr", "%s does not make push certificate requests; create the key and CSR with "
                         "mdmops.apple.push_certificate_request" % self.title, kind="unsupported")

    # -- helpers -------------------------------------------------------------------
    def error(self, step: str, message: str, *, status: Optional[int] = None, kind: str = "error") -> ConsoleError:
        return ConsoleError("%s (%s): %s" % (self.title, step, self.session.redact(message)),
                            console=self.name, step=step, status=status, kind=kind)

    def http_error(self, step: str, exc: HttpError) -> ConsoleError:
        """A ConsoleError for a failed exchange, with the remedy for the usual statuses."""
        status = exc.status
        if status in (401, 403):
            hint = ("the console refused the credentials (HTTP %s): check the API key (%s accepts it as "
                    "the password of user '%s')" % (status, self.title, getattr(self, "user", "")))
            return self.error(step, "%s; %s" % (hint, exc), status=status, kind="auth")
        if status in (429, 503) or (status is not None and status >= 500 and exc.attempts > 1):
            return self.error(step, "%s; the console is throttling or unavailable: try again later (and read "
                              "what it holds first)" % exc, status=status, kind="throttled")
        if exc.kind in ("timeout", "deadline"):
            return self.error(step, "%s; the console did not answer in time: raise timeout, or check the "
                              "server's health" % exc, status=status, kind="timeout")
        if exc.kind == "tls":
            return self.error(step, "%s; the console's TLS certificate could not be verified: give its CA with "
                              "ca_path (validate_certs=false only for a lab)" % exc, status=status, kind="tls")
        if exc.kind in ("connect",):
            return self.error(step, "%s; check url and that the console is reachable from this host" % exc,
                              status=status, kind="connect")
        return self.error(step, str(exc), status=status, kind="json" if exc.kind == "json" else "http")


def names() -> Tuple[str, ...]:
    return tuple(sorted(REGISTRY))


def get(name: str) -> type:
    """The adapter class for console ``name``; ConsoleError naming the supported ones otherwise."""
    key = (name or "").strip().lower()
    if key not in REGISTRY:
        if key in PLANNED:
            raise ConsoleError("console %r is planned but not supported yet; supported: %s"
                               % (name, ", ".join(names())), console=key, step="connect", kind="unsupported")
        raise ConsoleError("unknown console %r: one of %s" % (name, ", ".join(names())), console=key,
                           step="connect", kind="input")
    module = importlib.import_module("ansible_collections.mdmops.apple.plugins.module_utils._consoles."
                                     + REGISTRY[key])
    return getattr(module, "ADAPTER")


def connect(name: str, url: str, *, api_key: Optional[str] = None, username: Optional[str] = None,
            password: Optional[str] = None, **session_options: Any) -> Console:
    """An adapter for ``name`` at ``url`` with a :class:`Session` built from ``session_options``
    (timeout, deadline, validate_certs, ca_path, retries, ...). Credentials are per console:
    each adapter's ``from_options`` says which it needs."""
    cls = get(name)
    try:
        return cls.from_options(url, api_key=api_key, username=username, password=password, **session_options)
    except HttpError as exc:
        raise ConsoleError("%s (connect): %s" % (cls.title, exc), console=cls.name, step="connect",
                           kind=exc.kind) from None

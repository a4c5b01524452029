# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The console connection options every console module shares, and what the modules do with them.

Argument-spec builder :func:`console_connection_spec` (documented by the doc fragment
``mdmops.apple.console``; ``password`` by ``mdmops.apple.console.password``), and the module-side
logic that is not Ansible: :func:`connect_from_params` (options -> a connected adapter),
:func:`held_summary` (what ``push_certificate_info`` returns about a console). Pure Python.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import (
    PLANNED,
    REGISTRY,
    Console,
    ConsoleError,
    Held,
    compare,
    connect,
    get,
)
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._common import parse_time
from ansible_collections.mdmops.apple.plugins.module_utils._apns._proxy import url_secrets
from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import ca_path_error

# AnsiballZ ships the module_utils a module imports by name, not what _consoles.get() imports at run
# time: every adapter is named here (inside try: optional for AnsiballZ, so an adapter missing from
# an installation fails at connect with check_console's message, not when the module is packaged).
try:
    from ansible_collections.mdmops.apple.plugins.module_utils._consoles import nanomdm as _nanomdm  # noqa: F401
except ImportError:  # pragma: no cover
    pass
try:
    from ansible_collections.mdmops.apple.plugins.module_utils._consoles import micromdm as _micromdm  # noqa: F401
except ImportError:  # pragma: no cover
    pass
try:
    from ansible_collections.mdmops.apple.plugins.module_utils._consoles import intune as _intune  # noqa: F401
except ImportError:
    pass

#: The consoles of issue 10; an adapter missing from the registry at run time fails with a clear msg.
CONSOLE_CHOICES = ["intune", "micromdm", "nanomdm"]
DEFAULT_TIMEOUT = 30.0
#: Seconds; a console that takes longer than 5 minutes to answer one request is down.
MAX_TIMEOUT = 300
#: Credentials an adapter may take (each adapter's ``from_options`` names those it uses).
CREDENTIALS = ("username", "password", "api_key", "tenant_id", "client_id", "client_secret", "token_url")
SECRETS = ("password", "api_key", "client_secret")
#: Consoles whose API has one well-known URL (the adapter's default when ``url`` is not given).
DEFAULT_URLS = {"intune": "https://graph.microsoft.com"}
ARRIVES_WITH = {"intune": "the Intune adapter (module_utils/_consoles/intune.py)"}


def console_connection_spec(password: bool = True) -> Dict[str, Any]:
    """``url``, ``token_url``, the credentials (``no_log``), ``validate_certs``, ``ca_path``, ``timeout``.

    ``password=False`` leaves ``password`` out (push_certificate_info keeps ``password`` as the
    deprecated alias of ``certificate_password`` until 2.0.0)."""
    spec: Dict[str, Any] = {
        "url": dict(type="str"),
        "token_url": dict(type="str", default="https://login.microsoftonline.com", no_log=False),  # a URL, not a secret
        "tenant_id": dict(type="str"),
        "client_id": dict(type="str"),
        "client_secret": dict(type="str", no_log=True),
        "username": dict(type="str"),
        "api_key": dict(type="str", no_log=True),
        "validate_certs": dict(type="bool", default=True),
        "ca_path": dict(type="path"),
        "timeout": dict(type="float", default=DEFAULT_TIMEOUT),
    }
    if password:
        spec["password"] = dict(type="str", no_log=True)
    return spec


def console_choice_spec(required: bool = True) -> Dict[str, Any]:
    entry: Dict[str, Any] = dict(type="str", choices=list(CONSOLE_CHOICES))
    if required:
        entry["required"] = True
    return {"console": entry}


def check_console(name: str) -> None:
    """ConsoleError (kind ``unsupported``) when ``name`` is a choice whose adapter is not installed."""
    if name in REGISTRY:
        return
    if name in ARRIVES_WITH or name in PLANNED:
        raise ConsoleError("console %s is not supported by this installation of the collection: it arrives with %s; "
                           "supported now: %s" % (name, ARRIVES_WITH.get(name, "a later release"),
                                                  ", ".join(sorted(REGISTRY))),
                           console=name, step="connect", kind="unsupported")
    get(name)       # raises the "unknown console" message


def session_options(params: Mapping[str, Any]) -> Dict[str, Any]:
    """Session options from the module options: ``timeout`` per attempt; the whole call, retries and
    waits included, bounded by four times it (at least 120 seconds)."""
    timeout = params.get("timeout")
    timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    if not 0 < timeout <= MAX_TIMEOUT:      # also refuses nan and inf
        raise ConsoleError("timeout must be a number of seconds above 0 and at most %d, not %r"
                           % (MAX_TIMEOUT, params.get("timeout")), step="connect", kind="input")
    ca_path = params.get("ca_path")
    validate = params.get("validate_certs", True) is not False
    if ca_path and validate:
        error = ca_path_error(ca_path)
        if error:
            raise ConsoleError(error, step="connect", kind="input")
    return {"timeout": timeout, "deadline": max(120.0, 4 * timeout), "validate_certs": validate, "ca_path": ca_path}


def url_masks(params: Mapping[str, Any]) -> List[str]:
    """What ``url`` and ``token_url`` hold between ``//`` and ``@``: values the module masks (no_log_values)."""
    return url_secrets(params.get("url")) + url_secrets(params.get("token_url"))


def url_error(params: Mapping[str, Any]) -> Optional[str]:
    """A message when ``url`` or ``token_url`` holds credentials (``user:password@``): they belong in the
    no_log options. The module masks :func:`url_secrets` of both before anything is printed."""
    for option in ("url", "token_url"):
        if url_secrets(params.get(option)):
            return ("%s holds credentials (user:password@): give them in username and password, api_key or "
                    "client_secret, which are never logged, and the URL without them" % option)
    return None


def connect_from_params(params: Mapping[str, Any]) -> Tuple[Console, List[str]]:
    """The adapter for ``params['console']`` at ``params['url']``, and warnings (credentials given
    that this console does not use). ConsoleError with a message for the user otherwise."""
    name = params.get("console")
    check_console(name)
    error = url_error(params)
    if error:
        raise ConsoleError(error, console=name, step="connect", kind="input")
    url = params.get("url")
    if not url and name not in DEFAULT_URLS:
        raise ConsoleError("url is required with console %s: the console's API base URL (e.g. https://mdm.example.com)"
                           % name, console=name, step="connect", kind="input")
    cls = get(name)
    accepted = _accepted_credentials(cls)
    given = {key: params.get(key) for key in CREDENTIALS if params.get(key) not in (None, "")}
    warnings = []
    unused = sorted(k for k in given if k not in accepted and not (k == "token_url" and params.get(k) == _default_token()))
    if unused:
        warnings.append("%s does not use %s: ignored" % (cls.title, ", ".join(unused)))
    credentials = {k: v for k, v in given.items() if k in accepted}
    options = session_options(params)
    secrets = [params.get(k) for k in SECRETS if params.get(k)]
    options["secrets"] = secrets
    return connect(name, url, **dict(credentials, **options)), warnings


def _default_token() -> str:
    return console_connection_spec()["token_url"]["default"]


def _accepted_credentials(cls: type) -> Tuple[str, ...]:
    try:
        parameters = inspect.signature(cls.from_options).parameters
    except (TypeError, ValueError):  # pragma: no cover - every adapter has from_options
        return ("username", "password", "api_key")
    return tuple(k for k in CREDENTIALS if k in parameters)


def csr_summary(pem: str) -> Dict[str, Any]:
    """What push_certificate_info returns as ``console_csr``: the PEM, its subject and public-key fingerprint."""
    from cryptography import x509
    from ansible_collections.mdmops.apple.plugins.module_utils._push._material import public_key_fingerprint
    request = x509.load_pem_x509_csr(pem.encode("ascii"))
    return {"pem": pem if pem.endswith("\n") else pem + "\n", "subject": request.subject.rfc4514_string(),
            "public_key_fingerprint_sha256": public_key_fingerprint(request)}


def held_summary(console: Console, held: Optional[Held], cert_facts: Optional[Dict[str, Any]] = None,
                 expires_within_days: int = 30, at: Optional[_dt.datetime] = None) -> Dict[str, Any]:
    """What push_certificate_info returns as ``console_certificate`` (never key material)."""
    moment = at or _dt.datetime.now(_dt.timezone.utc)
    out: Dict[str, Any] = {"console": console.name, "holds": held is not None and held.known,
                           "known": held is None or held.known, "reason": None, "topic": None, "serial_number": None,
                           "not_after": None, "fingerprint_sha256": None, "apple_id": None, "days_remaining": None,
                           "expired": None, "expires_soon": None, "facts": {}}
    # compared first: an ambiguous serial (Intune) is then reported in the reading that matched
    comparison = compare(held, cert_facts, console.capabilities.identity) if cert_facts is not None else None
    if held is None:
        out["reason"] = "the console holds no push certificate" + (" for this topic" if console.capabilities.per_topic
                                                                   else "")
    elif not held.known:
        out["holds"] = None
        out["reason"] = held.reason
    else:
        out.update(topic=held.topic, serial_number=held.serial, not_after=held.not_after,
                   fingerprint_sha256=held.fingerprint_sha256, apple_id=held.apple_id, facts=dict(held.facts))
        end = parse_time(held.not_after)
        if end is not None:
            remaining = (end - moment).total_seconds() / 86400.0
            out.update(days_remaining=int(math.floor(remaining)), expired=moment > end,
                       expires_soon=moment > end or remaining < expires_within_days)
    if comparison is not None:
        out["comparison"] = {"verdict": comparison[0], "basis": comparison[1]}
    return out

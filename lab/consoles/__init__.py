"""MDM console emulators: NanoMDM and MicroMDM push-certificate APIs, for the console adapters' tests.

Each follows its server's source (see ``nanomdm.py``, ``micromdm.py``): paths, methods, basic auth,
status codes, bodies, the older servers without a read route (``variant="old"``), plus faults on
demand and a request log (``_server.py``). Two ways to run one:

* in a thread on 127.0.0.1, for tests that need no namespaces::

      with Emulator("nanomdm", tmp_path, api_key="k", tls_dir=tmp_path) as emu:
          emu.url, emu.ca_path, emu.control.requests(), emu.control.set_faults([...])

* in the lab's ``net`` namespace through ``Lab.spawn``, on a fixed lab address (TLS under the lab
  CA, so ``lab.ca_path`` verifies it), reachable from corp and dev::

      endpoint = start(lab, "nanomdm")           # or "nanomdm-old", "micromdm", "micromdm-old"
      endpoint.url  -> https://198.51.100.230:9000 ; endpoint.control ; endpoint.api_key
      lab.stop(endpoint.process)
"""
from __future__ import annotations

import importlib
import os
import secrets
import sys
import threading
from dataclasses import dataclass
from typing import Optional

from lab.consoles._server import Control, ConsoleServer

KINDS = ("nanomdm", "micromdm", "intune")
# name -> (kind, variant, lab address, port); 198.51.100.230-239 are reserved for console emulators
LAB_CONSOLES = {
    "nanomdm": ("nanomdm", "current", "198.51.100.230", 9000),
    "nanomdm-old": ("nanomdm", "old", "198.51.100.231", 9000),
    "micromdm": ("micromdm", "current", "198.51.100.232", 9443),
    "micromdm-old": ("micromdm", "old", "198.51.100.233", 9443),
    # Microsoft Graph and its token endpoint on one address (url and token_url both point here)
    "intune": ("intune", "current", "198.51.100.234", 9444),
}


def handler_for(kind: str):
    if kind not in KINDS:
        raise ValueError("console emulator %r: one of %s" % (kind, ", ".join(KINDS)))
    module = importlib.import_module("lab.consoles." + kind)
    return module.HANDLER, module.USER


def make_tls(directory: str, names=("127.0.0.1", "localhost"), issuer=None) -> tuple:
    """Server certificate (with chain) and key for ``names`` in ``directory``; a fresh CA unless
    ``issuer`` (an ``lab.pki.Issued`` CA) is given. Returns (cert_path, key_path, ca_path)."""
    from lab import pki
    os.makedirs(directory, exist_ok=True)
    ca = issuer or pki.make_ca("Console Emulator CA (lab)", "mdmops lab")
    server = pki.tls_server(ca, list(names))
    cert_path, key_path = os.path.join(directory, "console.pem"), os.path.join(directory, "console.key")
    server.write(cert_path, key_path, with_chain=True)
    root = ca
    while root.chain:
        root = pki.Issued(root.chain[-1], None)
    ca_path = os.path.join(directory, "console-ca.pem")
    with open(ca_path, "wb") as f:
        f.write(root.cert_pem())
    return cert_path, key_path, ca_path


class Emulator:
    """A console emulator in a thread of this process (127.0.0.1, a free port; TLS when ``tls_dir``
    (a fresh CA and certificate made there) or ``tls_files`` (``make_tls``'s answer, reused))."""

    def __init__(self, kind: str, state_dir: str, *, api_key: Optional[str] = None, variant: str = "current",
                 tls_dir: Optional[str] = None, tls_files: Optional[tuple] = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        handler, user = handler_for(kind)
        self.kind, self.variant = kind, variant
        self.api_key = api_key or secrets.token_urlsafe(16)
        self.ca_path = None
        tls = None
        if tls_files:       # (cert, key, ca) from make_tls: made once, shared by several emulators
            cert, key, self.ca_path = tls_files
            tls = (cert, key)
        elif tls_dir:
            cert, key, self.ca_path = make_tls(str(tls_dir), names=(host, "localhost"))
            tls = (cert, key)
        self.server = ConsoleServer((host, port), handler, str(state_dir), self.api_key, user, variant, tls)
        self.control = self.server.control
        self.url = self.server.url
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="console-" + kind, daemon=True)

    def __enter__(self) -> "Emulator":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    start = __enter__

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Endpoint:
    name: str
    kind: str
    variant: str
    url: str
    address: str
    port: int
    api_key: str
    control: Control
    process: str


def start(lab, name: str = "nanomdm", api_key: Optional[str] = None) -> Endpoint:
    """Start lab console emulator ``name`` (a key of LAB_CONSOLES) in net; idempotent per call
    (restarts it with a clean state). ``lab.stop(endpoint.process)`` (or ``lab.down()``) ends it."""
    kind, variant, address, port = LAB_CONSOLES[name]
    base = lab.path("consoles", name)
    os.makedirs(base, mode=0o700, exist_ok=True)
    for stale in ("requests.jsonl", "faults.json", "store.json"):
        try:
            os.unlink(os.path.join(base, stale))
        except FileNotFoundError:
            pass
    api_key = api_key or secrets.token_urlsafe(16)
    key_file = os.path.join(base, "api_key")
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(api_key)
    from lab import pki
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    def load(stem, parent=None):
        with open(lab.path("pki", stem + ".pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(lab.path("pki", stem + ".key"), "rb") as f:
            key = load_pem_private_key(f.read(), None)
        return pki.Issued(cert, key, ((parent.cert,) + tuple(parent.chain)) if parent else ())

    issuer = load("apple_server", load("usertrust"))
    cert, key, _chain = make_tls(os.path.join(base, "tls"), names=(address,), issuer=issuer)
    process = "console-" + name
    lab.spawn("net", process, [sys.executable, "-m", "lab.consoles", "--kind", kind, "--variant", variant,
                               "--listen", address, "--port", str(port), "--state", base,
                               "--api-key-file", key_file, "--cert", cert, "--key", key], tcp_ports=[port])
    return Endpoint(name, kind, variant, "https://%s:%d" % (address, port), address, port, api_key,
                    Control(base), process)

"""Shared by the console tests: push certificates on a few keys made once, one TLS server
certificate for the emulators on 127.0.0.1, and the ``emulator`` fixture (parametrize it with a
console kind or a (kind, variant) pair, ``indirect=True``)."""
from __future__ import annotations

import pytest

from lab.consoles import Emulator, make_tls
from lab.pki import ApplePushPKI, rsa_key


class FewKeys(ApplePushPKI):
    """Push certificates on a handful of keys made once (RSA key generation is the slow part)."""

    def __init__(self):
        super().__init__()
        self.keys = [rsa_key() for _i in range(3)]
        self.turn = 0

    def push(self, topic=None, *, key=None, **kw):
        if key is None:
            self.turn += 1
            key = self.keys[self.turn % len(self.keys)]
        return super().push(topic, key=key, **kw)


@pytest.fixture(scope="session")
def push_pki():
    return FewKeys()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    return make_tls(str(tmp_path_factory.mktemp("console-tls")))


@pytest.fixture
def emulator(request, tmp_path, tls_files):
    kind, variant = request.param if isinstance(request.param, tuple) else (request.param, "current")
    with Emulator(kind, tmp_path / "state", variant=variant, tls_files=tls_files) as emu:
        yield emu

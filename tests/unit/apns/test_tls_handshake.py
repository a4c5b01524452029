"""The handshake path without any network: a TLS server on the other end of a socketpair,
handed to ``tls_probe`` through its ``connect`` hook (the way a proxy layer will hand in
a tunnelled socket).  No root, no lab, no listening port."""
from __future__ import annotations

import socket
import ssl
import threading

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._apns import _tls
from lab import pki as labpki


@pytest.fixture(scope="module")
def lab_pki():
    return labpki.AppleLabPKI()


def serve_once(server_sock, ctx):
    try:
        with ctx.wrap_socket(server_sock, server_side=True) as tls:
            tls.recv(1)
    except (ssl.SSLError, OSError):
        pass


def connector(tmp_path, issued, alpn, calls):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    issued.write(str(cert), str(key), with_chain=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(alpn)

    def connect(address, port, timeout):
        calls.append((address, port, timeout))
        client, server = socket.socketpair()
        threading.Thread(target=serve_once, args=(server, ctx), daemon=True).start()
        return client
    return connect


def test_connect_hook_ok_and_chain_read(tmp_path, lab_pki):
    calls = []
    ca = tmp_path / "ca.pem"
    ca.write_bytes(lab_pki.usertrust.cert_pem())
    connect = connector(tmp_path, lab_pki.server(["courier.push.apple.com"]), ["h2", "apns-security-v3"], calls)
    res = _tls.tls_probe("3-courier.push.apple.com", 5223, address="192.0.2.9", timeout=5, ca_path=str(ca),
                         connect=connect)
    assert res["status"] == "ok", res["detail"]
    assert calls == [("192.0.2.9", 5223, 5)]          # verified at the first handshake: one connection
    assert res["alpn"] == "apns-security-v3" and res["root"] == "USERTrust RSA Certification Authority"
    assert [c["subject_cn"] for c in res["chain"]][:2] == ["courier.push.apple.com",
                                                           "Apple Public Server RSA CA 12 - G1 (lab)"]
    assert res["chain_source"] in ("get_unverified_chain", "_ssl.get_unverified_chain")


def test_connect_hook_intercepted_costs_a_second_connection(tmp_path, lab_pki):
    calls = []
    ca = tmp_path / "ca.pem"
    ca.write_bytes(lab_pki.usertrust.cert_pem())
    fake = labpki.tls_server(lab_pki.intercept, ["api.push.apple.com"])
    res = _tls.tls_probe("api.push.apple.com", 443, timeout=5, ca_path=str(ca),
                         connect=connector(tmp_path, fake, ["h2"], calls))
    assert res["status"] == "intercepted" and res["root"] == "Corp SSL Inspection CA (lab)"
    assert res["chain_verified"] is False and res["verify_error"] and len(calls) == 2


def test_connect_hook_failure_is_classified(lab_pki):
    def refuse(address, port, timeout):
        raise ConnectionRefusedError(111, "Connection refused")
    res = _tls.tls_probe("api.push.apple.com", 2197, connect=refuse)
    assert res["status"] == "refused" and res["chain"] == [] and res["chain_verified"] is None


class LeafOnly:
    """An SSL socket of a Python before 3.10: no chain API, only the leaf."""

    def __init__(self, der):
        self.der = der

    def getpeercert(self, binary_form=False):
        return self.der


def test_peer_chain_falls_back_to_the_leaf(lab_pki):
    der = lab_pki.server(["x"]).cert_der()
    assert _tls.peer_chain(LeafOnly(der)) == ([der], "leaf_only")

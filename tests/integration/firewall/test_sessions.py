"""default_policy: drop keeps TCP sessions that were open before the apply, on a fresh host
(no connection-tracking rule before our table), outbound and inbound, on the output and forward hooks."""
from __future__ import annotations

import subprocess
import time

import pytest

from tests.integration.firewall.fwlib import apply, remove

pytestmark = pytest.mark.lab

SERVER = r"""
import socket, sys, threading
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
print("listening", flush=True)
def echo(c):
    while True:
        d = c.recv(100)
        if not d:
            return
        c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"""
CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.settimeout(3)
print("connected", flush=True)
for line in sys.stdin:
    try:
        s.sendall(b"ping")
        print("ok" if s.recv(100) == b"ping" else "bad", flush=True)
    except OSError as exc:
        print(type(exc).__name__, flush=True)
"""


class Session(object):
    """A TCP session from ``client_ns`` to ``server_ns`` (address, port), opened now and kept."""

    def __init__(self, lab, client_ns, server_ns, bind, address, port):
        self.server = subprocess.Popen(["ip", "netns", "exec", lab.ns(server_ns), "python3", "-u", "-c", SERVER,
                                        bind, str(port)], stdout=subprocess.PIPE, text=True)
        assert self.server.stdout.readline().strip() == "listening"
        self.client = subprocess.Popen(["ip", "netns", "exec", lab.ns(client_ns), "python3", "-u", "-c", CLIENT,
                                        address, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.client.stdout.readline().strip() == "connected"

    def exchange(self):
        self.client.stdin.write("x\n")
        self.client.stdin.flush()
        return self.client.stdout.readline().strip()

    def close(self):
        for proc in (self.client, self.server):
            proc.kill()
            proc.wait()


@pytest.fixture()
def fresh(lab):
    """corp with no ruleset at all: no connection tracking before our table."""
    for ns in ("corp", "dev", "net"):
        lab.run(ns, ["nft", "flush", "ruleset"], check=True)
    sessions = []
    yield sessions
    for s in sessions:
        s.close()
    for backend in ("nftables", "iptables"):
        remove(lab, backend=backend)
    lab.run("corp", ["nft", "flush", "ruleset"], check=True)


# (name, hook, client ns, server ns, bind, connect to): none of these destinations is allowed by the selection
CASES = [
    ("outbound", "output", "corp", "net", "0.0.0.0", "198.51.100.20"),
    ("outbound-v6", "output", "corp", "net", "::", "2001:db8:100::20"),
    ("inbound", "output", "net", "corp", "0.0.0.0", "100.64.0.2"),
    ("forward-out", "forward", "dev", "net", "0.0.0.0", "198.51.100.21"),
    ("forward-in", "forward", "net", "dev", "0.0.0.0", "100.64.1.2"),
]


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
@pytest.mark.parametrize("hook", ["output", "forward"])
def test_sessions_opened_before_a_default_drop_apply_survive(lab, fresh, backend, hook):
    port = 7100
    opened = {}
    for n, (name, case_hook, client, server, bind, address) in enumerate(CASES):
        if case_hook != hook:
            continue
        session = Session(lab, client, server, bind, address, port + n)
        fresh.append(session)
        assert session.exchange() == "ok"
        opened[name] = session
    time.sleep(0.2)
    res = apply(lab, {"backend": backend, "services": ["push_provider"], "default_policy": "drop", "hook": hook,
                      "rollback_timeout": 0})
    assert res["changed"] is True and not res["failed"], res
    assert dict((name, s.exchange()) for name, s in opened.items()) == dict((name, "ok") for name in opened)
    # and the policy does drop: a new session to the same kind of destination is refused
    new = subprocess.run(["ip", "netns", "exec", lab.ns(CASES[0][2] if hook == "output" else "dev"), "python3", "-c",
                          "import socket; socket.create_connection(('198.51.100.22', 7199), timeout=2)"],
                         capture_output=True, text=True, check=False)
    assert new.returncode != 0

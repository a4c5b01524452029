"""Real connections and name lookups from inside a lab namespace: the one copy tests use.

``connect(lab, [(host, port, proto), ...], ns="corp")`` opens each TCP connection (or sends a
UDP datagram and waits for the echo) from ``ns`` and returns ``{(host, port, proto): status}``,
status being ``"ok"``, ``"timeout"``, ``"dns: <error>"`` or the exception's class name
(``ConnectionRefusedError``...).  ``resolve(lab, names, ns="corp")`` returns
``{name: [addresses]}`` or ``{name: "dns: <error>"}`` as the namespace's resolver answers.

Both run one Python process in the namespace for all targets; ``timeout`` bounds each
attempt, not the test (nothing here measures or asserts a duration).
"""
from __future__ import annotations

import json
import sys
from typing import Dict, Iterable, List, Sequence, Tuple, Union

CONNECT = r"""
import json, socket, sys
timeout, family, targets = json.loads(sys.argv[1])
out = []
for host, port, proto in targets:
    fam = socket.AF_INET6 if (":" in host or family == 6) else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    try:
        addr = socket.getaddrinfo(host, port, fam, kind)[0][4][0]
    except OSError as exc:
        out.append([host, port, proto, "dns: %s" % exc]); continue
    s = socket.socket(fam, kind)
    s.settimeout(timeout)
    try:
        s.connect((addr, port))
        if proto == "udp":
            s.send(b"x"); s.recv(100)
        out.append([host, port, proto, "ok"])
    except socket.timeout:
        out.append([host, port, proto, "timeout"])
    except OSError as exc:
        out.append([host, port, proto, type(exc).__name__])
    finally:
        s.close()
print(json.dumps(out))
"""

RESOLVE = r"""
import json, socket, sys
family, names = json.loads(sys.argv[1])
fam = {4: socket.AF_INET, 6: socket.AF_INET6}.get(family, socket.AF_UNSPEC)
out = {}
for name in names:
    try:
        out[name] = sorted({a[4][0] for a in socket.getaddrinfo(name, 443, fam, socket.SOCK_STREAM)})
    except OSError as exc:
        out[name] = "dns: %s" % exc
print(json.dumps(out))
"""

Target = Tuple[str, int, str]


def _run(lab, ns: str, code: str, payload, timeout: float) -> str:
    proc = lab.run(ns, [sys.executable, "-c", code, json.dumps(payload)], timeout=timeout)
    assert proc.returncode == 0, "python in %s failed (rc %s):\n%s" % (ns, proc.returncode, proc.stderr)
    return proc.stdout


def connect(lab, targets: Iterable[Target], ns: str = "corp", timeout: float = 1.0,
            family: int = 4) -> Dict[Target, str]:
    """Connect to each ``(host, port, proto)`` from ``ns`` (IPv4, or IPv6 with ``family=6``)."""
    targets = [list(t) for t in targets]
    out = _run(lab, ns, CONNECT, [timeout, family, targets], 60 + len(targets) * timeout * 2)
    return {(h, p, pr): status for h, p, pr, status in json.loads(out)}


def resolve(lab, names: Sequence[str], ns: str = "corp", family: int = 0) -> Dict[str, Union[List[str], str]]:
    """What the resolver of ``ns`` answers for each name (``family`` 4, 6, or 0 for both)."""
    return json.loads(_run(lab, ns, RESOLVE, [family, list(names)], 60 + 10 * len(names)))

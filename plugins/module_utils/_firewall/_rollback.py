# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A dead man's switch for firewall changes.

Before a change, the backend's snapshot is saved; :func:`arm` starts a
detached process that restores it after ``timeout`` seconds unless
:func:`confirm` removes the token first.  If the change cuts the controller
off, nobody confirms and the host restores the previous rules by itself.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

DEFAULT_DIR = "/var/lib/mdmops-apple"

# Runs detached: wait, then restore unless the token file is gone.
_WATCHER = r"""
import json, os, subprocess, sys, time
job = json.loads(sys.argv[1])
time.sleep(job["timeout"])
if os.path.exists(job["token_file"]):
    results = []
    for argv in job["commands"]:
        proc = subprocess.run(argv, capture_output=True, text=True)
        results.append({"argv": argv, "rc": proc.returncode, "stderr": proc.stderr[-2000:]})
    with open(job["token_file"] + ".rolled-back", "w") as f:
        json.dump({"restored_at": time.time(), "results": results}, f)
    os.remove(job["token_file"])
"""


def _safe_token(token):
    if not token or not all(c.isalnum() or c in "-_" for c in token):
        raise ValueError("confirm_token %r is not a token returned by this module" % token)
    return token


def arm(snapshot_text, restore_commands, timeout, state_dir=DEFAULT_DIR, name="rollback"):
    """Save the snapshot and start the watcher; returns a dict for the module result.

    ``restore_commands`` is a callable taking the snapshot path and returning
    the argv lists that restore it.
    """
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    token = "%s-%s" % (name, secrets.token_hex(8))
    snap_path = os.path.join(state_dir, token + ".snapshot")
    fd = os.open(snap_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(snapshot_text)
    token_file = os.path.join(state_dir, token + ".pending")
    job = {"timeout": int(timeout), "token_file": token_file, "commands": restore_commands(snap_path)}
    with open(token_file, "w") as f:
        json.dump(job, f)
    proc = subprocess.Popen([sys.executable, "-c", _WATCHER, json.dumps(job)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                            start_new_session=True)
    with open(token_file + ".pid", "w") as f:
        f.write(str(proc.pid))
    return {"token": token, "timeout": int(timeout), "snapshot": snap_path, "pending": True}


def confirm(token, state_dir=DEFAULT_DIR):
    """Cancel a pending rollback. Returns "confirmed", "rolled_back" or "unknown"."""
    token = _safe_token(token)
    base = os.path.join(state_dir, token)
    pending = base + ".pending"
    if os.path.exists(pending):
        os.remove(pending)
        try:
            with open(pending + ".pid") as f:
                pid = int(f.read().strip())
            os.kill(pid, 15)
        except (OSError, ValueError):
            pass
        _cleanup(base)
        return "confirmed"
    if os.path.exists(pending + ".rolled-back"):
        return "rolled_back"
    return "unknown"


def _cleanup(base):
    for suffix in (".pending.pid",):
        try:
            os.remove(base + suffix)
        except OSError:
            pass

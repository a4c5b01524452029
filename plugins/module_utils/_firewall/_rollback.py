# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A dead man's switch for firewall changes, armed before anything changes.

Every run that changes our firewall objects goes through :class:`Lock` (one
``flock`` per backend and table in the state directory, so two runs on one
host never interleave; the watcher takes the same lock before it restores).

With a rollback timer, :func:`arm` saves the snapshot (``<token>.snapshot``,
created ``O_EXCL|O_NOFOLLOW`` with mode 0600, for a restore by hand), starts a
detached watcher that holds the snapshot *in its own memory* (it never reads a
file back before it restores), waits until the watcher says it is armed and
writes the job file ``<token>.pending``; only then does the caller change the
firewall.  If any of that fails, nothing has changed and the caller fails.

The watcher sleeps ``timeout`` seconds (or until it receives ``SIGUSR1``:
"restore now", for an administrator and for the tests), takes the lock and,
if ``<token>.pending`` is still there, feeds its snapshot to the backend's
restore command on stdin and leaves ``<token>.rolled-back``.
:func:`confirm` (under the lock) stops the watcher and renames the job to
``<token>.confirmed``.  A new run on the same table calls :func:`take_over`:
pending timers are stopped (``<token>.superseded``); the new timer, if any,
restores the oldest of their snapshots, the last confirmed state.

Files of finished timers are pruned to the newest ``keep`` per table
(:func:`prune`).  Pure Python, no Ansible imports.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import select
import signal
import stat
import subprocess
import sys
import time

from ansible_collections.mdmops.apple.plugins.module_utils._files import FileError, create_exclusive

DEFAULT_DIR = "/var/lib/mdmops-apple"
TOKEN_RE = re.compile(r"^(nftables|iptables|firewalld)-[A-Za-z0-9_]{1,20}-[0-9a-f]{16}$")
# test-only: kill the module process at a named stage, as if the controller were lost there
CRASH_ENV = "MDMOPS_FIREWALL_TEST_CRASH"
_FINISHED = (".confirmed", ".superseded", ".rolled-back", ".cancelled")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class RollbackError(Exception):
    """The lock, the snapshot or the timer cannot be used; the message says what to do."""


# what the confirmation run (the action plugin's second module run) takes over from the task's arguments
CONFIRM_PASSTHROUGH = ("backend", "table", "state_dir", "lock_timeout", "keep_snapshots")


def confirmation_args(args, result):
    """The module arguments of the run that confirms ``result``'s timer (``args``: the task's), or
    None when there is nothing to confirm: the run failed, armed no timer, or the user confirms
    later (``rollback_confirm: manual``).  Pure; the egress_firewall action plugin uses it."""
    rollback = result.get("rollback") or {}
    if result.get("failed") or not rollback.get("pending") or args.get("rollback_confirm", "auto") != "auto":
        return None
    out = {"confirm_token": rollback["token"]}
    out.update((key, args[key]) for key in CONFIRM_PASSTHROUGH if key in args)
    return out


def merge_confirmation(result, confirmed):
    """``result`` (the change) once its confirmation run answered ``confirmed`` (a module result, or
    ``{"failed": True, "msg": ...}`` when the host could not be reached): confirmed, or failed with
    what happens next (the host restores by itself when its timer ends).  Pure."""
    rollback = result.get("rollback") or {}
    status = (confirmed.get("rollback") or {}).get("status")
    if confirmed.get("failed") or status != "confirmed":
        return dict(result, failed=True, msg=(
            "the firewall change was applied but could not be confirmed through a new connection "
            "(%s); the host restores the previous rules by itself %d s after the change "
            "(rollback token %s)" % (confirmed.get("msg") or status, rollback.get("timeout", 0), rollback.get("token"))))
    return dict(result, rollback=dict(rollback, pending=False, status="confirmed"))


def crash_point(stage):
    """Test hook: die here (SIGKILL) when ``$MDMOPS_FIREWALL_TEST_CRASH`` names ``stage``."""
    if os.environ.get(CRASH_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def netns_id():
    """The network namespace we run in (several lab "hosts" share one file system)."""
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


# Runs detached (its own session); argv: token.  stdin: the job as JSON, snapshot included.
_WATCHER = r"""
import fcntl, json, os, signal, subprocess, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
job = json.loads(sys.stdin.read())
sys.stdin.close()
os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
sys.stdout.write("armed %d\n" % os.getpid())
sys.stdout.flush()
os.close(1)
signal.sigtimedwait({signal.SIGUSR1}, job["timeout"])
fd = os.open(job["lock"], os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
signal.signal(signal.SIGTERM, signal.SIG_IGN)   # from here on, finish what we start
try:
    with open(job["pending"]) as f:
        mine = json.load(f).get("pid") == os.getpid()
except (OSError, ValueError):
    mine = False
if mine:
    results = []
    for argv in job["commands"]:
        proc = subprocess.run(argv, input=job["snapshot"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, check=False)
        results.append({"argv": argv[:2], "rc": proc.returncode, "stderr": proc.stderr[-2000:]})
    done = job["pending"][:-len(".pending")] + ".rolled-back"
    out = os.open(done, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(out, "w") as f:
        json.dump({"restored_at": time.time(), "results": results}, f)
    os.remove(job["pending"])
"""


class Lock(object):
    """``flock`` on ``<state_dir>/<backend>-<table>.lock``, waited for up to ``timeout`` seconds."""

    def __init__(self, state_dir, backend, table, timeout=60):
        self.path = os.path.join(state_dir, "%s-%s.lock" % (backend, table))
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
        except OSError as exc:
            raise RollbackError("cannot open the lock file %s: %s (is it a symbolic link? remove it)"
                                % (self.path, exc.strerror))
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            os.close(fd)
            raise RollbackError("the lock file %s is not a regular file owned by uid %d; remove it"
                                % (self.path, os.geteuid()))
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise RollbackError("cannot lock %s: %s" % (self.path, exc.strerror))
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise RollbackError("another egress_firewall run (or a rollback timer restoring) has held %s for "
                                    "more than %s s (pid %s); nothing was changed: wait for it to finish, or raise "
                                    "lock_timeout" % (self.path, self.timeout, holder))
            time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)       # releases the flock
            self.fd = None
        return False


def _read_job(path):
    """A job file of ours (regular, owned by us, 0600, not a symlink), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return json.loads(f.read(64 * 1024 * 1024).decode("utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _stop_watcher(job):
    """SIGTERM the watcher of ``job`` if that pid still is that watcher."""
    pid = job.get("pid")
    if not isinstance(pid, int) or pid <= 1:
        return
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return
    if job.get("token", "").encode() in argv:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def _finish(state_dir, token, suffix):
    base = os.path.join(state_dir, token)
    try:
        os.rename(base + ".pending", base + suffix)
    except OSError:
        pass


def pending_jobs(state_dir, backend, table):
    """Jobs still pending for ``backend``/``table`` in this network namespace, oldest first."""
    jobs = []
    prefix = "%s-%s-" % (backend, table)
    try:
        names = os.listdir(state_dir)
    except OSError:
        return jobs
    here = netns_id()
    for name in names:
        if name.startswith(prefix) and name.endswith(".pending") and TOKEN_RE.match(name[:-len(".pending")]):
            job = _read_job(os.path.join(state_dir, name))
            if job and job.get("token") == name[:-len(".pending")] and job.get("netns", "") == here:
                jobs.append(job)
    return sorted(jobs, key=lambda j: j.get("created", 0))


def take_over(state_dir, jobs):
    """Stop the pending timers ``jobs`` (from :func:`pending_jobs`, under the :class:`Lock`); returns their tokens."""
    for job in jobs:
        _stop_watcher(job)
        _finish(state_dir, job["token"], ".superseded")
    return [j["token"] for j in jobs]


class Timer(object):
    """An armed watcher (see :func:`arm`)."""

    def __init__(self, state_dir, token, timeout, snapshot_path, pid):
        self.state_dir = state_dir
        self.token = token
        self.timeout = timeout
        self.snapshot_path = snapshot_path
        self.pid = pid

    def result(self, superseded=()):
        out = {"token": self.token, "timeout": self.timeout, "snapshot": self.snapshot_path, "pending": True}
        if superseded:
            out["superseded"] = list(superseded)
        return out

    def cancel(self):
        """The change did not happen (or was undone here): stop the watcher, keep the snapshot file."""
        _stop_watcher({"pid": self.pid, "token": self.token})
        _finish(self.state_dir, self.token, ".cancelled")


def arm(state_dir, backend, table, snapshot_text, commands, timeout, lock_path):
    """Save ``snapshot_text`` and start the watcher; returns a :class:`Timer`.  Call before changing anything.

    ``commands``: argv lists that restore a snapshot given on their stdin.
    Raises :class:`RollbackError` (and leaves nothing running) when the
    snapshot cannot be saved or the watcher does not report itself armed.
    """
    token = "%s-%s-%s" % (backend, table, secrets.token_hex(8))
    base = os.path.join(state_dir, token)
    snap_path = base + ".snapshot"
    try:
        create_exclusive(snap_path, snapshot_text.encode("utf-8"), 0o600, "rollback snapshot")
    except FileError as exc:
        raise RollbackError("%s; nothing was changed" % exc)
    job = {"token": token, "timeout": int(timeout), "lock": lock_path, "pending": base + ".pending",
           "commands": commands, "snapshot": snapshot_text}
    proc = None
    try:
        proc = subprocess.Popen([sys.executable, "-c", _WATCHER, token], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True,
                                start_new_session=True, cwd="/")
        proc.stdin.write(json.dumps(job).encode("utf-8"))
        proc.stdin.close()
        ready, _w, _x = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline().decode("ascii", "replace") if ready else ""
        proc.stdout.close()
        if line.strip() != "armed %d" % proc.pid:
            raise RollbackError("the rollback watcher did not start (%r)" % line.strip())
        record = {"token": token, "backend": backend, "table": table, "netns": netns_id(), "pid": proc.pid,
                  "created": time.time(), "timeout": int(timeout), "snapshot_file": snap_path,
                  "snapshot": snapshot_text}
        create_exclusive(base + ".pending", json.dumps(record).encode("utf-8"), 0o600, "rollback job")
    except (OSError, ValueError, FileError, RollbackError) as exc:
        if proc is not None and proc.poll() is None:
            proc.kill()
        for path in (snap_path, base + ".pending"):
            try:
                os.remove(path)
            except OSError:
                pass
        raise RollbackError("cannot arm the rollback timer in %s: %s; nothing was changed" % (state_dir, exc))
    return Timer(state_dir, token, int(timeout), snap_path, proc.pid)


def safe_token(token):
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        raise RollbackError("confirm_token %r is not a token returned by this module (expected "
                            "<backend>-<table>-<16 hex digits>, the rollback.token of an earlier run)" % (token,))
    return token


def token_owner(token):
    """(backend, table) named by a valid token."""
    backend, rest = safe_token(token).split("-", 1)
    return backend, rest.rsplit("-", 1)[0]


def confirm(token, state_dir=DEFAULT_DIR):
    """Keep the change of ``token`` (call under the :class:`Lock`).

    Returns "confirmed", "rolled_back" (too late), "superseded" (a later run
    took the timer over) or "unknown".
    """
    base = os.path.join(state_dir, safe_token(token))
    job = _read_job(base + ".pending")
    if job is not None and job.get("token") == token:
        _stop_watcher(job)
        _finish(state_dir, token, ".confirmed")
        return "confirmed"
    for suffix, status in ((".rolled-back", "rolled_back"), (".superseded", "superseded"),
                           (".confirmed", "confirmed"), (".cancelled", "cancelled")):
        if os.path.exists(base + suffix):
            return status
    return "unknown"


def fire(token, state_dir=DEFAULT_DIR):
    """Ask the watcher of ``token`` to restore now (SIGUSR1); False when it is not pending."""
    job = _read_job(os.path.join(state_dir, safe_token(token)) + ".pending")
    if not job or not isinstance(job.get("pid"), int):
        return False
    try:
        os.kill(job["pid"], signal.SIGUSR1)
    except OSError:
        return False
    return True


def prune(state_dir, backend, table, keep):
    """Delete the files of finished timers of this table beyond the newest ``keep``; returns the deleted tokens."""
    prefix = "%s-%s-" % (backend, table)
    finished = {}
    try:
        names = os.listdir(state_dir)
    except OSError:
        return []
    for name in names:
        token, dot, _rest = name.partition(".")
        if not (name.startswith(prefix) and TOKEN_RE.match(token)):
            continue
        path = os.path.join(state_dir, name)
        if name.endswith(".pending"):
            finished[token] = None          # never prune a pending timer
        elif finished.get(token, 0) is not None:
            try:
                finished[token] = max(finished.get(token) or 0, os.lstat(path).st_mtime)
            except OSError:
                pass
    done = sorted((t for t, m in finished.items() if m is not None), key=lambda t: finished[t], reverse=True)
    deleted = done[keep:] if keep >= 0 else []
    for token in deleted:
        for suffix in (".snapshot",) + _FINISHED:
            try:
                os.remove(os.path.join(state_dir, token + suffix))
            except OSError:
                pass
    return deleted

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What one egress_firewall task does, in order (the module only parses and reports).

1. Everything the user wrote is checked and the plan is built: bad input fails
   here, before any file or rule is touched.
2. The state directory is checked (a real directory owned by root, not
   writable by group or others) and the table's lock is taken.
3. Pending rollback timers of the same table are taken over.
4. The change is validated by the firewall's own checker, the snapshot is
   saved and the rollback timer armed; any failure so far changes nothing.
5. The change is applied and read back; a read-back that differs from the
   plan restores the snapshot at once.
"""

from __future__ import annotations

import os

from ansible_collections.mdmops.apple.plugins.module_utils._files import FileError, secure_state_dir, write_atomic
from ansible_collections.mdmops.apple.plugins.module_utils._firewall import _rollback
from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import (
    FirewallError, build_plan, comparable, describe, difference,
)

BACKEND_NAMES = ("nftables", "iptables", "firewalld")
DEFAULT_DROP_TIMEOUT = 120


def load_backend(name):
    """The backend class for ``name``; only that backend's module is imported."""
    if name == "nftables":
        from ansible_collections.mdmops.apple.plugins.module_utils._firewall._nftables import NftablesBackend
        return NftablesBackend
    if name == "iptables":
        from ansible_collections.mdmops.apple.plugins.module_utils._firewall._iptables import IptablesBackend
        return IptablesBackend
    if name == "firewalld":
        from ansible_collections.mdmops.apple.plugins.module_utils._firewall._firewalld import FirewalldBackend
        return FirewalldBackend
    raise FirewallError("unknown backend %r; use nftables, iptables or firewalld" % (name,))


def rollback_timeout(p):
    """The timer to arm: as given, or DEFAULT_DROP_TIMEOUT when a drop policy has none given (0 opts out)."""
    value = p.get("rollback_timeout")
    if value is None:
        return DEFAULT_DROP_TIMEOUT if p.get("state", "present") == "present" and p.get("default_policy") == "drop" else 0
    return value


def _state_dir(p):
    try:
        return secure_state_dir(p["state_dir"], "state_dir")
    except FileError as exc:
        raise FirewallError("%s; nothing was changed" % exc)


def _restore_commands(backend, which):
    out = []
    for argv in backend.restore_commands():
        if argv and not os.path.isabs(argv[0]) and which:
            argv = [which(argv[0]) or argv[0]] + list(argv[1:])
        out.append(list(argv))
    return out


def confirm(p, backend):
    """Confirm ``confirm_token`` and do nothing else."""
    _rollback.crash_point("confirm")     # test hook: the confirmation never reaches the host
    owner = _rollback.token_owner(p["confirm_token"])
    if owner != (backend.name, backend.table):
        raise FirewallError("confirm_token %s belongs to backend %s, table %s: pass the same backend and table "
                            "as the run that returned it" % (p["confirm_token"], owner[0], owner[1]))
    state_dir = _state_dir(p)
    with _rollback.Lock(state_dir, backend.name, backend.table, p["lock_timeout"]):
        status = _rollback.confirm(p["confirm_token"], state_dir)
        _rollback.prune(state_dir, backend.name, backend.table, p["keep_snapshots"])
    result = {"changed": False, "backend": backend.name,
              "rollback": {"token": p["confirm_token"], "pending": False, "status": status}}
    if status == "unknown":
        raise FirewallError("confirm_token %s: no rollback timer with this token in %s (was state_dir the same?)"
                            % (p["confirm_token"], state_dir))
    if status == "superseded":
        result["warnings"] = ["rollback %s was taken over by a later run of this module; that run's timer (or its "
                              "lack of one) decides" % p["confirm_token"]]
    return result


def run(p, backend, check_mode=False, which=None):
    """Run one task with module parameters ``p``; returns the result dict (raises FirewallError)."""
    if p.get("confirm_token"):
        return confirm(p, backend)
    timeout = rollback_timeout(p)
    plan = build_plan(p) if p["state"] == "present" else None
    want = backend.desired(plan) if plan is not None else None
    result = {"changed": False, "backend": backend.name}
    if plan is not None:
        result.update(elements=plan.element_text(4) + plan.element_text(6), ports=plan.ports(),
                      uncovered=plan.uncovered, dnsmasq=backend.dnsmasq_lines(plan))
    if check_mode:
        before = backend.read()
        result["changed"] = comparable(before) != comparable(want)
        _report(result, result["changed"], before, want if result["changed"] else before, plan)
        return result

    state_dir = _state_dir(p)
    with _rollback.Lock(state_dir, backend.name, backend.table, p["lock_timeout"]) as lock:
        _rollback.crash_point("locked")
        before = backend.read()
        changed = comparable(before) != comparable(want)
        if changed and plan is not None:
            backend.validate(plan)
        jobs = _rollback.pending_jobs(state_dir, backend.name, backend.table)
        snapshot = backend.snapshot() if (changed or (timeout and jobs)) else None
        timer = None
        if changed and p["backup"]:
            result["backup_file"] = _backup(state_dir, backend, snapshot)
        if timeout and (changed or jobs):
            try:
                # the oldest pending timer holds the state before any unconfirmed change: the new timer restores it
                timer = _rollback.arm(state_dir, backend.name, backend.table,
                                      jobs[0]["snapshot"] if jobs else snapshot,
                                      _restore_commands(backend, which), timeout, lock.path)
            except _rollback.RollbackError as exc:
                raise FirewallError(str(exc))
        superseded = _rollback.take_over(state_dir, jobs)
        warnings = []
        if superseded:
            warnings.append("this run took over the pending rollback timer(s) %s: %s" % (
                ", ".join(superseded), "its own timer restores the state before them unless confirmed" if timer
                else "they were stopped, so this run's state stays"))
        _rollback.crash_point("armed")
        after = before
        if changed:
            try:
                if plan is None:
                    backend.remove()
                else:
                    backend.apply(plan)
                _rollback.crash_point("applied")
                after = backend.read()
                if comparable(after) != comparable(want):
                    backend.restore(snapshot)
                    raise FirewallError("the %s state read back after applying differs from the plan, so the "
                                        "previous state was restored; differences:\n%s"
                                        % (backend.name, difference(want, after)))
            except FirewallError as exc:
                if timer is not None:
                    if superseded:
                        # it now stands in for the timers it took over: the unconfirmed state before us stays timed
                        raise FirewallError("%s; the rollback timer %s (which took over %s) still restores the last "
                                            "confirmed state in %d s unless confirmed"
                                            % (exc, timer.token, ", ".join(superseded), timer.timeout))
                    if comparable(_safe_read(backend)) == comparable(before):
                        timer.cancel()
                    else:
                        raise FirewallError("%s; the rollback timer %s restores the previous state in %d s"
                                            % (exc, timer.token, timer.timeout))
                raise
            _rollback.crash_point("verified")
        _rollback.prune(state_dir, backend.name, backend.table, p["keep_snapshots"])
    result["changed"] = changed or bool(superseded)
    if timer is not None:
        result["rollback"] = timer.result(superseded)
    elif superseded:
        result["rollback"] = {"pending": False, "superseded": superseded, "status": "superseded"}
    if warnings:
        result["warnings"] = warnings
    _report(result, changed, before, after, plan)
    return result


def _safe_read(backend):
    try:
        return backend.read()
    except FirewallError:
        return object()


def _report(result, changed, before, after, plan):
    if plan is not None:
        result["rules"] = [line for line in describe(after).splitlines() if line.startswith(("rule ", "chain "))]
        result["sets"] = dict((name, len(v)) for name, v in (after or {}).get("sets", {}).items())
    if changed:
        result["diff"] = {"before": describe(before), "after": describe(after)}


def _backup(state_dir, backend, snapshot):
    path = os.path.join(state_dir, "%s-%s.previous" % (backend.name, backend.table))
    try:
        return write_atomic(path, snapshot.encode("utf-8"), 0o600, "backup")
    except FileError as exc:
        raise FirewallError("%s; nothing was changed" % exc)

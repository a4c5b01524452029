# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interface every firewall backend implements, and the shared apply flow.

A backend only reads and writes firewall state; what to allow comes from the
:class:`~._plan.Plan`.  ``runner(argv, data=None) -> (rc, stdout, stderr)``
runs commands (AnsibleModule.run_command in the module).
"""

from __future__ import annotations

from ansible_collections.mdmops.apple.plugins.module_utils._firewall._plan import (
    DEFAULT_TABLE, FirewallError, comparable, difference,
)


class Backend(object):
    """Base class: subclasses implement the methods that raise NotImplementedError."""

    name = "base"
    commands = ()

    def __init__(self, runner, table=DEFAULT_TABLE, which=None):
        self.runner = runner
        self.table = table
        self.which = which

    def missing(self):
        """The first required command that is not installed, or None."""
        if self.which is None:
            return None
        for cmd in self.commands:
            if not self.which(cmd):
                return cmd
        return None

    # -- implemented by each backend --------------------------------------
    def desired(self, plan):
        """The state model our objects will have once ``plan`` is applied."""
        raise NotImplementedError

    def read(self):
        """Our objects as a state model, or None when none exist."""
        raise NotImplementedError

    def validate(self, plan):
        """Check ``plan`` with the firewall's own checker, changing nothing."""
        raise NotImplementedError

    def apply(self, plan):
        """Make the firewall hold ``plan``, atomically; on failure the old state stays."""
        raise NotImplementedError

    def snapshot(self):
        """Opaque text that :meth:`restore` (or :meth:`restore_commands`) turns back into today's state."""
        raise NotImplementedError

    def restore(self, snapshot):
        raise NotImplementedError

    def restore_commands(self):
        """argv lists that restore a snapshot given on their stdin (run by the rollback watcher)."""
        raise NotImplementedError

    def remove(self):
        """Remove every object of ours, and nothing else."""
        raise NotImplementedError

    def dnsmasq_lines(self, plan):
        return []


def converge(backend, plan, check_mode=False):
    """Bring ``backend`` to ``plan``; returns (changed, before_state, after_state, snapshot).

    Idempotent: compares the state read back with the desired one and changes
    nothing when they agree.  The plan is validated before anything changes;
    after applying, the state is read back and must equal the desired state,
    otherwise the snapshot is restored and the call fails.
    """
    before = backend.read()
    want = backend.desired(plan)
    if comparable(before) == comparable(want):
        return False, before, before, None
    if check_mode:
        return True, before, want, None
    backend.validate(plan)
    snap = backend.snapshot()
    backend.apply(plan)
    after = backend.read()
    if comparable(after) != comparable(want):
        backend.restore(snap)
        raise FirewallError("the %s state read back after applying differs from the plan, so the previous state "
                            "was restored; differences:\n%s" % (backend.name, difference(want, after)))
    return True, before, after, snap

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mdmops.apple.egress_firewall: confirm the rollback timer.

The module applies the change and, with ``rollback_timeout``, arms a timer on
the managed host that restores the previous rules.  Here, right after the
module returns, we open a new connection and confirm; if the new rules cut
us off, the confirmation fails and the host rolls back by itself.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

MODULE = "mdmops.apple.egress_firewall"


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        rollback = result.get("rollback") or {}
        if (result.get("failed") or not rollback.get("pending") or args.get("rollback_confirm", "auto") != "auto"):
            return result
        confirm_args = {"confirm_token": rollback["token"]}
        for key in ("backend", "table", "state_dir", "lock_timeout", "keep_snapshots"):
            if key in args:
                confirm_args[key] = args[key]
        try:
            # a fresh connection proves the controller can still reach the host under the new rules
            self._connection.reset()
            confirmed = self._execute_module(module_name=MODULE, module_args=confirm_args, task_vars=task_vars)
        except Exception as exc:  # pylint: disable=broad-except
            confirmed = {"failed": True, "msg": str(exc)}
        if confirmed.get("failed") or (confirmed.get("rollback") or {}).get("status") != "confirmed":
            result["failed"] = True
            result["msg"] = ("the firewall change was applied but could not be confirmed through a new connection "
                             "(%s); the host restores the previous rules by itself %d s after the change "
                             "(rollback token %s)"
                             % (confirmed.get("msg") or (confirmed.get("rollback") or {}).get("status"),
                                rollback.get("timeout", 0), rollback.get("token")))
        else:
            result["rollback"] = dict(rollback, pending=False, status="confirmed")
        return result

# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mdmops.apple.egress_firewall: confirm the rollback timer.

The module applies the change and, with ``rollback_timeout``, arms a timer on
the managed host that restores the previous rules.  Here, right after the
module returns, we open a new connection and confirm; if the new rules cut
us off, the confirmation fails and the host rolls back by itself.  What to
confirm and what the task then reports are pure functions of the module's
``_firewall/_rollback`` (the tests' module runner uses them too).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.mdmops.apple.plugins.module_utils._firewall._rollback import (
    confirmation_args, merge_confirmation)

MODULE = "mdmops.apple.egress_firewall"


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
        confirm_args = confirmation_args(args, result)
        if confirm_args is None:
            return result
        try:
            # a fresh connection proves the controller can still reach the host under the new rules
            self._connection.reset()
            confirmed = self._execute_module(module_name=MODULE, module_args=confirm_args, task_vars=task_vars)
        except Exception as exc:  # pylint: disable=broad-except
            confirmed = {"failed": True, "msg": str(exc)}
        return merge_confirmation(result, confirmed)

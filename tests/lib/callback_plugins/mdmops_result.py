"""Test-only callback: write each host's module result as JSON to $MDMOPS_RESULT_DIR/<host>.

It replaces the ad-hoc ``--tree`` option and the ``tree`` callback, both
deprecated in ansible-core 2.19 (removed in 2.23).  Works on 2.17 and later.
"""
from __future__ import annotations

import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mdmops_result"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result):
        directory = os.environ.get("MDMOPS_RESULT_DIR")
        if not directory:
            return
        host = getattr(result, "host", None) or result._host          # 2.19+: host; before: _host
        data = getattr(result, "result", None)
        if data is None:
            data = result._result
        with open(os.path.join(directory, host.get_name()), "w", encoding="utf-8") as handle:
            handle.write(self._dump_results(data))

    def v2_runner_on_ok(self, result):
        self._write(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result)

    def v2_runner_on_unreachable(self, result):
        self._write(result)

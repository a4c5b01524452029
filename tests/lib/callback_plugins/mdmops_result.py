"""Test-only callback: write each host's module results as JSON into $MDMOPS_RESULT_DIR.

``<host>.jsonl`` gets one line per task: {"task": name, "status": ok|failed|unreachable,
"crash": the module's traceback if an exception escaped it, or null, "result": the result}.
Callbacks no longer see the ``exception`` key of a result (ansible-core 2.19 moves it to
the task result's ``exception``), so a crash is written out separately.

It replaces the ad-hoc ``--tree`` option and the ``tree`` callback, both
deprecated in ansible-core 2.19 (removed in 2.23).  Works on 2.17 and later.
"""
from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "mdmops_result"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, status):
        directory = os.environ.get("MDMOPS_RESULT_DIR")
        if not directory:
            return
        host = getattr(result, "host", None) or result._host          # 2.19+: host; before: _host
        data = getattr(result, "result", None)
        if data is None:
            data = result._result
        name = getattr(result, "task_name", None) or result._task.get_name()
        record = {"task": name, "status": status, "crash": self._crash(result, data),
                  "result": json.loads(self._dump_results(data))}
        with open(os.path.join(directory, host.get_name() + ".jsonl"), "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    @staticmethod
    def _crash(result, data):
        """The module's own traceback when an exception escaped it (a crash, not a clean fail_json), else None.

        2.19+ keeps it as the innermost event of the task result's ErrorSummary (with
        ANSIBLE_DISPLAY_TRACEBACK=error; it also records the exception a module fails
        inside of, and the stack a clean fail_json was called from, which are no crash);
        before 2.19 a crash leaves the traceback in module_stderr or exception.
        """
        stderr = data.get("module_stderr") or ""
        if "Traceback" in stderr:
            return stderr
        summary = getattr(result, "exception", None)            # 2.19+: ErrorSummary
        event = getattr(summary, "event", None)
        while event is not None and getattr(event, "chain", None) is not None:
            event = event.chain.event
        text = getattr(event, "formatted_traceback", None) if event is not None else None
        if text is None and isinstance(data.get("exception"), str):
            text = data["exception"]                           # before 2.19
        if not text:
            return None
        if "MODULE FAILURE" in str(data.get("msg", "")):
            return text
        # 2.19 also records where a clean fail_json was called from: that stack ends with "Message: <msg>";
        # an exception that escaped the module ends with "<ExceptionType>: ..." after the AnsiballZ loader
        last = text.strip().splitlines()[-1]
        if "_ansiballz" in text.lower() and not last.startswith("Message: "):
            return text
        return None

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")

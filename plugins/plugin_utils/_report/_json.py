# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON report: the normalised probes, the summary, the certificates and the verdict."""
from __future__ import annotations

import json
from collections import OrderedDict

from ansible_collections.mdmops.apple.plugins.plugin_utils._report import build_report

FORMAT = "mdmops.apple.probe_report"
VERSION = 1


def report_dict(data, **kwargs):
    """The report as a mapping (what :func:`render_json` serialises)."""
    report = build_report(data, **kwargs)
    return OrderedDict([
        ("format", FORMAT),
        ("version", VERSION),
        ("title", report.title),
        ("generated_at", report.generated_iso),
        ("hostname", report.hostname),
        ("source", report.source),
        ("ok", report.ok),
        ("fail_on", list(report.fail_on)),
        ("summary", report.summary()),
        ("certificates", [OrderedDict((k, v) for k, v in c.items() if k != "not_after_epoch")
                          for c in report.certificates]),
        ("probes", report.probes),
    ])


def render_json(data, indent=2, **kwargs):
    """The JSON report as text (ASCII only: any string, however hostile, stays one JSON string)."""
    return json.dumps(report_dict(data, **kwargs), indent=indent, ensure_ascii=True, allow_nan=False) + "\n"

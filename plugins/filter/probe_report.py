# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn probe results into reports: probe_report, probe_json, probe_junit, probe_html, probe_prometheus.

Their documentation is in the YAML files beside this one (one per filter).
"""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.mdmops.apple.plugins.plugin_utils._report import ReportError
from ansible_collections.mdmops.apple.plugins.plugin_utils._report._html import render_html
from ansible_collections.mdmops.apple.plugins.plugin_utils._report._json import render_json, report_dict
from ansible_collections.mdmops.apple.plugins.plugin_utils._report._junit import render_junit
from ansible_collections.mdmops.apple.plugins.plugin_utils._report._prometheus import render_prometheus


def _plain(value):
    """Ansible's lazy and tagged containers as plain Python ones (the writers check types)."""
    if isinstance(value, dict):
        return dict((k, _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _wrap(name, writer):
    def run(data, fail_on=None, certificates=None, generated_at=None, title=None, hostname=None):
        try:
            return writer(_plain(data), fail_on=_plain(fail_on), certificates=_plain(certificates),
                          generated_at=generated_at, title=title, hostname=hostname)
        except ReportError as exc:
            raise AnsibleFilterError("mdmops.apple.%s: %s" % (name, exc))
    run.__name__ = name
    return run


def _report(data, **kwargs):
    return dict(report_dict(data, **kwargs))


class FilterModule(object):
    """Probe report writers."""

    def filters(self):
        return {
            "probe_report": _wrap("probe_report", _report),
            "probe_json": _wrap("probe_json", render_json),
            "probe_junit": _wrap("probe_junit", render_junit),
            "probe_html": _wrap("probe_html", render_html),
            "probe_prometheus": _wrap("probe_prometheus", render_prometheus),
        }

"""The filter plugins: names, arguments, and a clear error instead of a traceback."""
from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mdmops.apple.plugins.filter.probe_report import FilterModule

from . import samples

FILTERS = FilterModule().filters()


def test_names():
    assert sorted(FILTERS) == ["probe_html", "probe_json", "probe_junit", "probe_prometheus", "probe_report"]


def test_each_filter_takes_the_registered_result_and_options():
    result = samples.network_probe_result()
    kwargs = dict(fail_on=["refused"], certificates=samples.CERTIFICATE, generated_at=samples.GENERATED_AT,
                  title="Push from lab", hostname="mdm01")
    report = FILTERS["probe_report"](result, **kwargs)
    assert report["ok"] is False and report["title"] == "Push from lab"
    assert json.loads(FILTERS["probe_json"](result, **kwargs))["summary"]["failed"] == 1
    assert 'failures="1"' in FILTERS["probe_junit"](result, **kwargs)
    assert "<title>Push from lab from mdm01</title>" in FILTERS["probe_html"](result, **kwargs)
    assert "mdmops_apple_push_certificate_expiry_timestamp_seconds{" in FILTERS["probe_prometheus"](result, **kwargs)


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_bad_input_is_a_filter_error(name):
    with pytest.raises(AnsibleFilterError, match=r"mdmops.apple.%s: expected a list of probes" % name):
        FILTERS[name]("not probes")

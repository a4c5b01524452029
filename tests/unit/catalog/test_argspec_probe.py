"""Shared argument-spec builders and the probe's wildcard names."""
from __future__ import annotations

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils import _argspec
from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
from ansible_collections.mdmops.apple.plugins.module_utils._probe import concrete_name


def test_selection_spec_has_hosts_unless_asked_not_to():
    assert "hosts" in _argspec.catalog_selection_spec()
    assert "hosts" not in _argspec.catalog_selection_spec(hosts=False)
    assert _argspec.catalog_selection_spec()["services"]["default"] == ["all"]


def test_ip_versions_shape():
    spec = _argspec.ip_versions_spec()["ip_versions"]
    assert spec == {"type": "list", "elements": "int", "choices": [4, 6], "default": [4, 6]}
    assert _argspec.check_ip_versions([6, 4, 4]) == [4, 6]


@pytest.mark.parametrize("value", [[], [5], [0], [True], "4", None])
def test_bad_ip_versions(value):
    with pytest.raises(ValueError, match="ip_versions must list 4 and/or 6"):
        _argspec.check_ip_versions(value)


def test_every_wildcard_has_a_probe_name_and_names_override_it():
    cat = load_bundled()
    for host in cat.wildcard_hosts():
        assert concrete_name(host) == cat.probe_names()[host]
    assert concrete_name("*.icloud.com", {"*.icloud.com": "www.icloud.com"}) == "www.icloud.com"
    assert concrete_name("albert.apple.com") == "albert.apple.com"
    assert concrete_name("*.unknown.example", catalog_names={}) is None

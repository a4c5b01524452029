"""The network_catalog lookup, through real Ansible runs: the modules' selection code,
choices and messages (no traceback, no wrong success)."""
from __future__ import annotations

import json

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
from tests.lib.ansible_run import run_module


def lookup(terms, **kwargs):
    expr = "{{ query('mdmops.apple.network_catalog', %s%s) }}" % (
        ", ".join(json.dumps(t) for t in terms),
        "".join(", %s=%s" % (k, json.dumps(v)) for k, v in kwargs.items()))
    return run_module("ansible.builtin.debug", {"msg": expr})


def test_views_follow_the_selection():
    res = lookup(["hosts"], services=["push_provider"])
    assert res["_rc"] == 0 and res["msg"] == ["api.push.apple.com"], res["_stdout"]
    res = lookup(["hosts"], hosts=["1-courier.push.apple.com"])
    assert res["msg"] == ["*.push.apple.com"]
    res = lookup(["counts"], initiators=["mdm_servers"])
    assert res["msg"] == [load_bundled().select(initiators=["mdm_servers"]).counts()]


@pytest.mark.parametrize("terms,kwargs,message", [
    (["hosts"], {"services": []}, "services is empty"),
    (["hosts"], {"services": ["device_managment"]}, "Did you mean 'device_management'"),
    (["hosts"], {"protocols": ["icmp"]}, "protocol"),
    (["hosts"], {"hosts": ["x" * 1000]}, "longer than 253"),
    (["nope"], {}, "unknown view"),
    (["hosts"], {"include_retired": "maybe"}, "include_retired must be true or false"),
    (["hosts"], {"services": 5}, "services"),
    (["hosts"], {"hosts": {"a": 1}}, "hosts"),
])
def test_bad_input_is_the_modules_error(terms, kwargs, message):
    res = lookup(terms, **kwargs)
    assert res["_rc"] != 0 and message in res["_stdout"], res["_stdout"]
    assert "Traceback" not in res["_stdout"]

"""The network_catalog lookup, through real Ansible runs: the modules' selection code,
choices and messages (no traceback, no wrong success). Every lookup of this file is one
``debug`` task of a single ansible-playbook run (the lookup runs on the controller: no
module is involved, so one Ansible start-up serves them all)."""
from __future__ import annotations

import json

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._catalog import load_bundled
from tests.lib.ansible_run import run_tasks, task

GOOD = {
    "push hosts": (["hosts"], {"services": ["push_provider"]}),
    "hosts by name": (["hosts"], {"hosts": ["1-courier.push.apple.com"]}),
    "counts": (["counts"], {"initiators": ["mdm_servers"]}),
}
BAD = [
    (["hosts"], {"services": []}, "services is empty"),
    (["hosts"], {"services": ["device_managment"]}, "Did you mean 'device_management'"),
    (["hosts"], {"protocols": ["icmp"]}, "protocol"),
    (["hosts"], {"hosts": ["x" * 1000]}, "longer than 253"),
    (["nope"], {}, "unknown view"),
    (["hosts"], {"include_retired": "maybe"}, "include_retired must be true or false"),
    (["hosts"], {"services": 5}, "services"),
    (["hosts"], {"hosts": {"a": 1}}, "hosts"),
]


def _expr(terms, kwargs):
    return "{{ query('mdmops.apple.network_catalog', %s%s) }}" % (
        ", ".join(json.dumps(t) for t in terms),
        "".join(", %s=%s" % (k, json.dumps(v)) for k, v in kwargs.items()))


@pytest.fixture(scope="module")
def looked_up():
    cases = dict(GOOD, **{"bad %d" % n: (terms, kwargs) for n, (terms, kwargs, _m) in enumerate(BAD)})
    return run_tasks([task(name, "ansible.builtin.debug", {"msg": _expr(*case)}) for name, case in cases.items()],
                     tracebacks=False)     # as a user sees it: no traceback may show


def test_views_follow_the_selection(looked_up):
    res = looked_up["push hosts"]
    assert not res["failed"] and res["msg"] == ["api.push.apple.com"], res["_stdout"]
    assert looked_up["hosts by name"]["msg"] == ["*.push.apple.com"]
    assert looked_up["counts"]["msg"] == [load_bundled().select(initiators=["mdm_servers"]).counts()]


@pytest.mark.parametrize("n", range(len(BAD)), ids=[m for _t, _k, m in BAD])
def test_bad_input_is_the_modules_error(looked_up, n):
    res, message = looked_up["bad %d" % n], BAD[n][2]
    assert res["failed"] and message in res["_stdout"], res["_stdout"]
    assert "Traceback" not in res["_stdout"]

"""Rollback bookkeeping that needs no firewall: tokens, the lock, pruning (real timers: tests/integration/firewall)."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._firewall import _rollback


@pytest.mark.parametrize("token", ["../../etc/passwd", "", "nftables-x", "nftables-mdmops_apple-XYZ",
                                   "nftables-mdmops_apple-0123456789abcdef/..", 12, None])
def test_bad_tokens_fail_cleanly(token):
    with pytest.raises(_rollback.RollbackError) as exc:
        _rollback.safe_token(token)
    assert "not a token returned by this module" in str(exc.value)


def test_token_names_its_backend_and_table():
    assert _rollback.token_owner("iptables-my_table-0123456789abcdef") == ("iptables", "my_table")


def test_lock_waits_then_fails_clearly(tmp_path):
    with _rollback.Lock(str(tmp_path), "nftables", "t", timeout=5):
        with pytest.raises(_rollback.RollbackError) as exc:
            with _rollback.Lock(str(tmp_path), "nftables", "t", timeout=0.2):
                pass
        assert "nothing was changed" in str(exc.value) and "lock_timeout" in str(exc.value)
        with _rollback.Lock(str(tmp_path), "nftables", "other", timeout=0.2):   # another table: no wait
            pass
    with _rollback.Lock(str(tmp_path), "nftables", "t", timeout=0.2):          # released
        pass


def test_lock_refuses_a_planted_symlink(tmp_path):
    os.symlink("/etc/hostname", str(tmp_path / "nftables-t.lock"))
    with pytest.raises(_rollback.RollbackError):
        with _rollback.Lock(str(tmp_path), "nftables", "t", timeout=0.2):
            pass


def test_prune_keeps_the_newest_finished_and_every_pending(tmp_path):
    tokens = ["nftables-t-%016x" % n for n in range(8)]
    for n, token in enumerate(tokens):
        for suffix in (".snapshot", ".pending" if n == 0 else ".confirmed"):
            path = tmp_path / (token + suffix)
            path.write_text("x")
            os.utime(str(path), (1000 + n, 1000 + n))
    (tmp_path / "nftables-other-0000000000000001.snapshot").write_text("x")
    deleted = _rollback.prune(str(tmp_path), "nftables", "t", keep=3)
    assert sorted(deleted) == sorted(tokens[1:5])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert tokens[0] + ".pending" in left and tokens[7] + ".snapshot" in left
    assert "nftables-other-0000000000000001.snapshot" in left
    assert not any(p.startswith(tuple(tokens[1:5])) for p in left)


@pytest.mark.parametrize("name,absent", [("nftables", ["_iptables", "_firewalld"]), ("iptables", ["_nftables", "_firewalld"])])
def test_only_the_chosen_backend_is_imported(name, absent):
    import subprocess
    import sys
    code = ("import json, sys; from ansible_collections.mdmops.apple.plugins.module_utils._firewall import _run; "
            "_run.load_backend(%r); print(json.dumps(sorted(m.rsplit('.', 1)[1] for m in sys.modules if '._firewall.' in m))); "
            "print('urllib.request' in sys.modules)" % name)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))).stdout.splitlines()
    assert not set(absent) & set(json.loads(out[0]))
    assert out[1] == "False"


# -- what the action plugin confirms, and what the task then reports --------------------------------

PENDING = {"changed": True,
           "rollback": {"pending": True, "token": "nftables-mdmops_apple-0123456789abcdef", "timeout": 120,
                        "status": "pending"}}


def test_confirmation_args_take_the_token_and_the_options_that_find_the_timer():
    args = {"services": ["push_provider"], "default_policy": "drop", "state_dir": "/srv/fw", "table": "t",
            "lock_timeout": 5, "keep_snapshots": 2, "backend": "nftables"}
    assert _rollback.confirmation_args(args, PENDING) == {
        "confirm_token": "nftables-mdmops_apple-0123456789abcdef", "state_dir": "/srv/fw", "table": "t",
        "lock_timeout": 5, "keep_snapshots": 2, "backend": "nftables"}


@pytest.mark.parametrize("args, result", [
    ({"rollback_confirm": "manual"}, PENDING),                      # the user confirms later
    ({}, dict(PENDING, failed=True)),                               # the change failed
    ({}, {"changed": True}),                                        # no timer
    ({}, {"changed": False, "rollback": {"pending": False, "status": "confirmed"}}),
])
def test_nothing_to_confirm(args, result):
    assert _rollback.confirmation_args(args, result) is None


def test_a_confirmed_timer_is_reported_confirmed():
    merged = _rollback.merge_confirmation(PENDING, {"rollback": {"status": "confirmed"}})
    assert merged["rollback"] == dict(PENDING["rollback"], pending=False, status="confirmed")
    assert not merged.get("failed") and PENDING["rollback"]["pending"] is True      # the input is left alone


@pytest.mark.parametrize("confirmed, why", [
    ({"failed": True, "msg": "Failed to connect to the host"}, "Failed to connect to the host"),
    ({"rollback": {"status": "rolled_back"}}, "rolled_back"),
])
def test_an_unconfirmed_change_fails_and_says_the_host_restores_itself(confirmed, why):
    merged = _rollback.merge_confirmation(PENDING, confirmed)
    assert merged["failed"] is True and "(%s)" % why in merged["msg"]
    assert "restores the previous rules by itself 120 s after the change" in merged["msg"]
    assert "nftables-mdmops_apple-0123456789abcdef" in merged["msg"]

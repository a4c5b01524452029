"""_consoles/_rotate.py on each console emulator: first setup, idempotent re-run, renewal with a
backup and read-back, every refusal with the console unchanged (asserted on the emulator's request
log and state), check mode, an upload the console accepts but does not apply, and the servers that
cannot tell what they hold (never changed: false on a guess)."""
from __future__ import annotations

import datetime as dt
import os
import stat

import pytest

from ansible_collections.mdmops.apple.plugins.module_utils._consoles._base import ConsoleError, connect
from ansible_collections.mdmops.apple.plugins.module_utils._consoles._rotate import (
    RotationRefused,
    RotationSpec,
    rotate,
)
from lab.consoles import Emulator

KINDS = ("nanomdm", "micromdm")


@pytest.fixture(scope="module")
def pki(push_pki):
    return push_pki


def console_for(emu):
    return connect(emu.kind, emu.url, api_key=emu.api_key, ca_path=emu.ca_path, trust_env=False, timeout=5)


def spec(issued, key=True, **kw):
    return RotationSpec(cert=issued.cert, key=issued.key if key else None, **kw)


def puts(emu):
    return [r for r in emu.control.requests() if r["method"] == "PUT"]


@pytest.mark.parametrize("emulator", KINDS, indirect=True)
def test_lifecycle(emulator, pki, tmp_path):
    console = console_for(emulator)
    first = pki.push()
    with pytest.raises(RotationRefused, match="allow_new_topic") as err:       # first setup must be explicit
        rotate(console, spec(first))
    assert puts(emulator) == [] and "nothing was changed" in str(err.value)

    assert rotate(console, spec(first, allow_new_topic=True), check_mode=True).changed
    assert puts(emulator) == []                                               # check mode writes nothing

    done = rotate(console, spec(first, allow_new_topic=True))
    assert done.changed and done.uploaded and done.verified and len(puts(emulator)) == 1

    again = rotate(console, spec(first))                                       # idempotent: nothing sent
    assert not again.changed and again.verdict == "same" and len(puts(emulator)) == 1

    backups = tmp_path / "backups"
    backups.mkdir()
    renewal = pki.renewal(first)
    renewed = rotate(console, spec(renewal, expected_topic=first.topic, backup_dir=str(backups)))
    assert renewed.changed and renewed.verified and len(puts(emulator)) == 2
    assert renewed.diff()["before"]["topic"] == renewed.diff()["after"]["topic"] == first.topic
    files = sorted(os.listdir(backups))
    assert files and all(stat.S_IMODE(os.stat(backups / f).st_mode) == 0o600 for f in files)
    if emulator.kind == "micromdm":          # MicroMDM returns the certificate itself: it is kept
        assert any(f.endswith(".pem") for f in files)
        assert (backups / [f for f in files if f.endswith(".pem")][0]).read_bytes() == first.cert_pem()
    assert not any("PRIVATE" in (backups / f).read_text() for f in files)

    refusals = {
        "other Apple Account": (spec(pki.other_account()), "differs from the topic the console holds"
                                if emulator.kind == "micromdm" else "allow_new_topic"),
        # distinct expiry days: NanoMDM tells certificates apart by topic and expiry (to the second) only
        "key mismatch": (RotationSpec(cert=pki.renewal(renewal, days=400).cert, key=pki.mismatched_key()),
                         "does not belong"),
        "expired": (spec(pki.expired(first.topic)), "expired on"),
        "expiring": (spec(pki.expiring(first.topic, days_left=10)), "min_days_valid"),
        "downgrade": (spec(pki.push(first.topic, days=200)), "downgrade"),
        "not Apple's": (spec(pki.app_push()), "not an MDM push certificate"),
        "expected topic": (spec(pki.renewal(renewal, days=402), expected_topic=pki.new_topic()), "expected_topic"),
        "no key": (spec(pki.renewal(renewal, days=401), key=False), "private key"),
    }
    held_before = emulator.control.held()
    for name, (bad, words) in refusals.items():
        with pytest.raises(RotationRefused) as err:
            rotate(console, bad)
        assert words in str(err.value), name
        assert err.value.kind == "refused", name
    assert len(puts(emulator)) == 2 and emulator.control.held() == held_before


@pytest.mark.parametrize("emulator", KINDS, indirect=True)
def test_upload_accepted_but_not_applied_is_an_error(emulator, pki):
    console = console_for(emulator)
    first = pki.push()
    rotate(console, spec(first, allow_new_topic=True))
    emulator.control.set_faults([{"accept_not_apply": True, "method": "PUT"}])
    with pytest.raises(ConsoleError) as err:
        rotate(console, spec(pki.renewal(first)))
    assert err.value.kind == "not_applied" and "read back" in str(err.value)


@pytest.mark.parametrize("emulator", [("nanomdm", "old"), ("micromdm", "old")], indirect=True)
def test_servers_that_cannot_tell_never_report_unchanged(emulator, pki):
    console = console_for(emulator)
    first = pki.push()
    with pytest.raises(RotationRefused, match="cannot tell what it holds"):
        rotate(console, spec(first))
    assert puts(emulator) == []
    for round_ in range(2):
        result = rotate(console, spec(first, expected_topic=first.topic))
        assert result.changed and result.uploaded and result.verified is None, round_
        assert any("could not be verified" in w for w in result.warnings)
    assert len(puts(emulator)) == 2


def test_spec_time_is_honoured(pki, tmp_path, tls_files):
    """Guards judge validity at spec.at (the module passes now): a certificate valid today is expired
    a year and a half later."""
    with Emulator("micromdm", tmp_path / "s", tls_files=tls_files) as emu:
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=550)
        with pytest.raises(RotationRefused, match="expired"):
            rotate(console_for(emu), spec(pki.push(), allow_new_topic=True, at=later))

"""mdmops.apple.push_certificate (and push_certificate_info's console option) against the console
emulators on 127.0.0.1 (HTTPS under a test CA), one console per emulator (NanoMDM, MicroMDM, their
releases that cannot read back, Intune).

Two halves (the test's parameter, so that they run side by side): NanoMDM and Intune through real
Ansible, one ansible-playbook run, one host each, at -vvv with --diff, the console options from
``module_defaults`` (group/mdmops.apple.consoles); MicroMDM and the old releases through
tests/lib/module_runner.py (the module's own code, without the controller: a tenth of the CPU), the
same cases in the same order as the play (:func:`direct_current`, :func:`direct_old`).

Asserted on the module's answers and on the emulators' own request logs and stores: first setup
refused without allow_new_topic then accepted; check mode sends nothing; a re-run sends nothing;
a renewal uploads, backs up (0600) and reads back; each refusal sends nothing and leaves the
console as it was; throttling is retried; a wrong API key and an upload that is not applied fail
with a clear message; old servers are never reported unchanged; and no secret (API keys, private
keys in any encoding) appears anywhere in the output."""
from __future__ import annotations

import base64
import json
import os
import secrets
import stat

import pytest
from cryptography.hazmat.primitives import serialization

from lab.consoles import Emulator
from lab.consoles import intune as emi
from tests.lib.ansible_run import run_playbook, task
from tests.lib.module_runner import run_module_cases
from tests.lib.return_doc import check_return_doc, must_return

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTS = {"nanomdm": ("nanomdm", "current"), "micromdm": ("micromdm", "current"),
         "nanomdm-old": ("nanomdm", "old"), "micromdm-old": ("micromdm", "old"), "intune": ("intune", "intune")}
# two halves, run side by side by the test's parameter: through Ansible, and through tests/lib/module_runner.py
PARTS = {"ansible": ("nanomdm", "intune"), "direct": ("micromdm", "nanomdm-old", "micromdm-old")}
PC, INFO = "mdmops.apple.push_certificate", "mdmops.apple.push_certificate_info"
ONLY_OLD_SERVERS = ("held_before.reason", "held_after.reason")     # why a console cannot tell what it holds
REFUSALS = [  # (file stem, words the message must hold)
    ("other", "allow_new_topic"),
    ("mismatch", "does not belong"),
    ("expired", "expired on"),
    ("expiring", "a lower min_days_valid accepts it"),
    ("downgrade", "downgrade"),
    ("expected", "expected_topic"),
]  # (the remaining guards, e.g. not an MDM push certificate, are shown on the adapters in test_rotate.py)


def _key_pem(key, fmt=serialization.PrivateFormat.PKCS8):
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


def _secret_marks(key):
    """Strings that would betray ``key`` in output: lines of its PEM bodies (PKCS#8 and the PKCS#1 the
    MicroMDM adapter sends) and the base64 of those PEMs."""
    marks = set()
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = _key_pem(key, fmt)
        lines = pem.decode().splitlines()[1:-1]
        marks.update(lines[2:5])
        marks.add(base64.b64encode(pem).decode()[40:100])
    return marks


@pytest.fixture(scope="module")
def certs(push_pki, tmp_path_factory):
    pki = push_pki
    directory = tmp_path_factory.mktemp("push-certs")
    first = pki.push(days=360)
    renewal = pki.renewal(first, days=370)
    made = {
        "first": first, "renewal": renewal, "later": pki.renewal(first, days=380),
        "other": pki.other_account(days=390), "mismatch": pki.renewal(first, days=400),
        "expired": pki.expired(first.topic), "expiring": pki.expiring(first.topic, days_left=10),
        "downgrade": pki.push(first.topic, days=200),
        "expected": pki.renewal(first, days=402),
    }
    for stem, issued in made.items():
        issued.write(str(directory / (stem + ".pem")), str(directory / (stem + ".key")))
    wrong = pki.mismatched_key()
    (directory / "mismatch-wrong.key").write_bytes(_key_pem(wrong))
    marks = set()
    for issued in list(made.values()):
        marks |= _secret_marks(issued.key)
    marks |= _secret_marks(wrong)
    return {"dir": str(directory), "made": made, "topic": first.topic, "marks": marks,
            "other_topic": pki.new_topic()}


@pytest.mark.parametrize("part", PARTS)
def test_push_certificate_module(part, certs, tmp_path, tls_files, push_pki):
    made, hosts = certs["made"], PARTS[part]
    emulators = {}
    try:
        for host in hosts:
            kind, variant = HOSTS[host]
            emulators[host] = Emulator(kind, tmp_path / host, variant="current" if kind == "intune" else variant,
                                       tls_files=tls_files).start()
        results, backups = tmp_path / "results", tmp_path / "backups"
        shared = {
            "ansible_connection": "local", "ansible_python_interpreter": os.sys.executable,
            "ca_path": tls_files[2], "certs": certs["dir"], "topic": certs["topic"], "results_dir": str(results),
            "refusals": [{"cert": stem} for stem, _msg in REFUSALS if stem not in ("mismatch", "expected")]
            + [{"cert": "mismatch", "key": "mismatch-wrong"},
               {"cert": "expected", "expected_topic": certs["other_topic"]}]}
        wrong_key = secrets.token_urlsafe(16)
        hostvars = {}
        for host, emu in emulators.items():
            (backups / host).mkdir(parents=True)
            intune = emu.kind == "intune"
            hostvars[host] = {
                "kind": emu.kind, "variant": HOSTS[host][1], "url": emu.url, "api_key": "" if intune else emu.api_key,
                "tenant_id": emi.TENANT_ID if intune else "", "client_id": emi.CLIENT_ID if intune else "",
                "client_secret": emu.api_key if intune else "",
                "token_url": emu.url if intune else "https://login.microsoftonline.com",
                "state_dir": emu.control.state_dir, "backup_dir": str(backups / host), "wrong_api_key": wrong_key}
        results.mkdir()
        if part == "ansible":
            # what Apple's portal gives for Intune's own request: a certificate on the key Intune keeps
            intune_first = push_pki.push(key=emi.tenant_key(emulators["intune"].control, push_pki.keys[0]))
            intune_first.write(str(tmp_path / "intune-first.pem"))
            (tmp_path / "inventory.json").write_text(json.dumps({"all": {
                "hosts": hostvars, "vars": dict(shared, intune_cert=str(tmp_path / "intune-first.pem"))}}))
            proc = run_playbook(os.path.join(HERE, "push_certificate_play.yml"),
                                inventory=str(tmp_path / "inventory.json"), diff=True,
                                env={"ANSIBLE_VERBOSITY": "3", "ANSIBLE_DEBUG": "0", "ANSIBLE_FORKS": "2",
                                     "ANSIBLE_PIPELINING": "1"})
            output = proc.stdout + proc.stderr
            assert proc.returncode == 0, output[-6000:]
            got = {host: json.loads((results / (host + ".json")).read_text()) for host in hosts}
        else:
            direct_output, got = [], {}
            for host in hosts:
                run = direct_current if HOSTS[host][1] == "current" else direct_old
                got[host] = run(emulators[host], hostvars[host], shared, direct_output)
            output = "\n".join(direct_output)

        # -- no secret anywhere in the output (-vvv --diff through Ansible) ------------------
        for host, emu in emulators.items():
            assert emu.api_key not in output, host
        assert wrong_key not in output
        assert "PRIVATE KEY-----" not in output
        leaked = [mark for mark in certs["marks"] if mark in output]
        assert not leaked, leaked[:3]

        for host in hosts:
            if HOSTS[host][1] == "current":
                check_current(host, got[host], emulators[host], made, backups / host, certs["topic"])
            elif HOSTS[host][1] == "old":
                check_old(host, got[host], emulators[host])
                # (ansible-core 2.19 modules answer each warning as an object with its text under "msg")
                warnings = json.dumps([run.get("warnings", []) for run in got[host]["old_uploads"]])
                title = {"nanomdm": "NanoMDM", "micromdm": "MicroMDM"}[HOSTS[host][0]]
                assert title + " cannot be read back" in warnings and "could not be verified" in warnings, host
            else:
                check_intune(got[host], emulators[host], intune_first)

        # what the module returned agrees with its RETURN documentation, and the two halves return every
        # documented key: through Ansible all but what only a console that cannot read back returns
        if part == "ansible":
            nano = got["nanomdm"]
            check_return_doc("push_certificate", *map(_module_result, [
                nano["first"], nano["same"], nano["renewal"], nano["first_refused"], nano["refused"][0],
                nano["not_applied"], got["intune"]["uploads"][0]]), exhaustive=True, elsewhere=ONLY_OLD_SERVERS)
        else:
            must_return("push_certificate", ONLY_OLD_SERVERS, *map(_module_result, [
                got["micromdm"]["renewal"], got["micromdm"]["refused"][0], got["nanomdm-old"]["old_uploads"][0],
                got["micromdm-old"]["old_refused"]]))
    finally:
        for emu in emulators.values():
            emu.stop()


def _direct_args(hostvars, shared, **args):
    """What the play's module_defaults give a console of ``hostvars`` (the Intune keys are for Intune only)."""
    out = {"console": hostvars["kind"], "url": hostvars["url"], "api_key": hostvars["api_key"],
           "ca_path": shared["ca_path"], "timeout": 10}
    out.update(args)
    return out


def _run(cases, output):
    """``cases`` (name, module, args[, check]) through the module runner in diff mode, as the play
    runs them (--diff); every case's output goes to ``output``; {name: result}."""
    results = run_module_cases([task(name, module, args, check=bool(mode and mode[0]), diff=True)
                                for name, module, args, *mode in cases], timeout=60, ordered=True)
    for name, result in results.items():
        assert result["_crash"] is None, (name, result["_crash"])
        output.append(result["_stdout"])
    return results


def direct_current(emu, hostvars, shared, output):
    """The play's block for a current server, through the module runner: the same cases, in order."""
    certs = shared["certs"]

    def pair(stem, key=None, **more):
        return _direct_args(hostvars, shared, certificate_path="%s/%s.pem" % (certs, stem),
                            privatekey_path="%s/%s.key" % (certs, key or stem), **more)
    with open(os.path.join(certs, "first.pem")) as cert, open(os.path.join(certs, "first.key")) as key:
        first_content = cert.read().strip() + "\n" + key.read().strip()
    got = _run([
        ("first_refused", PC, pair("first")),
        ("first_check", PC, pair("first", allow_new_topic=True), True),
        ("first", PC, pair("first", allow_new_topic=True)),
        ("same", PC, _direct_args(hostvars, shared, certificate_content=first_content)),
        ("info", INFO, _direct_args(hostvars, shared, path="%s/first.pem" % certs)),
        ("renewal", PC, pair("renewal", expected_topic=shared["topic"], backup_dir=hostvars["backup_dir"])),
    ] + [("refused %d" % n, PC, pair(item["cert"], item.get("key"), backup_dir=hostvars["backup_dir"],
                                     **({"expected_topic": item["expected_topic"]} if "expected_topic" in item else {})))
         for n, item in enumerate(shared["refusals"])], output)
    got["refused"] = [dict(got.pop("refused %d" % n), item=item) for n, item in enumerate(shared["refusals"])]
    emu.control.set_faults([{"status": 429, "retry_after": "0", "method": "GET"}, {"status": 429, "method": "GET"}])
    got.update(_run([("throttled", PC, pair("renewal")),
                     ("auth", PC, dict(pair("renewal"), api_key=hostvars["wrong_api_key"]))], output))
    emu.control.set_faults([{"accept_not_apply": True, "method": "PUT"}])
    got.update(_run([("not_applied", PC, pair("later"))], output))
    return got


def direct_old(emu, hostvars, shared, output):
    """The play's block for an old server (it cannot tell what it holds), through the module runner."""
    del emu     # nothing to set up on it
    certs = shared["certs"]
    pair = _direct_args(hostvars, shared, certificate_path=certs + "/first.pem", privatekey_path=certs + "/first.key")
    got = _run([("old_refused", PC, pair),
                ("old_upload 1", PC, dict(pair, expected_topic=shared["topic"])),
                ("old_upload 2", PC, dict(pair, expected_topic=shared["topic"])),
                ("old_info", INFO, _direct_args(hostvars, shared, topic=shared["topic"]))], output)
    got["old_uploads"] = [got.pop("old_upload 1"), got.pop("old_upload 2")]
    return got


def _module_result(registered):
    """A registered result as the module returned it: without what a loop or the module runner adds, nor the placeholder
    ``exception`` ansible-core 2.19 adds to a failed task at -vvv (a real traceback is kept, and fails)."""
    return {k: v for k, v in registered.items()
            if k not in ("item", "ansible_loop_var", "_ansible_item_label", "_ansible_ignore_errors",
                         "_stdout", "_crash", "_rc", "_runner")
            and not (k == "exception" and v == "(traceback unavailable)")}


def puts(emu):
    return [r for r in emu.control.requests() if r["method"] == "PUT"]


def check_current(host, r, emu, made, backups, topic):
    first, renewal = made["first"], made["renewal"]
    # first setup: refused without allow_new_topic, naming it
    assert r["first_refused"]["failed"] and "allow_new_topic" in r["first_refused"]["msg"], host
    assert "nothing was changed" in r["first_refused"]["msg"]
    # check mode: changed, nothing uploaded; the diff shows the new topic/serial/expiry, nothing else
    check = r["first_check"]
    assert check["changed"] and not check["uploaded"], host
    assert check["diff"]["before"] == {"topic": None, "serial_number": None, "not_after": None}, host
    assert check["diff"]["after"]["topic"] == topic
    assert check["diff"]["after"]["serial_number"] == str(first.cert.serial_number)
    # first setup, then the same certificate: nothing sent
    assert r["first"]["changed"] and r["first"]["uploaded"] and r["first"]["verified"], host
    assert not r["same"]["changed"] and not r["same"]["uploaded"], host
    assert r["same"]["comparison"]["verdict"] == "same"
    # push_certificate_info reads the console
    held = r["info"]["console_certificate"]
    assert held["holds"] and held["topic"] == topic and held["days_remaining"] >= 358, host
    assert held["comparison"]["verdict"] == "same" and r["info"]["topic"] == topic
    if host == "micromdm":
        assert held["serial_number"] == str(first.cert.serial_number)
    # renewal: changed, backed up 0600, read back, diff old -> new
    renewed = r["renewal"]
    assert renewed["changed"] and renewed["uploaded"] and renewed["verified"], host
    assert renewed["diff"]["before"]["topic"] == renewed["diff"]["after"]["topic"] == topic
    assert renewed["diff"]["after"]["serial_number"] == str(renewal.cert.serial_number)
    assert renewed["backup_path"] and os.path.dirname(renewed["backup_path"]) == str(backups)
    files = sorted(os.listdir(backups))
    assert files and all(stat.S_IMODE(os.stat(backups / f).st_mode) == 0o600 for f in files), files
    assert not any("PRIVATE" in (backups / f).read_text() for f in files)
    # every refusal: failed, names why, nothing sent, no backup written
    assert len(r["refused"]) == len(REFUSALS)
    for item in r["refused"]:
        stem = item["item"]["cert"]
        words = dict(REFUSALS)[stem]
        assert item["failed"] and words in item["msg"], (host, stem, item.get("msg"))
        assert "nothing was changed" in item["msg"] and item["refusals"], (host, stem)
        assert item["step"] == "guard"
    other = [i for i in r["refused"] if i["item"]["cert"] == "other"][0]
    if host == "micromdm":      # one certificate per server: a topic change, naming what it holds
        assert "differs from the topic the console holds, %s" % topic in other["msg"]
    assert len(os.listdir(backups)) == len(files)
    # throttled: retried, then unchanged
    assert not r["throttled"]["changed"] and not r["throttled"].get("failed"), host
    statuses = [q["status"] for q in emu.control.requests() if q.get("fault")]
    assert statuses[:2] == [429, 429], statuses
    # wrong API key
    assert r["auth"]["failed"] and r["auth"]["status"] == 401 and "refused the credentials" in r["auth"]["msg"]
    # accepted but not applied: a loud failure
    assert r["not_applied"]["failed"] and "read back" in r["not_applied"]["msg"], host
    assert r["not_applied"]["step"] == "read back"
    # the emulator received exactly three uploads (first, renewal, the one not applied) and holds the renewal
    assert len(puts(emu)) == 3, [(q["method"], q["status"]) for q in emu.control.requests()]
    assert len(emu.control.writes()) == 2
    assert renewal.cert_pem().decode().splitlines()[5] in json.dumps(emu.control.held()), host


def check_old(host, r, emu):
    assert r["old_refused"]["failed"] and "cannot tell what it holds" in r["old_refused"]["msg"], host
    for run in r["old_uploads"]:
        assert run["changed"] and run["uploaded"] and run["verified"] is None, host
    held = r["old_info"]["console_certificate"]
    assert held["known"] is False and held["holds"] is None and held["reason"], host
    assert len(puts(emu)) == 2


def check_intune(r, emu, issued):
    assert r["no_apple_id"]["failed"] and "apple_id is required" in r["no_apple_id"]["msg"]
    first, again = r["uploads"]
    assert first["changed"] and first["uploaded"] and first["verified"]
    assert not again["changed"] and again["comparison"]["verdict"] == "same"
    held = r["info"]["console_certificate"]
    assert held["apple_id"] == "mdm-admin@example.com" and held["topic"] == issued.topic
    assert held["serial_number"] == str(issued.cert.serial_number) and held["comparison"]["verdict"] == "same"
    patches = [q for q in emu.control.requests() if q["method"] == "PATCH"]
    assert len(patches) == 1, patches
    assert emu.api_key not in json.dumps(emu.control.requests())

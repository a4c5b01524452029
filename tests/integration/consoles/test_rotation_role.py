"""The push_certificate role through the rotate_push_certificate playbook, in one run from corp against
the lab's console emulators (in net, HTTPS under the lab CA), one certificate for several consoles:

* NanoMDM holding last year's certificate: the renewal is backed up, uploaded, read back, and
  accepted by the lab's APNs provider API (push_certificate_verify_push);
* MicroMDM holding a certificate of another topic (another Apple Account): refused before any write;
* Intune (Microsoft Graph, OAuth2) with its own certificate, on the key Intune keeps: renewed, no key
  sent, the Apple Account recorded;
* a console whose TLS certificate cannot be verified: failed, reported, and neither stops nor hides
  the others;
* an old NanoMDM (no read route: it cannot tell what it holds) whose storage fails the upload (500):
  checked on expected_topic alone, then failed in the second pass, its store unchanged.

Asserted on the emulators' own request logs and stores, the JSON report, the backup file, and the
output at -vvv (no API key, no key material)."""
from __future__ import annotations

import json
import os
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lab import consoles
from lab.apns import lab_push_pki
from lab.consoles import intune as emi
from tests.lib.ansible_run import run_playbook

pytestmark = pytest.mark.lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PLAYBOOK = os.path.join(REPO, "playbooks", "rotate_push_certificate.yml")


def _write(path, data: bytes) -> str:
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return str(path)


def _stored_serial(pem: str) -> str:
    return str(x509.load_pem_x509_certificate(pem.encode()).serial_number)


def test_rotation_playbook_updates_refuses_and_reports_each_console(lab, tmp_path):
    nano, micro, graph = consoles.start(lab, "nanomdm"), consoles.start(lab, "micromdm"), consoles.start(lab, "intune")
    old = consoles.start(lab, "nanomdm-old")
    try:
        pki = lab_push_pki(lab)            # the push CAs the lab's APNs emulator trusts
        current = pki.push(days=200)
        renewal = pki.renewal(current, days=365)
        other = pki.push(days=300)         # another Apple Account's topic
        nano.control.set_held({current.topic: {"cert_pem": current.cert_pem().decode(),
                                               "key_pem": current.key_pem().decode(), "stored_at": ""}})
        pkcs1 = other.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption())      # what MicroMDM stores and parses
        micro.control.set_held({"cert_pem": other.cert_pem().decode(), "key_pem": pkcs1.decode()})
        old.control.set_held(nano.control.held())
        old.control.set_faults([{"method": "PUT", "status": 500, "error": "storage: no space left on device"}])
        # Intune keeps the key of its own request: its certificates are on that key, with their own topic
        intune_key = emi.tenant_key(graph.control)
        intune_current = pki.push(key=intune_key, days=100)
        intune_renewal = pki.renewal(intune_current, keep_key=True, days=365)
        graph.control.set_held(dict(graph.control.held(), cert_pem=intune_current.cert_pem().decode(),
                                    apple_id="mdm@example.com", upload_status="Succeeded"))
        backups = tmp_path / "backups"
        backups.mkdir(mode=0o700)
        report = tmp_path / "report.json"
        inventory = tmp_path / "inventory.ini"
        inventory.write_text("corp ansible_connection=local ansible_python_interpreter=%s\n"
                             "dev ansible_connection=local ansible_python_interpreter=%s\n"
                             % (lab.interpreter("corp"), lab.interpreter("dev")))
        host_vars = tmp_path / "host_vars"
        host_vars.mkdir()
        (host_vars / "corp.yml").write_text(json.dumps({
            "push_certificate_consoles": [
                {"name": "prod nanomdm", "console": "nanomdm", "url": nano.url, "api_key": nano.api_key},
                {"name": "test micromdm", "console": "micromdm", "url": micro.url, "password": micro.api_key},
                {"name": "intune", "console": "intune", "url": graph.url, "token_url": graph.url,
                 "tenant_id": emi.TENANT_ID, "client_id": emi.CLIENT_ID, "client_secret": graph.api_key,
                 "apple_id": "mdm@example.com", "expected_topic": intune_current.topic, "privatekey_path": None,
                 "certificate_path": _write(tmp_path / "intune.pem", intune_renewal.cert_pem())},
                {"name": "old nanomdm", "console": "nanomdm", "url": old.url, "api_key": old.api_key},
                # a console whose TLS certificate this host cannot verify (the lab CA not given: system store)
                {"name": "untrusted", "console": "nanomdm", "url": nano.url, "api_key": "k-untrusted", "ca_path": None},
            ],
            "push_certificate_certificate_path": _write(tmp_path / "renewal.pem", renewal.cert_pem()),
            "push_certificate_privatekey_path": _write(tmp_path / "renewal.key", renewal.key_pem()),
            "push_certificate_expected_topic": current.topic,
            "push_certificate_ca_path": lab.ca_path,
            "push_certificate_backup_dir": str(backups),
            "push_certificate_report_path": str(report),
            "push_certificate_verify_push": True,
            "push_certificate_verify_push_options": {"ca_path": lab.ca_path, "timeout": 5},
        }))
        proc = run_playbook(PLAYBOOK, inventory=str(inventory), env={"ANSIBLE_VERBOSITY": "3"})
        out = proc.stdout + proc.stderr
        (tmp_path / "output.txt").write_text(out)      # kept for a failing run

        # the play fails, at the end, naming the two consoles not updated; dev (no consoles) is skipped
        assert proc.returncode != 0, out[-3000:]
        assert "3 of 5 console(s) not updated: test micromdm, old nanomdm, untrusted" in out, out[-4000:]
        results = {r["name"]: r for r in json.loads(report.read_text())["consoles"]}

        # NanoMDM: updated, its own store holds the renewal, one write, the old one backed up 0600
        done = results["prod nanomdm"]
        assert done["status"] == "updated", done
        assert done["held_before"]["not_after"][:19] == current.cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S")
        assert done["held_after"]["not_after"] == done["new"]["not_after"]
        assert done["new"]["serial_number"] == str(renewal.cert.serial_number)
        assert done["verified"] is True
        assert _stored_serial(nano.control.held()[current.topic]["cert_pem"]) == str(renewal.cert.serial_number)
        assert [r["method"] for r in nano.control.writes()] == ["PUT"]
        assert os.path.dirname(done["backup_path"]) == str(backups)
        assert stat.S_IMODE(os.stat(done["backup_path"]).st_mode) == 0o600
        assert json.loads(open(done["backup_path"]).read())["topic"] == current.topic
        assert done["push"] == {"ok": True, "probes": ["ok"]}, done     # the lab's APNs accepted the renewal

        # Intune: renewed with its own certificate, the certificate alone sent (the key stays in Intune)
        renewed = results["intune"]
        assert renewed["status"] == "updated" and renewed["verified"] is True, renewed
        assert emi.held_certificate(graph.control).serial_number == intune_renewal.cert.serial_number
        assert graph.control.held()["apple_id"] == "mdm@example.com"
        assert renewed["push"] is None and any("keeps the private key" in w for w in renewed["warnings"]), renewed

        # MicroMDM: refused before any write, the message names both topics; the emulator got no PUT
        refused = results["test micromdm"]
        assert refused["status"] == "refused", refused
        assert other.topic in refused["msg"] and renewal.topic in refused["msg"]
        assert "allow_new_topic" in refused["msg"]
        assert [r["method"] for r in micro.control.requests() if r["method"] != "GET"] == []
        assert _stored_serial(micro.control.held()["cert_pem"]) == str(other.cert.serial_number)

        # the old NanoMDM: it could not tell what it held (checked on expected_topic), the upload failed (500)
        # in the second pass; reported with the console's answer, its store unchanged
        failed = results["old nanomdm"]
        assert failed["status"] == "failed" and "500" in failed["msg"] and "no space left" in failed["msg"], failed
        assert failed["held_before"]["known"] is False
        assert any("expected_topic" in w for w in failed["warnings"]), failed
        assert [(r["method"], r["status"]) for r in old.control.requests() if r["method"] == "PUT"] == [("PUT", 500)]
        assert _stored_serial(old.control.held()[current.topic]["cert_pem"]) == str(current.cert.serial_number)

        # the console this host cannot trust: failed, with the reason and the remedy; nothing sent to it
        untrusted = results["untrusted"]
        assert untrusted["status"] == "failed" and "ca_path" in untrusted["msg"], untrusted

        # the summary line of each, and no secret anywhere at -vvv
        assert "prod nanomdm: UPDATED" in out and "test micromdm: REFUSED" in out and "untrusted: FAILED" in out
        assert "old nanomdm: FAILED" in out
        for secret in (nano.api_key, micro.api_key, graph.api_key, old.api_key, "k-untrusted"):
            assert secret not in out
        assert "PRIVATE KEY" not in out
    finally:
        for endpoint in (nano, micro, graph, old):
            lab.stop(endpoint.process)


PLAY = """- hosts: corp
  gather_facts: false
  tasks:
    - name: Phase request
      ansible.builtin.include_role:
        name: mdmops.apple.push_certificate
      vars:
        push_certificate_phase: request
        push_certificate_fail_on_error: false
        push_certificate_privatekey_path: %(dir)s/new.key
        push_certificate_csr_path: %(dir)s/new.csr
        push_certificate_next_steps_path: %(dir)s/NEXT_STEPS.txt
    - name: Keep the results of the request phase
      ansible.builtin.copy:
        content: "{{ push_certificate_results | to_json }}"
        dest: %(dir)s/request.json
        mode: "0644"
    - name: Phase install, dry run, with the renewal
      ansible.builtin.include_role:
        name: mdmops.apple.push_certificate
      vars:
        push_certificate_dry_run: true
        push_certificate_fail_on_error: false
        push_certificate_certificate_path: %(dir)s/renewal.pem
        push_certificate_privatekey_path: %(dir)s/renewal.key
        push_certificate_report_path: %(dir)s/dry.json
"""


def test_request_phase_then_dry_run_write_nothing_to_the_consoles(lab, tmp_path):
    nano, micro, graph = consoles.start(lab, "nanomdm"), consoles.start(lab, "micromdm"), consoles.start(lab, "intune")
    try:
        pki = lab_push_pki(lab)
        current = pki.push(days=200)
        renewal = pki.renewal(current, days=365)
        nano.control.set_held({current.topic: {"cert_pem": current.cert_pem().decode(),
                                               "key_pem": current.key_pem().decode(), "stored_at": ""}})
        _write(tmp_path / "renewal.pem", renewal.cert_pem())
        _write(tmp_path / "renewal.key", renewal.key_pem())
        intune = {"console": "intune", "url": graph.url, "token_url": graph.url, "tenant_id": emi.TENANT_ID,
                  "client_id": emi.CLIENT_ID, "client_secret": graph.api_key, "apple_id": "mdm@example.com"}
        inventory = tmp_path / "inventory.ini"
        inventory.write_text("corp ansible_connection=local ansible_python_interpreter=%s\n" % lab.interpreter("corp"))
        (tmp_path / "host_vars").mkdir()
        (tmp_path / "host_vars" / "corp.yml").write_text(json.dumps({
            "push_certificate_consoles": [
                {"name": "prod nanomdm", "console": "nanomdm", "url": nano.url, "api_key": nano.api_key},
                {"name": "new micromdm", "console": "micromdm", "url": micro.url, "api_key": micro.api_key},
                # Intune makes its own request: downloaded to a path of its own; a shared path is refused
                dict(intune, name="intune", csr_path=str(tmp_path / "intune.csr")),
                dict(intune, name="intune sharing a path", csr_path=str(tmp_path / "new.csr")),
            ],
            "push_certificate_expected_topic": current.topic,
            "push_certificate_ca_path": lab.ca_path,
        }))
        play = tmp_path / "play.yml"
        play.write_text(PLAY % {"dir": tmp_path})
        proc = run_playbook(str(play), inventory=str(inventory))
        out = proc.stdout + proc.stderr
        (tmp_path / "output.txt").write_text(out)
        assert proc.returncode == 0, out[-4000:]

        # request: a new key (0600) and its CSR, the next steps naming the topic to keep and the files
        requested = {r["name"]: r for r in json.loads((tmp_path / "request.json").read_text())}
        shared = requested.pop("intune sharing a path")
        assert shared["status"] == "failed" and "a csr_path of its own" in shared["msg"], shared
        assert all(r["status"] == "requested" for r in requested.values()), requested
        # Intune's own request (Graph's downloadApplePushNotificationCertificateSigningRequest), on its key
        csr = x509.load_pem_x509_csr((tmp_path / "intune.csr").read_bytes())
        assert csr.public_key().public_numbers() == emi.tenant_key(graph.control).public_key().public_numbers()
        assert requested["intune"]["csr_path"] == str(tmp_path / "intune.csr")
        assert "Upload the signing request intune made (it keeps the key), downloaded to %s" % (tmp_path / "intune.csr") \
            in (tmp_path / "NEXT_STEPS.txt").read_text()
        assert graph.control.writes() == []
        assert stat.S_IMODE(os.stat(tmp_path / "new.key").st_mode) == 0o600
        assert (tmp_path / "new.csr").read_text().startswith("-----BEGIN CERTIFICATE REQUEST-----")
        steps = (tmp_path / "NEXT_STEPS.txt").read_text()
        assert "holds topic %s" % current.topic in steps and "Renew" in steps
        assert "push_certificate_expected_topic=%s" % current.topic in steps
        assert "holds no push certificate: this is a first setup" in steps     # the empty MicroMDM
        assert "2. Choose Create a Certificate." in steps and "push_certificate_allow_new_topic=true" in steps
        assert str(tmp_path / "new.csr") in steps

        # dry run: the renewal would go to NanoMDM, MicroMDM (holds nothing) is refused; nothing written
        dry = {r["name"]: r for r in json.loads((tmp_path / "dry.json").read_text())["consoles"]}
        assert dry["prod nanomdm"]["status"] == "pending", dry
        assert dry["new micromdm"]["status"] == "refused" and "allow_new_topic" in dry["new micromdm"]["msg"]
        assert "prod nanomdm: WOULD UPDATE" in out
        assert nano.control.writes() == [] and micro.control.writes() == []
        assert nano.api_key not in out and micro.api_key not in out
    finally:
        lab.stop(nano.process)
        lab.stop(micro.process)
        lab.stop(graph.process)

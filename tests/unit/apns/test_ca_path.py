"""_tls.ca_path_error: the one check of a ca_path option (network_probe, push_connectivity, the consoles)."""
from __future__ import annotations

import os

from ansible_collections.mdmops.apple.plugins.module_utils._apns._tls import ca_path_error
from lab.pki import make_ca


def test_a_pem_file_of_ca_certificates_is_accepted(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_ca("Test Root CA").cert_pem())
    assert ca_path_error(str(ca)) is None


def test_a_directory_is_accepted_without_loading(tmp_path):
    assert ca_path_error(str(tmp_path)) is None


def test_a_missing_path_names_the_option_and_the_fix(tmp_path):
    msg = ca_path_error(str(tmp_path / "nope.pem"))
    assert msg.startswith("ca_path %s does not exist" % (tmp_path / "nope.pem"))
    assert "system store" in msg


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    os.mkfifo(str(tmp_path / "fifo"))       # opening it would block: the check must not
    msg = ca_path_error(str(tmp_path / "fifo"))
    assert msg.startswith("ca_path %s is a FIFO (named pipe), neither a PEM file nor a certificate directory"
                          % (tmp_path / "fifo"))


def test_a_file_without_a_certificate_is_refused_before_anything_is_sent(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    msg = ca_path_error(str(junk))
    assert msg.startswith("ca_path %s holds no usable trust anchors" % junk)
    assert ca_path_error(str(junk), load=False) is None      # network_probe without tls loads nothing

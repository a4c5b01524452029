# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # A push certificate given as a file or inline content, with its private key.
    # Argument spec: plugins/module_utils/_push/_args.py (certificate_input_spec, certificate_input_constraints).
    DOCUMENTATION = r'''
options:
  path:
    description:
      - Path of the certificate file on the managed host.
      - PEM (the certificate alone, with its key, or with a chain), DER, or PKCS#12; the format is detected
        from the content unless O(format) is set.
      - Only a regular file is read (a FIFO, a device or a directory is refused), at most 1 MiB.
      - Exactly one of O(path) and O(content) is required.
    type: path
  content:
    description:
      - The certificate itself, as PEM text, or base64 of a DER certificate or of a PKCS#12 file.
      - Exactly one of O(path) and O(content) is required.
    type: str
  format:
    description:
      - Format of the certificate input. V(auto) detects PEM markers, the PKCS#12 structure, or a DER certificate.
    type: str
    choices: [auto, pem, der, pkcs12]
    default: auto
  certificate_password:
    description:
      - Password of a PKCS#12 certificate input, or passphrase of an encrypted private key inside a PEM
        certificate input.
    type: str
  privatekey_path:
    description:
      - Path of the certificate's private key (PEM or DER; PKCS#1, PKCS#8 or SEC1; encrypted or not; or a
        PKCS#12 file that holds it).
      - Without O(privatekey_path) and O(privatekey_content), a key inside the certificate input is used.
      - Mutually exclusive with O(privatekey_content).
    type: path
    aliases: [private_key_path]
  privatekey_content:
    description:
      - The private key as PEM text (or base64 of DER).
      - Mutually exclusive with O(privatekey_path).
    type: str
    aliases: [private_key_content]
  privatekey_passphrase:
    description:
      - Passphrase of an encrypted private key given with O(privatekey_path) or O(privatekey_content) (or
        inside a PEM certificate input when O(certificate_password) is not set).
      - An empty passphrase is an error, not "no passphrase".
    type: str
    aliases: [private_key_passphrase]
'''

    # The same input for modules that take a push certificate beside other things (push_connectivity): the
    # certificate options are named certificate_path and certificate_content, the format is always detected.
    # Argument spec: certificate_input_spec(key=True, fmt=False) with path/content renamed.
    CERTIFICATE_PREFIXED = r'''
options:
  certificate_path:
    description:
      - Path of the push certificate file on the managed host.
      - PEM (the certificate alone, with its key, or with a chain), DER, or PKCS#12; the format is detected from
        the content.
      - Only a regular file is read (a FIFO, a device or a directory is refused), at most 1 MiB.
      - Mutually exclusive with O(certificate_content).
    type: path
  certificate_content:
    description:
      - The push certificate itself, as PEM text, or base64 of a DER certificate or of a PKCS#12 file.
      - Mutually exclusive with O(certificate_path).
    type: str
  certificate_password:
    description:
      - Password of a PKCS#12 certificate input, or passphrase of an encrypted private key inside a PEM
        certificate input.
    type: str
  privatekey_path:
    description:
      - Path of the certificate's private key (PEM or DER; PKCS#1, PKCS#8 or SEC1; encrypted or not; or a
        PKCS#12 file that holds it).
      - Without O(privatekey_path) and O(privatekey_content), a key inside the certificate input is used.
      - Mutually exclusive with O(privatekey_content).
    type: path
    aliases: [private_key_path]
  privatekey_content:
    description:
      - The private key as PEM text (or base64 of DER).
      - Mutually exclusive with O(privatekey_path).
    type: str
    aliases: [private_key_content]
  privatekey_passphrase:
    description:
      - Passphrase of an encrypted private key given with O(privatekey_path) or O(privatekey_content) (or
        inside a PEM certificate input when O(certificate_password) is not set).
      - An empty passphrase is an error, not "no passphrase".
    type: str
    aliases: [private_key_passphrase]
'''

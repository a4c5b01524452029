# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The APNs push path, layer by layer: _tls (handshake, chain, interception); later _provider and _ats."""

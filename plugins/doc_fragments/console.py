# -*- coding: utf-8 -*-
# Copyright: mdmops.apple contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # How to reach an MDM console's API and the credentials it takes.
    # Argument spec: plugins/module_utils/_consoles/_args.py (console_connection_spec).
    # The modules using it belong to the action group mdmops.apple.consoles (meta/runtime.yml), so
    # module_defaults for group/mdmops.apple.consoles sets these once per play.
    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the console's API, V(https://host[:port]) (a path prefix is kept).
      - V(nanomdm) and V(micromdm), the server itself, for example V(https://mdm.example.com:9000).
      - V(intune), the root of Microsoft Graph, V(https://graph.microsoft.com) when not given (national clouds, for
        example V(https://graph.microsoft.us)); without a path.
      - Required for the other consoles.
    type: str
  token_url:
    description:
      - V(intune) only, the Microsoft identity platform that issues the Graph token (OAuth2 client credentials,
        C(POST {token_url}/{tenant_id}/oauth2/v2.0/token)); V(https://login.microsoftonline.us) with
        V(https://graph.microsoft.us).
    type: str
    default: https://login.microsoftonline.com
  tenant_id:
    description: V(intune) only, the Entra ID (Azure AD) tenant ID or domain.
    type: str
  client_id:
    description:
      - V(intune) only, the application (client) ID of an app registration granted the Graph application permission
        C(DeviceManagementServiceConfig.ReadWrite.All) (C(DeviceManagementServiceConfig.Read.All) is enough to read).
    type: str
  client_secret:
    description: V(intune) only, the client secret of O(client_id). Never logged or returned.
    type: str
  username:
    description:
      - User name of the console's basic authentication, when it is not the console's default (V(nanomdm) for
        NanoMDM, V(micromdm) for MicroMDM).
    type: str
  api_key:
    description:
      - The API key, V(nanomdm) (its C(-api) flag) and V(micromdm) (its C(-api-key) flag); both take it as the
        password of their basic authentication. Never logged or returned.
    type: str
  validate_certs:
    description:
      - Verify the console's TLS certificate. Set V(false) only for a lab; give the console's CA with O(ca_path)
        instead.
    type: bool
    default: true
  ca_path:
    description:
      - A PEM file of CA certificates to verify the console's TLS certificate with, instead of the system store.
    type: path
  timeout:
    description:
      - Seconds each HTTP attempt may take (connect, send, answer).
      - Throttling (429, 503 for every request; 408, 502, 504 and dropped connections for reads and uploads that
        set a value) is retried up to 4 times with exponential backoff and jitter, honouring C(Retry-After) (at most
        60 seconds); the whole exchange with the console, retries and waits included, is bounded by 4 times
        O(timeout) (at least 120 seconds).
    type: float
    default: 30
'''

    # `password`: a separate part, as push_certificate_info keeps `password` as a deprecated alias
    # of certificate_password until 2.0.0.
    PASSWORD = r'''
options:
  password:
    description:
      - Password of the console's basic authentication (with O(username)); for V(nanomdm) and V(micromdm) the same
        as O(api_key) (O(api_key) wins when both are given). Never logged or returned.
      - Not the password of a PKCS#12 certificate file, which is O(certificate_password).
    type: str
'''

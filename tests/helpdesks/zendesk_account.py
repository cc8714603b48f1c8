"""A Zendesk account for the installation tests: its ids, credentials and the URLs the service
calls, and registering it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.helpdesks.zendesk_installations import register_zendesk
from plugin.models import Installation

SUBDOMAIN = "acme"
BASE = "https://acme.zendesk.com"
APP_ID = "867530"
INSTALLATION_ID = "1001"
EMAIL = "admin@acme.example"
API_TOKEN = "Zq7tT4wL0vN2xR8yB5mC3kD9fG1hJ6pS"
OAUTH_TOKEN = "oauth-Yk3Lm9Qe2Rt7Uw4Zx8Cv6Bn1"
CREDENTIALS = ZendeskCredentials.from_api_token(email=EMAIL, api_token=API_TOKEN)
# base64 of "admin@acme.example/token:Zq7tT4wL0vN2xR8yB5mC3kD9fG1hJ6pS", worked out apart.
BASIC = "Basic YWRtaW5AYWNtZS5leGFtcGxlL3Rva2VuOlpxN3RUNHdMMHZOMnhSOHlCNW1DM2tEOWZHMWhKNnBT"
SECRETS = [API_TOKEN, OAUTH_TOKEN, BASIC, BASIC.removeprefix("Basic ")]
NOW = datetime(2026, 11, 24, 9, 0)
TIMEOUT = 5.0

ME_URL = f"{BASE}/api/v2/users/me.json"
INSTALLATIONS_URL = f"{BASE}/api/v2/apps/installations.json"
PUBLIC_KEY_URL = f"{BASE}/api/v2/apps/{APP_ID}/public_key.pem"
AUDIENCE = f"https://acme.zendesk.com/api/v2/apps/installations/{INSTALLATION_ID}.json"


def register(session: Session, vault: CredentialsVault, **changes: Any) -> Installation:
    values: dict[str, Any] = {
        "subdomain": SUBDOMAIN,
        "app_id": APP_ID,
        "credentials": CREDENTIALS,
        "app_installation_id": INSTALLATION_ID,
    }
    values.update(changes)
    return register_zendesk(session, vault, **values)

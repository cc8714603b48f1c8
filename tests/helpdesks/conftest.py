"""Fixtures the helpdesk installation tests share: a credentials vault and a session on each
kind of database.
"""

from __future__ import annotations

import pytest

from plugin.helpdesks.credentials import CredentialsVault, generate_key


@pytest.fixture
def vault() -> CredentialsVault:
    return CredentialsVault([generate_key()])

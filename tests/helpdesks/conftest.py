"""Fixtures the helpdesk installation tests share: a credentials vault and a session on each
kind of database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.helpdesks.credentials import CredentialsVault, generate_key


@pytest.fixture
def vault() -> CredentialsVault:
    return CredentialsVault([generate_key()])


@pytest.fixture
def storage_session(storage_app: Flask) -> Iterator[Session]:
    """A session on a fresh database of each kind: SQLite and PostgreSQL."""
    with db.database(storage_app).sessions() as session:
        yield session

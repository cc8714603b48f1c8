"""The credentials vault, its keys in the settings, and its place in the app."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from plugin.config import ConfigError, load_settings
from plugin.helpdesks.credentials import (
    EXTENSION_KEY,
    CredentialsError,
    CredentialsVault,
    generate_key,
    is_valid_key,
)
from tests.conftest import build_app, dispose_app

SECRETS = {"email": "agent@example.com", "api_token": "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv"}
KEY_1 = generate_key()
KEY_2 = generate_key()
ENV = {"REGULARS_SECRET_KEY": "x" * 40}


def test_a_vault_decrypts_what_it_encrypted() -> None:
    vault = CredentialsVault([KEY_1])

    token = vault.encrypt(SECRETS)

    assert vault.decrypt(token) == SECRETS
    assert SECRETS["api_token"] not in token
    assert vault.encrypt(SECRETS) != token  # a fresh IV each time


def test_a_vault_without_the_key_cannot_decrypt_and_says_so_without_secrets() -> None:
    token = CredentialsVault([KEY_1]).encrypt(SECRETS)

    with pytest.raises(CredentialsError, match="cannot be decrypted") as raised:
        CredentialsVault([KEY_2]).decrypt(token)

    text = str(raised.value) + repr(raised.value)
    for secret in [KEY_1, KEY_2, token, SECRETS["api_token"]]:
        assert secret not in text
    assert raised.value.__cause__ is None  # no InvalidToken chain carrying the token


@pytest.mark.parametrize("token", ["", "not-a-token", "gAAAAAB" + "x" * 80, "ünïcode"])
def test_garbage_tokens_are_credentials_errors(token: str) -> None:
    vault = CredentialsVault([KEY_1])

    with pytest.raises(CredentialsError):
        vault.decrypt(token)
    with pytest.raises(CredentialsError):
        vault.rotate(token)


@pytest.mark.parametrize("plaintext", [b"not json", b'["a list"]', b'{"email": 7}'])
def test_a_token_that_decrypts_to_something_else_is_refused(plaintext: bytes) -> None:
    token = Fernet(KEY_1).encrypt(plaintext).decode()

    with pytest.raises(CredentialsError, match="unreadable"):
        CredentialsVault([KEY_1]).decrypt(token)


def test_rotation_re_encrypts_with_the_first_key_and_every_key_decrypts() -> None:
    old_token = CredentialsVault([KEY_1]).encrypt(SECRETS)
    rotating = CredentialsVault([KEY_2, KEY_1])

    assert rotating.decrypt(old_token) == SECRETS  # old keys still decrypt
    new_token = rotating.rotate(old_token)

    assert CredentialsVault([KEY_2]).decrypt(new_token) == SECRETS
    with pytest.raises(CredentialsError):
        CredentialsVault([KEY_1]).decrypt(new_token)
    assert CredentialsVault([KEY_2]).decrypt(rotating.encrypt(SECRETS)) == SECRETS


def test_a_vault_needs_valid_keys_and_never_shows_them() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        CredentialsVault([])
    bad = "not-a-key-but-secret"
    with pytest.raises(ValueError, match="key 2 of 2 is not a Fernet key") as raised:
        CredentialsVault([KEY_1, bad])
    assert bad not in str(raised.value)
    assert KEY_1 not in str(raised.value)

    vault = CredentialsVault([KEY_1, KEY_2])
    assert KEY_1 not in repr(vault) and KEY_2 not in repr(vault)
    assert "2 key" in repr(vault)


def test_only_string_secrets_can_be_stored() -> None:
    with pytest.raises(TypeError, match="strings"):
        CredentialsVault([KEY_1]).encrypt({"port": 5432})  # type: ignore[dict-item]


def test_generated_keys_are_valid_and_distinct() -> None:
    assert is_valid_key(generate_key())
    assert generate_key() != generate_key()
    assert not is_valid_key("")
    assert not is_valid_key("not base64 at all!")
    assert not is_valid_key(Fernet.generate_key().decode()[:-4])


# --- Settings --------------------------------------------------------------------------------


@pytest.mark.parametrize("separator", [",", " ", ", ", "\n"])
def test_keys_come_from_the_environment_first_one_first(separator: str, tmp_path: Path) -> None:
    env = {**ENV, "REGULARS_ENCRYPTION_KEYS": f" {KEY_2}{separator}{KEY_1} "}

    settings = load_settings(env, tmp_path)

    assert settings.encryption_keys == (KEY_2, KEY_1)
    assert not (tmp_path / "encryption_key").exists()
    assert KEY_1 not in repr(settings)


def test_a_bad_key_in_the_environment_is_named_by_position_not_printed(tmp_path: Path) -> None:
    bad = "short-but-secret"
    env = {**ENV, "REGULARS_ENCRYPTION_KEYS": f"{KEY_1},{bad}"}

    with pytest.raises(ConfigError, match="key 2 of 2 is not a Fernet key") as raised:
        load_settings(env, tmp_path)

    assert bad not in str(raised.value)
    assert KEY_1 not in str(raised.value)


def test_keys_set_to_only_separators_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no key"):
        load_settings({**ENV, "REGULARS_ENCRYPTION_KEYS": " , "}, tmp_path)


def test_without_keys_one_is_generated_once_into_the_instance_folder(tmp_path: Path) -> None:
    instance = tmp_path / "instance"

    first = load_settings(ENV, instance)
    second = load_settings(ENV, instance)

    key_file = instance / "encryption_key"
    assert first.encryption_keys == second.encryption_keys == (key_file.read_text(),)
    assert is_valid_key(first.encryption_keys[0])
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_a_damaged_key_file_is_an_error_that_does_not_print_it(tmp_path: Path) -> None:
    (tmp_path / "encryption_key").write_text("damaged-secret")

    with pytest.raises(ConfigError, match="does not hold a Fernet key") as raised:
        load_settings(ENV, tmp_path)

    assert "damaged-secret" not in str(raised.value)


# --- The app ---------------------------------------------------------------------------------


def test_the_app_keeps_a_vault_on_the_instance_key_when_settings_name_none(app: Flask) -> None:
    vault = app.extensions[EXTENSION_KEY]
    instance_key = (Path(app.instance_path) / "encryption_key").read_text()

    assert isinstance(vault, CredentialsVault)
    assert CredentialsVault([instance_key]).decrypt(vault.encrypt(SECRETS)) == SECRETS


def test_the_app_uses_the_keys_in_its_settings(tmp_path: Path) -> None:
    app = build_app(
        f"sqlite:///{tmp_path / 'keys.sqlite3'}",
        tmp_path / "instance",
        encryption_keys=(KEY_2, KEY_1),
    )

    try:
        token = app.extensions[EXTENSION_KEY].encrypt(SECRETS)
    finally:
        dispose_app(app)

    assert CredentialsVault([KEY_2]).decrypt(token) == SECRETS
    assert not (tmp_path / "instance" / "encryption_key").exists()

"""The `flask zendesk` and `flask installations` commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskCliRunner
from responses import matchers
from sqlalchemy.orm import Session

from plugin import db
from plugin.helpdesks.credentials import EXTENSION_KEY, CredentialsVault, generate_key
from plugin.helpdesks.field_mappings import add_mapping
from plugin.helpdesks.zendesk import ZendeskCredentials
from plugin.helpdesks.zendesk_installations import (
    register_zendesk,
    zendesk_credentials,
    zendesk_installation,
)
from plugin.models import Installation
from tests.conftest import build_app, dispose_app
from tests.tokens import new_key, public_pem

BASE = "https://acme.zendesk.com"
APP_ID = "867530"
EMAIL = "admin@acme.example"
API_TOKEN = "Zq7tT4wL0vN2xR8yB5mC3kD9fG1hJ6pS"
OAUTH_TOKEN = "oauth-Yk3Lm9Qe2Rt7Uw4Zx8Cv6Bn1"
# base64 of "admin@acme.example/token:Zq7tT4wL0vN2xR8yB5mC3kD9fG1hJ6pS", worked out apart.
BASIC = "Basic YWRtaW5AYWNtZS5leGFtcGxlL3Rva2VuOlpxN3RUNHdMMHZOMnhSOHlCNW1DM2tEOWZHMWhKNnBT"
SECRETS = [API_TOKEN, OAUTH_TOKEN, BASIC, BASIC.removeprefix("Basic ")]
REGISTER = ["zendesk", "register", "--subdomain", "acme", "--app-id", APP_ID]

ME_URL = f"{BASE}/api/v2/users/me.json"
INSTALLATIONS_URL = f"{BASE}/api/v2/apps/installations.json"
PUBLIC_KEY_URL = f"{BASE}/api/v2/apps/{APP_ID}/public_key.pem"


def vault_of(app: Flask) -> CredentialsVault:
    vault: CredentialsVault = app.extensions[EXTENSION_KEY]
    return vault


def stored(app: Flask, subdomain: str = "acme") -> Installation:
    with db.database(app).sessions() as session:
        installation = zendesk_installation(session, subdomain)
    assert installation is not None
    return installation


def register(app: Flask, session: Session, subdomain: str = "acme") -> Installation:
    installation = register_zendesk(
        session,
        vault_of(app),
        subdomain=subdomain,
        app_id=APP_ID,
        app_installation_id="1001",
        credentials=ZendeskCredentials.from_api_token(email=EMAIL, api_token=API_TOKEN),
    )
    session.commit()
    return installation


def answer_a_working_account(rsps: responses.RequestsMock) -> str:
    auth = [matchers.header_matcher({"Authorization": BASIC})]
    me = {"id": 235323, "name": "Grace Hopper", "email": EMAIL, "role": "admin"}
    rsps.get(ME_URL, json={"user": me}, match=auth)
    rsps.get(
        INSTALLATIONS_URL,
        json={"installations": [{"id": 1001, "app_id": int(APP_ID), "enabled": True}]},
        match=auth,
    )
    pem = public_pem(new_key())
    rsps.get(PUBLIC_KEY_URL, body=pem)
    return pem


def assert_no_secret(text: str) -> None:
    assert all(secret not in text for secret in SECRETS)


# --- register --------------------------------------------------------------------------------


def test_register_reads_the_token_from_the_environment_and_checks_the_connection(
    app: Flask, runner: FlaskCliRunner, rsps: responses.RequestsMock
) -> None:
    pem = answer_a_working_account(rsps)

    result = runner.invoke(
        args=[*REGISTER, "--email", EMAIL, "--name", "Acme Support"],
        env={"ZENDESK_API_TOKEN": API_TOKEN},
    )

    assert result.exit_code == 0, result.output
    assert "Registered Zendesk installation acme." in result.output
    assert "✓ API reachable" in result.output
    assert "✓ Credentials valid: Signed in as Grace Hopper" in result.output
    assert "✓ App installation found: Found installation 1001" in result.output
    assert "✓ Public key fetched" in result.output
    assert_no_secret(result.output)
    installation = stored(app)
    assert installation.display_name == "Acme Support"
    assert installation.public_key_pem == pem
    assert installation.token_audience == (
        "https://acme.zendesk.com/api/v2/apps/installations/1001.json"
    )
    assert zendesk_credentials(installation, vault_of(app)).api_token == API_TOKEN


def test_register_prompts_for_the_token_without_echoing_it(
    app: Flask, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZENDESK_API_TOKEN", raising=False)

    result = runner.invoke(
        args=[*REGISTER, "--email", EMAIL, "--installation-id", "1001", "--no-check"],
        input=f"{API_TOKEN}\n",
    )

    assert result.exit_code == 0, result.output
    assert "Zendesk API token (or set ZENDESK_API_TOKEN):" in result.output
    assert_no_secret(result.output)
    credentials = zendesk_credentials(stored(app), vault_of(app))
    assert (credentials.email, credentials.api_token) == (EMAIL, API_TOKEN)


def test_register_an_oauth_token(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=[*REGISTER, "--oauth", "--no-check"], env={"ZENDESK_OAUTH_TOKEN": OAUTH_TOKEN}
    )

    assert result.exit_code == 0, result.output
    assert_no_secret(result.output)
    assert zendesk_credentials(stored(app), vault_of(app)) == ZendeskCredentials(
        oauth_token=OAUTH_TOKEN
    )


def test_the_token_is_never_a_command_line_option(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["zendesk", "register", "--help"])

    assert result.exit_code == 0
    assert "ZENDESK_API_TOKEN" in result.output
    assert "--token" not in result.output
    assert "--api-token" not in result.output


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([*REGISTER], {"ZENDESK_API_TOKEN": API_TOKEN}, "--email is required"),
        (
            [*REGISTER, "--oauth", "--email", EMAIL],
            {"ZENDESK_OAUTH_TOKEN": OAUTH_TOKEN},
            "--email goes with an API token",
        ),
        (
            [*REGISTER[:2], "--subdomain", "acme.zendesk.com", *REGISTER[4:], "--email", EMAIL],
            {},
            "subdomain must be",
        ),
        ([*REGISTER, "--email", EMAIL, "--installation-id", "x1"], {}, "app_installation_id"),
        ([*REGISTER, "--email", EMAIL, "--timeout", "0"], {}, "timeout"),
    ],
)
def test_register_refuses_unusable_input(
    app: Flask, runner: FlaskCliRunner, args: list[str], env: dict[str, str], expected: str
) -> None:
    result = runner.invoke(args=[*args, "--no-check"], env={"ZENDESK_API_TOKEN": API_TOKEN, **env})

    assert result.exit_code == 2
    assert expected in result.output
    assert_no_secret(result.output)
    with db.database(app).sessions() as session:
        assert zendesk_installation(session, "acme") is None


def test_register_keeps_the_installation_when_the_check_fails(
    app: Flask, runner: FlaskCliRunner, rsps: responses.RequestsMock
) -> None:
    rsps.get(ME_URL, status=401, json={"error": "Couldn't authenticate you"})
    rsps.get(PUBLIC_KEY_URL, body=public_pem(new_key()))

    result = runner.invoke(args=[*REGISTER, "--email", EMAIL], env={"ZENDESK_API_TOKEN": API_TOKEN})

    assert result.exit_code == 1
    assert "Registered Zendesk installation acme." in result.output
    assert "✗ Credentials valid: The API token or email is wrong" in result.output
    assert "- App installation found: skipped: needs valid credentials" in result.output
    assert "✓ Public key fetched" in result.output
    assert "flask zendesk check --subdomain acme" in result.output
    assert_no_secret(result.output)
    assert stored(app).public_key_pem is not None


# --- check -----------------------------------------------------------------------------------


def test_check_prints_each_check_and_exits_zero_when_all_pass(
    app: Flask, session: Session, runner: FlaskCliRunner, rsps: responses.RequestsMock
) -> None:
    register(app, session)
    answer_a_working_account(rsps)

    result = runner.invoke(args=["zendesk", "check", "--subdomain", "acme"])

    assert result.exit_code == 0, result.output
    assert result.output.count("✓") == 4
    assert_no_secret(result.output)


def test_check_exits_non_zero_and_explains_an_unreachable_api(
    app: Flask, session: Session, runner: FlaskCliRunner, rsps: responses.RequestsMock
) -> None:
    register(app, session)
    rsps.get(ME_URL, body=requests.exceptions.ConnectTimeout())

    result = runner.invoke(args=["zendesk", "check", "--subdomain", "acme", "--timeout", "2"])

    assert result.exit_code == 1
    assert "✗ API reachable: acme.zendesk.com did not answer within 2 s" in result.output
    assert result.output.count("skipped: the API is not reachable") == 3


def test_check_of_an_unknown_subdomain_says_how_to_register(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["zendesk", "check", "--subdomain", "nobody"])

    assert result.exit_code == 1
    assert "No Zendesk installation for 'nobody'" in result.output
    assert "flask zendesk register" in result.output


def test_check_with_undecryptable_credentials_says_so(
    app: Flask, session: Session, runner: FlaskCliRunner
) -> None:
    installation = register(app, session)
    installation.credentials_encrypted = CredentialsVault([generate_key()]).encrypt({"a": "b"})
    session.commit()

    result = runner.invoke(args=["zendesk", "check", "--subdomain", "acme"])

    assert result.exit_code == 1
    assert "cannot be decrypted with the configured encryption keys" in result.output


# --- list ------------------------------------------------------------------------------------


def test_list_shows_installations_but_never_credentials(
    app: Flask, session: Session, runner: FlaskCliRunner
) -> None:
    assert "No Zendesk installations" in runner.invoke(args=["zendesk", "list"]).output
    acme = register(app, session)
    register(app, session, subdomain="globex")

    result = runner.invoke(args=["zendesk", "list"])

    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "acme: acme; https://acme.zendesk.com; app 867530, installation 1001"
    )
    assert lines[1].startswith("globex: ")
    assert "credentials stored" in lines[0]
    assert acme.credentials_encrypted is not None
    assert acme.credentials_encrypted not in result.output
    assert_no_secret(result.output)


# --- map, unmap, mappings --------------------------------------------------------------------


def test_fields_and_tags_are_mapped_listed_and_unmapped(
    app: Flask, session: Session, runner: FlaskCliRunner
) -> None:
    register(app, session)
    acme = ["--subdomain", "acme"]

    assert "No mappings" in runner.invoke(args=["zendesk", "mappings", *acme]).output
    for source, fact in [
        (["--user-field", "loyalty_tier"], "tier"),
        (["--organization-field", "account_manager"], "account_manager"),
        (["--tag", "VIP"], "is_vip"),
    ]:
        result = runner.invoke(args=["zendesk", "map", *acme, *source, "--fact", fact])
        assert result.exit_code == 0, result.output
    assert "Mapped tag vip to the fact is_vip." in result.output

    listed = runner.invoke(args=["zendesk", "mappings", *acme]).output.splitlines()
    assert listed == [
        "organization field account_manager -> account_manager",
        "tag vip -> is_vip",
        "user field loyalty_tier -> tier",
    ]

    result = runner.invoke(args=["zendesk", "unmap", *acme, "--tag", "vip"])
    assert result.exit_code == 0
    assert "Unmapped tag vip." in result.output
    result = runner.invoke(args=["zendesk", "unmap", *acme, "--tag", "vip"])
    assert result.exit_code == 1
    assert "No mapping of tag vip to remove." in result.output
    assert len(runner.invoke(args=["zendesk", "mappings", *acme]).output.splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--fact", "tier"], "Give exactly one of"),
        (["--tag", "a", "--user-field", "b", "--fact", "tier"], "Give exactly one of"),
        (["--tag", "vip", "--fact", "Is VIP"], "fact name"),
        (["--tag", "vip"], "Missing option '--fact'"),
    ],
)
def test_map_refuses_unusable_mappings(
    app: Flask, session: Session, runner: FlaskCliRunner, args: list[str], expected: str
) -> None:
    register(app, session)

    result = runner.invoke(args=["zendesk", "map", "--subdomain", "acme", *args])

    assert result.exit_code == 2
    assert expected in result.output


def test_a_fact_mapped_from_another_field_must_be_unmapped_first(
    app: Flask, session: Session, runner: FlaskCliRunner
) -> None:
    installation = register(app, session)
    add_mapping(session, installation, kind="user_field", key="tier", fact_name="tier")
    session.commit()

    result = runner.invoke(
        args=["zendesk", "map", "--subdomain", "acme", "--tag", "gold", "--fact", "tier"]
    )

    assert result.exit_code == 2
    assert "already comes from user field 'tier'" in result.output


# --- installations rotate-encryption-key -----------------------------------------------------


def test_rotating_the_encryption_key_re_encrypts_every_installation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rotate.sqlite3'}"
    old_key, new_key_ = generate_key(), generate_key()
    before = build_app(url, tmp_path / "instance", encryption_keys=(old_key,))
    after = build_app(url, tmp_path / "instance", encryption_keys=(new_key_, old_key))
    try:
        with db.database(before).sessions() as session:
            register(before, session)
            register(before, session, subdomain="globex")

        result = after.test_cli_runner().invoke(args=["installations", "rotate-encryption-key"])

        assert result.exit_code == 0, result.output
        assert "Re-encrypted the credentials of 2 installation(s)" in result.output
        only_new = CredentialsVault([new_key_])
        for subdomain in ["acme", "globex"]:
            credentials = zendesk_credentials(stored(after, subdomain), only_new)
            assert credentials.api_token == API_TOKEN
        assert_no_secret(result.output)
    finally:
        dispose_app(before)
        dispose_app(after)


def test_rotation_changes_nothing_when_some_credentials_cannot_be_decrypted(
    app: Flask, session: Session, runner: FlaskCliRunner
) -> None:
    acme = register(app, session)
    globex = register(app, session, subdomain="globex")
    globex.credentials_encrypted = CredentialsVault([generate_key()]).encrypt({"a": "b"})
    session.commit()
    before = acme.credentials_encrypted

    result = runner.invoke(args=["installations", "rotate-encryption-key"])

    assert result.exit_code == 1
    assert "installation zendesk:globex" in result.output
    assert "Nothing was changed." in result.output
    assert stored(app).credentials_encrypted == before

"""The `flask zendesk` commands that connect Zendesk accounts, and `flask installations`.

Secrets never come from the command line, where `ps` and shell history would show them: the
API token comes from ZENDESK_API_TOKEN (or ZENDESK_OAUTH_TOKEN with --oauth) or a hidden prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from plugin import cli_support, db
from plugin.cli_support import MARKS, read_secret, vault
from plugin.clock import utcnow
from plugin.customers.shopify_connection import reencrypt_shopify_credentials
from plugin.helpdesks.credentials import CredentialsError
from plugin.helpdesks.field_mappings import ORGANIZATION_FIELD, TAG, USER_FIELD
from plugin.helpdesks.http import new_session
from plugin.helpdesks.installations import (
    ConnectionReport,
    RegistrationError,
    reencrypt_credentials,
)
from plugin.helpdesks.zendesk import ZendeskCredentials, base_url_for
from plugin.helpdesks.zendesk_connection_check import check_connection
from plugin.helpdesks.zendesk_installations import (
    register_zendesk,
    zendesk_installation,
    zendesk_installations,
)
from plugin.models import Installation
from plugin.sidebar.event_cli import install_on_connect

# Names of environment variables, not secrets.
API_TOKEN_VARIABLE = "ZENDESK_API_TOKEN"  # noqa: S105
OAUTH_TOKEN_VARIABLE = "ZENDESK_OAUTH_TOKEN"  # noqa: S105
KIND_LABELS = {USER_FIELD: "user field", ORGANIZATION_FIELD: "organization field", TAG: "tag"}

_Command = TypeVar("_Command", bound=Callable[..., Any])

subdomain_option = click.option(
    "--subdomain", required=True, help="The account's subdomain: acme for acme.zendesk.com."
)
timeout_option = cli_support.timeout_option("Zendesk")


@click.group("zendesk", cls=AppGroup)
def zendesk_cli() -> None:
    """Connect Zendesk accounts: register, check, and map fields to customer facts."""


@zendesk_cli.command("register")
@subdomain_option
@click.option("--app-id", required=True, help="The Regulars app's numeric id in Zendesk.")
@click.option(
    "--installation-id",
    default=None,
    help="The app installation's id; `check` finds it when the app is installed once.",
)
@click.option("--email", default=None, help="The agent whose API token is used.")
@click.option(
    "--oauth",
    is_flag=True,
    help=f"Use an OAuth access token ({OAUTH_TOKEN_VARIABLE} or a prompt), not an API token.",
)
@click.option(
    "--api-base-url",
    default=None,
    help="Call this URL instead of https://SUBDOMAIN.zendesk.com (a proxy or a test fake).",
)
@click.option("--name", "display_name", default=None, help="How admins see the installation.")
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Check the connection (and fetch the public key) after registering.",
)
@timeout_option
def register_command(
    subdomain: str,
    app_id: str,
    installation_id: str | None,
    email: str | None,
    oauth: bool,
    api_base_url: str | None,
    display_name: str | None,
    check: bool,
    timeout: float,
) -> None:
    """Register a Zendesk account, or update its registration.

    The API token is read from ZENDESK_API_TOKEN or a hidden prompt, never from an argument.
    """
    credentials = _read_credentials(email=email, oauth=oauth)
    with db.database().sessions() as session:
        try:
            installation = register_zendesk(
                session,
                vault(),
                subdomain=subdomain,
                app_id=app_id,
                credentials=credentials,
                app_installation_id=installation_id,
                api_base_url=api_base_url,
                display_name=display_name,
            )
        except RegistrationError as error:
            raise click.UsageError(str(error)) from None
        session.commit()
        click.echo(f"Registered Zendesk installation {installation.account}.")
        if check:
            _run_check(session, installation, timeout=timeout)
        install_on_connect(session, installation, timeout=timeout)  # events, when public


@zendesk_cli.command("check")
@subdomain_option
@timeout_option
def check_command(subdomain: str, timeout: float) -> None:
    """Check the connection to a registered account; exits non-zero when a check fails.

    Saves the app installation id when it is discovered, and the fetched public key.
    """
    with db.database().sessions() as session:
        _run_check(session, _installation(session, subdomain), timeout=timeout)


@zendesk_cli.command("list")
def list_command() -> None:
    """List the registered Zendesk installations (never their credentials)."""
    with db.database().sessions() as session:
        installations = zendesk_installations(session)
    if not installations:
        click.echo("No Zendesk installations. Add one with `flask zendesk register`.")
        return
    for installation in installations:
        key = (
            f"public key fetched {installation.public_key_fetched_at:%Y-%m-%d %H:%M} UTC"
            if installation.public_key_fetched_at
            else "no public key yet"
        )
        host = base_url_for(installation.account, installation.api_base_url)
        credentials = (
            "credentials stored" if installation.credentials_encrypted else "no credentials"
        )
        click.echo(
            f"{installation.account}: {installation.display_name}; {host}; "
            f"app {installation.app_id or '?'}, installation "
            f"{installation.app_installation_id or 'not yet known'}; {key}; {credentials}"
        )


def _mapping_source_options(command: _Command) -> _Command:
    """Add the three mutually exclusive ways to name what a mapping reads."""
    for option in reversed(
        [
            click.option("--user-field", default=None, help="A user field's key."),
            click.option("--organization-field", default=None, help="An organization field's key."),
            click.option("--tag", default=None, help="A user tag (the fact is true or false)."),
        ]
    ):
        command = option(command)
    return command


@zendesk_cli.command("map")
@subdomain_option
@_mapping_source_options
@click.option("--fact", "fact_name", required=True, help="The fact's name, such as loyalty_tier.")
def map_command(
    subdomain: str,
    user_field: str | None,
    organization_field: str | None,
    tag: str | None,
    fact_name: str,
) -> None:
    """Read a user field, organization field or tag of the requester as a customer fact."""
    kind, key = _mapping_source(user_field, organization_field, tag)
    cli_support.map_fact(
        lambda session: _installation(session, subdomain),
        kind=kind,
        key=key,
        fact_name=fact_name,
        labels=KIND_LABELS,
    )


@zendesk_cli.command("unmap")
@subdomain_option
@_mapping_source_options
def unmap_command(
    subdomain: str, user_field: str | None, organization_field: str | None, tag: str | None
) -> None:
    """Stop reading a user field, organization field or tag as a fact."""
    kind, key = _mapping_source(user_field, organization_field, tag)
    cli_support.unmap_fact(
        lambda session: _installation(session, subdomain), kind=kind, key=key, labels=KIND_LABELS
    )


@zendesk_cli.command("mappings")
@subdomain_option
def mappings_command(subdomain: str) -> None:
    """List which fields and tags become which facts."""
    cli_support.echo_mappings(
        lambda session: _installation(session, subdomain),
        labels=KIND_LABELS,
        map_command="flask zendesk map",
    )


@click.group("installations", cls=AppGroup)
def installations_cli() -> None:
    """Manage every installation, whatever its helpdesk."""


@installations_cli.command("rotate-encryption-key")
def rotate_key_command() -> None:
    """Re-encrypt all stored credentials with the first key in REGULARS_ENCRYPTION_KEYS.

    Put the new key first and keep the old ones after it, restart, run this, then remove the
    old keys. Nothing is changed if any installation's credentials cannot be decrypted.
    """
    with db.database().sessions() as session:
        try:
            count = reencrypt_credentials(session, vault())
            shops = reencrypt_shopify_credentials(session, vault())
        except CredentialsError as error:
            session.rollback()
            raise click.ClickException(f"{error}. Nothing was changed.") from None
        session.commit()
    click.echo(
        f"Re-encrypted the credentials of {count} installation(s) and {shops} Shopify "
        "connection(s) with the first key. "
        "The other keys can now be removed from REGULARS_ENCRYPTION_KEYS."
    )


def _installation(session: Session, subdomain: str) -> Installation:
    installation = zendesk_installation(session, subdomain)
    if installation is None:
        raise click.ClickException(
            f"No Zendesk installation for {subdomain!r}: register it with `flask zendesk register`."
        )
    return installation


def _read_credentials(*, email: str | None, oauth: bool) -> ZendeskCredentials:
    if oauth:
        if email:
            raise click.UsageError("--email goes with an API token, not with --oauth.")
        return ZendeskCredentials.from_oauth_token(
            oauth_token=read_secret(OAUTH_TOKEN_VARIABLE, "Zendesk OAuth access token")
        )
    if not email or not email.strip():
        raise click.UsageError("--email is required with an API token (or use --oauth).")
    return ZendeskCredentials.from_api_token(
        email=email.strip(), api_token=read_secret(API_TOKEN_VARIABLE, "Zendesk API token")
    )


def _mapping_source(
    user_field: str | None, organization_field: str | None, tag: str | None
) -> tuple[str, str]:
    candidates = ((USER_FIELD, user_field), (ORGANIZATION_FIELD, organization_field), (TAG, tag))
    given = [(kind, key) for kind, key in candidates if key is not None]
    if len(given) != 1:
        raise click.UsageError("Give exactly one of --user-field, --organization-field, --tag.")
    return given[0]


def _run_check(session: Session, installation: Installation, *, timeout: float) -> None:
    try:
        with new_session() as http_session:
            report = check_connection(
                session,
                installation,
                vault(),
                http_session=http_session,
                timeout=timeout,
                now=utcnow(),
            )
    except CredentialsError as error:
        raise click.ClickException(str(error)) from None
    session.commit()  # what the check found: the installation id, the public key
    _print_report(report)
    if not report.ok:
        click.echo(
            f"Fix the problems above, then run `flask zendesk check --subdomain "
            f"{installation.account}`.",
            err=True,
        )
        raise click.exceptions.Exit(1)


def _print_report(report: ConnectionReport) -> None:
    for check in report.checks:
        click.echo(f"{MARKS[check.status]} {check.name}: {check.message}")

"""The `flask freshdesk` commands that connect Freshdesk accounts.

The API key never comes from the command line, where `ps` and shell history would show it: it
comes from FRESHDESK_API_KEY or a hidden prompt. Installation secrets are printed once, when
issued, and kept only as hashes.
"""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from plugin import cli_support, db
from plugin.cli_support import MARKS, read_secret, vault
from plugin.clock import utcnow
from plugin.helpdesks.credentials import CredentialsError
from plugin.helpdesks.field_mappings import TAG, USER_FIELD
from plugin.helpdesks.freshdesk import FreshdeskCredentials, base_url_for
from plugin.helpdesks.freshdesk_installations import (
    DEFAULT_ROTATION_GRACE,
    check_freshdesk_connection,
    freshdesk_installation,
    freshdesk_installations,
    register_freshdesk,
    revoke_previous_secret,
    rotate_secret,
    secret_state,
)
from plugin.helpdesks.http import new_session
from plugin.helpdesks.installations import RegistrationError
from plugin.models import Installation

# The name of an environment variable, not a secret.
API_KEY_VARIABLE = "FRESHDESK_API_KEY"
# Contact custom fields are stored as the "user_field" kind all helpdesks share.
KIND_LABELS = {USER_FIELD: "contact field", TAG: "contact tag"}

domain_option = click.option(
    "--domain", required=True, help="The account's Freshdesk domain: acme.freshdesk.com (or acme)."
)
timeout_option = cli_support.timeout_option("Freshdesk")


@click.group("freshdesk", cls=AppGroup)
def freshdesk_cli() -> None:
    """Connect Freshdesk accounts: register, check, rotate the app's secret, map fields."""


@freshdesk_cli.command("register")
@domain_option
@click.option(
    "--api-base-url",
    default=None,
    help="Call this URL instead of https://DOMAIN (a proxy or a test fake).",
)
@click.option("--name", "display_name", default=None, help="How admins see the installation.")
@click.option(
    "--check/--no-check", default=True, show_default=True, help="Check the connection after."
)
@timeout_option
def register_command(
    domain: str, api_base_url: str | None, display_name: str | None, check: bool, timeout: float
) -> None:
    """Register a Freshdesk account, or update its API key.

    The API key is read from FRESHDESK_API_KEY or a hidden prompt, never from an argument. A
    new installation's secret is printed once: paste it into the app's settings in Freshdesk.
    """
    try:
        credentials = FreshdeskCredentials(
            api_key=read_secret(API_KEY_VARIABLE, "Freshdesk API key")
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    with db.database().sessions() as session:
        try:
            registration = register_freshdesk(
                session,
                vault(),
                domain=domain,
                credentials=credentials,
                api_base_url=api_base_url,
                display_name=display_name,
            )
        except RegistrationError as error:
            raise click.UsageError(str(error)) from None
        session.commit()
        installation = registration.installation
        click.echo(f"Registered Freshdesk installation {installation.account}.")
        if registration.new_secret:
            _print_secret(registration.new_secret)
        if check:
            _run_check(installation, timeout=timeout)


@freshdesk_cli.command("check")
@domain_option
@timeout_option
def check_command(domain: str, timeout: float) -> None:
    """Check the connection to a registered account; exits non-zero when a check fails."""
    with db.database().sessions() as session:
        _run_check(_installation(session, domain), timeout=timeout)


@freshdesk_cli.command("rotate-secret")
@domain_option
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_ROTATION_GRACE.total_seconds() / 3600,
    show_default=True,
    help="How long the current secret keeps working beside the new one.",
)
def rotate_secret_command(domain: str, grace_hours: float) -> None:
    """Issue a new installation secret without downtime.

    The current secret keeps working for the grace period: paste the new one into the app's
    settings in Freshdesk, then end the rotation with `revoke-previous-secret`.
    """
    now = utcnow()
    with db.database().sessions() as session:
        installation = _installation(session, domain)
        secret = rotate_secret(installation, now=now, grace=timedelta(hours=grace_hours))
        session.commit()
        state = secret_state(installation, now=now)
    _print_secret(secret)
    click.echo(f"Secrets of {installation.account}: {state}.")


@freshdesk_cli.command("revoke-previous-secret")
@domain_option
def revoke_previous_command(domain: str) -> None:
    """End a rotation now: only the newest secret works from here on."""
    with db.database().sessions() as session:
        installation = _installation(session, domain)
        revoked = revoke_previous_secret(installation)
        session.commit()
    if not revoked:
        raise click.ClickException(f"{installation.account} has no previous secret to revoke.")
    click.echo(f"Revoked the previous secret of {installation.account}.")


@freshdesk_cli.command("list")
def list_command() -> None:
    """List the registered Freshdesk installations (never their API keys or secrets)."""
    now = utcnow()
    with db.database().sessions() as session:
        installations = freshdesk_installations(session)
    if not installations:
        click.echo("No Freshdesk installations. Add one with `flask freshdesk register`.")
    for installation in installations:
        key = "API key stored" if installation.credentials_encrypted else "no API key"
        click.echo(
            f"{installation.account}: {installation.display_name}; "
            f"{base_url_for(installation.account, installation.api_base_url)}; {key}; "
            f"{secret_state(installation, now=now)}"
        )


@freshdesk_cli.command("map")
@domain_option
@click.option("--contact-field", default=None, help="A contact custom field's name.")
@click.option("--tag", default=None, help="A contact tag (the fact is true or false).")
@click.option("--fact", "fact_name", required=True, help="The fact's name, such as loyalty_tier.")
def map_command(domain: str, contact_field: str | None, tag: str | None, fact_name: str) -> None:
    """Read a contact custom field or tag of the requester as a customer fact."""
    kind, key = _mapping_source(contact_field, tag)
    cli_support.map_fact(
        lambda session: _installation(session, domain),
        kind=kind,
        key=key,
        fact_name=fact_name,
        labels=KIND_LABELS,
    )


@freshdesk_cli.command("unmap")
@domain_option
@click.option("--contact-field", default=None, help="A contact custom field's name.")
@click.option("--tag", default=None, help="A contact tag.")
def unmap_command(domain: str, contact_field: str | None, tag: str | None) -> None:
    """Stop reading a contact field or tag as a fact."""
    kind, key = _mapping_source(contact_field, tag)
    cli_support.unmap_fact(
        lambda session: _installation(session, domain), kind=kind, key=key, labels=KIND_LABELS
    )


@freshdesk_cli.command("mappings")
@domain_option
def mappings_command(domain: str) -> None:
    """List which contact fields and tags become which facts."""
    cli_support.echo_mappings(
        lambda session: _installation(session, domain),
        labels=KIND_LABELS,
        map_command="flask freshdesk map",
    )


def _installation(session: Session, domain: str) -> Installation:
    installation = freshdesk_installation(session, domain)
    if installation is None:
        raise click.ClickException(
            f"No Freshdesk installation for {domain!r}: register it with "
            "`flask freshdesk register`."
        )
    return installation


def _mapping_source(contact_field: str | None, tag: str | None) -> tuple[str, str]:
    if (contact_field is None) == (tag is None):
        raise click.UsageError("Give exactly one of --contact-field, --tag.")
    return (USER_FIELD, contact_field) if contact_field is not None else (TAG, tag or "")


def _print_secret(secret: str) -> None:
    click.echo(
        "Installation secret (shown this once; paste it into the Regulars app's "
        f"'Installation secret' setting in Freshdesk):\n  {secret}"
    )


def _run_check(installation: Installation, *, timeout: float) -> None:
    try:
        with new_session() as http_session:
            report = check_freshdesk_connection(
                installation, vault(), http_session=http_session, timeout=timeout, now=utcnow()
            )
    except CredentialsError as error:
        raise click.ClickException(str(error)) from None
    for check in report.checks:
        click.echo(f"{MARKS[check.status]} {check.name}: {check.message}")
    if not report.ok:
        click.echo(
            f"Fix the problems above, then run `flask freshdesk check --domain "
            f"{installation.account}`.",
            err=True,
        )
        raise click.exceptions.Exit(1)

"""`flask data forget` and `flask data purge`: erase a customer on request, and the retention
purge a scheduler runs (daily, say) so old personal data does not linger."""

from __future__ import annotations

import getpass

import click
from flask import current_app
from flask.cli import with_appcontext

from plugin import db
from plugin.clock import utcnow
from plugin.config import EXTENSION_KEY as SETTINGS_KEY
from plugin.config import Settings
from plugin.customers.forget import Identifier, IdentifierKind, NothingToForget, forget_customer
from plugin.customers.retention import RetentionPolicy, purge
from plugin.domain.phones import region_or_default
from plugin.helpdesks.installations import RegistrationError, installation_named


@click.command("forget")
@click.option("--installation", "name", required=True, help="account or platform:account")
@click.option("--email", default=None, help="The customer's email.")
@click.option("--phone", default=None, help="The customer's phone number.")
@click.option("--company-id", default=None, help="The company's own id for the customer.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def forget_command(
    name: str, email: str | None, phone: str | None, company_id: str | None, yes: bool
) -> None:
    """Forget a customer: their records, cached answers and personal fields (see the README).

    Name them by exactly one of --email, --phone or --company-id. An audit record (who ran
    it and when, never whom) is kept.
    """
    given = [
        (kind, value)
        for kind, value in (
            (IdentifierKind.EMAIL, email),
            (IdentifierKind.PHONE, phone),
            (IdentifierKind.COMPANY_ID, company_id),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise click.UsageError(
            "Name the customer by exactly one of --email, --phone, --company-id."
        )
    with db.database().sessions() as session:
        try:
            installation = installation_named(session, name)
        except RegistrationError as error:
            raise click.UsageError(str(error)) from None
        try:
            identifier = Identifier.of(
                *given[0], phone_region=region_or_default(installation.default_phone_region)
            )
        except NothingToForget as empty:
            raise click.UsageError(str(empty)) from None
        if not yes:
            click.confirm(
                f"Forget the customer with {identifier.kind.value.replace('_', ' ')} "
                f"{identifier.value!r} in {installation.platform}:{installation.account}? "
                "This cannot be undone",
                abort=True,
            )
        forgotten = forget_customer(
            session,
            installation,
            identifier,
            requested_by=f"command line ({getpass.getuser()})",
            via="cli",
            audit_key=current_app.config["SECRET_KEY"],
            now=utcnow(),
        )
        session.commit()
    click.echo(forgotten.summary())
    click.echo(
        "The shared cache's answers about them are gone; running service processes drop "
        "their in-memory copies on their next request (within half a minute)."
    )


@click.command("purge")
@with_appcontext
def purge_command() -> None:
    """Purge personal data older than the retention settings (REGULARS_RETENTION_*_DAYS)."""
    settings: Settings = current_app.extensions[SETTINGS_KEY]
    with db.database().sessions() as session:
        purged = purge(session, RetentionPolicy.from_settings(settings), now=utcnow())
        session.commit()
    click.echo(purged.summary())

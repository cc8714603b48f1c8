"""`flask data phone-region`: show or set where an installation reads phone numbers."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from plugin import db
from plugin.customers.phone_region import NotARegion, phone_region, set_phone_region
from plugin.helpdesks.installations import RegistrationError, installation_named


@click.command("phone-region")
@click.option("--installation", "name", required=True, help="account or platform:account")
@click.argument("region", required=False)
@with_appcontext
def phone_region_command(name: str, region: str | None) -> None:
    """Show the installation's default phone region, or set it (US, GB, DE...).

    A phone number without a leading + (in imports, the push API, Shopify and the helpdesk's
    caller ids) is read as dialled in this region; "US" until one is set.
    """
    with db.database().sessions() as session:
        try:
            installation = installation_named(session, name)
        except RegistrationError as error:
            raise click.UsageError(str(error)) from None
        if region is None:
            click.echo(phone_region(session, installation.id))
            return
        try:
            done = set_phone_region(session, installation, region)
        except NotARegion as error:
            raise click.BadParameter(str(error), param_hint="REGION") from None
        session.commit()
    click.echo(f"Phone numbers are read in region {done.region}.")
    if done.rekeyed:
        click.echo(f"{done.rekeyed} stored numbers re-read as phone numbers there.")
    if done.unreadable:
        click.echo(
            f"{done.unreadable} stored numbers are not phone numbers there (left as they are)."
        )

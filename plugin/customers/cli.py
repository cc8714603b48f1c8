"""`flask data`: import customers and orders from CSV, manage push API tokens, and Shopify."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from plugin import db
from plugin.clock import utcnow
from plugin.customers import push_tokens
from plugin.customers.csv_import import ImportFileError, Kind, import_csv
from plugin.customers.privacy_cli import forget_command, purge_command
from plugin.customers.shopify_cli import shopify_cli
from plugin.helpdesks.installations import RegistrationError, installation_named

data_cli = AppGroup("data", help="Customer data: CSV imports, push API tokens and Shopify.")
data_cli.add_command(shopify_cli)
data_cli.add_command(forget_command)
data_cli.add_command(purge_command)

SHOWN_PROBLEMS = 50


@data_cli.command("import")
@click.argument("kind", type=click.Choice(["customers", "orders"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--installation",
    "name",
    required=True,
    help="The installation: its account (acme) or platform:account (zendesk:acme).",
)
def import_command(kind: Kind, path: str, name: str) -> None:
    """Import a CSV file of customers or orders; refused rows are listed by line.

    Exits 1 when some rows were refused (the others are imported), 2 when the file as a whole
    cannot be.
    """
    with db.database().sessions() as session:
        try:
            installation = installation_named(session, name)
        except RegistrationError as error:
            raise click.UsageError(str(error)) from None
        try:
            with open(path, encoding="utf-8-sig", newline="") as stream:
                report = import_csv(session, installation.id, stream, kind=kind, now=utcnow())
        except ImportFileError as error:
            click.echo(f"✗ {path}: {error}; nothing was imported.", err=True)
            raise SystemExit(2) from None
    click.echo(report.summary())
    for problem in report.problems[:SHOWN_PROBLEMS]:
        click.echo(f"  {problem}", err=True)
    if len(report.problems) > SHOWN_PROBLEMS:
        click.echo(f"  … and {len(report.problems) - SHOWN_PROBLEMS} more", err=True)
    if report.problems:
        raise SystemExit(1)


@data_cli.command("push-token")
@click.option("--installation", "name", required=True, help="account or platform:account")
def push_token_command(name: str) -> None:
    """Issue a new push API token for an installation (the old one stops working)."""
    with db.database().sessions() as session:
        try:
            installation = installation_named(session, name)
        except RegistrationError as error:
            raise click.UsageError(str(error)) from None
        token = push_tokens.issue(installation)
        session.commit()
    click.echo("New push API token (shown once; store it in your systems' secrets):")
    click.echo(token)

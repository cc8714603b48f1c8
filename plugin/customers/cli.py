"""`flask data`: import customers and orders from CSV, manage push API tokens, and Shopify."""

from __future__ import annotations

import csv
import os

import click
from flask.cli import AppGroup

from plugin import db
from plugin.clock import utcnow
from plugin.customers import progress, push_tokens
from plugin.customers.csv_import import ImportFileError, Kind, import_csv
from plugin.customers.phone_cli import phone_region_command
from plugin.customers.privacy_cli import forget_command, purge_command
from plugin.customers.shopify_cli import shopify_cli
from plugin.helpdesks.installations import RegistrationError, installation_named

data_cli = AppGroup("data", help="Customer data: CSV imports, push API tokens and Shopify.")
data_cli.add_command(shopify_cli)
data_cli.add_command(forget_command)
data_cli.add_command(purge_command)
data_cli.add_command(phone_region_command)

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
@click.option(
    "--dry-run", is_flag=True, help="Check the file and say what would happen; write nothing."
)
@click.option(
    "--refused",
    "refused_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the refused rows here as CSV: line, field, reason.",
)
def import_command(
    kind: Kind, path: str, name: str, dry_run: bool, refused_path: str | None
) -> None:
    """Import a CSV file of customers or orders; refused rows are listed by line.

    The encoding (UTF-8, else detected, e.g. Windows-1252) and the delimiter (comma,
    semicolon or tab) are found from the file and reported. Progress goes to stderr.
    Exits 1 when some rows were refused (the others are imported), 2 when the file as a whole
    cannot be.
    """
    with db.database().sessions() as session:
        try:
            installation = installation_named(session, name)
        except RegistrationError as error:
            raise click.UsageError(str(error)) from None
        try:
            with open(path, "rb") as stream:
                meter = progress.Meter(f"importing {kind}", total_bytes=os.path.getsize(path))
                report = import_csv(
                    session,
                    installation.id,
                    stream,
                    kind=kind,
                    now=utcnow(),
                    dry_run=dry_run,
                    on_progress=lambda report: meter.update(report.rows, stream.tell()),
                )
                meter.done(report.rows)
        except ImportFileError as error:
            click.echo(f"✗ {path}: {error}; nothing was imported.", err=True)
            raise SystemExit(2) from None
    click.echo(f"{report.summary()} ({report.reading()})")
    if refused_path is not None:
        with open(refused_path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", "field", "reason"])
            writer.writerows((p.line, p.field, p.message) for p in report.problems)
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

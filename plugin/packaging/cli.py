"""The `flask package` commands that build the helpdesk app packages."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from plugin.packaging import freshdesk_builder, zendesk_builder
from plugin.packaging.problems import has_errors


@click.group("package", cls=AppGroup)
def package_cli() -> None:
    """Build and validate the helpdesk app packages."""


# Packaging reads files only, so it should work without the service's settings or database.
@package_cli.command("zendesk", with_appcontext=False)
@click.option(
    "--service-url",
    required=True,
    help="Where Zendesk reaches this service: https, or http://localhost for local testing.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("dist", "regulars-zendesk.zip"),
    show_default=True,
    help="Where to write the zip.",
)
def zendesk_command(service_url: str, out_path: Path) -> None:
    """Validate the Zendesk app package and write its zip if nothing is wrong."""
    problems = zendesk_builder.build_package(service_url=service_url, out_path=out_path)
    for problem in problems:
        click.echo(str(problem), err=True)
    if has_errors(problems):
        raise click.exceptions.Exit(1)
    click.echo(f"Wrote {out_path} ({out_path.stat().st_size} bytes).")


@package_cli.command("freshdesk", with_appcontext=False)
@click.option(
    "--service-host",
    default=None,
    help="Where Freshdesk reaches this service, as a host name (regulars.example.com): the "
    "default of the app's service host setting. Without it the admin types it at install.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("dist", "regulars-freshdesk.zip"),
    show_default=True,
    help="Where to write the zip.",
)
def freshdesk_command(service_host: str | None, out_path: Path) -> None:
    """Validate the Freshdesk app package offline and write its zip if nothing is wrong."""
    problems = freshdesk_builder.build_package(service_host=service_host, out_path=out_path)
    for problem in problems:
        click.echo(str(problem), err=True)
    if has_errors(problems):
        raise click.exceptions.Exit(1)
    click.echo(f"Wrote {out_path} ({out_path.stat().st_size} bytes).")

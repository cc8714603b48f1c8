"""`flask effects compute`: fill in what customers did after each shown or held-out suggestion."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from plugin import db
from plugin.clock import utcnow
from plugin.helpdesks.interface import HelpdeskError
from plugin.helpdesks.runtime import client_for
from plugin.models import Installation
from plugin.reports.outcomes import BATCH_SIZE, compute_outcomes
from plugin.reports.ratings import read_ratings

effects_cli = AppGroup("effects", help="The measured effect of rules: outcomes for the report.")


@effects_cli.command("ratings")
def ratings() -> None:
    """Read the helpdesks' new satisfaction survey answers (compute does this first)."""
    if not _read_ratings():
        raise SystemExit(1)


def _read_ratings() -> bool:
    """Read every installation's new answers; say what each read did. False if one failed."""
    session = db.session()
    all_read = True
    for installation in session.scalars(sa.select(Installation).order_by(Installation.id)):
        name = installation.display_name or installation.account
        try:
            helpdesk = client_for(installation)
        except HelpdeskError as error:
            click.echo(f"{name}: satisfaction not read: {error}", err=True)
            all_read = False
            continue
        run = read_ratings(session, installation, helpdesk, now=utcnow())
        said = (
            f"{name}: {run.read} survey answers since {run.since:%Y-%m-%d %H:%M}, {run.kept} kept"
        )
        if run.problem:
            click.echo(f"{said}; stopped: {run.problem} (the next read goes on)", err=True)
            all_read = False
        else:
            click.echo(said)
    return all_read


@effects_cli.command("compute")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(100))
@click.option(
    "--ratings/--no-ratings",
    default=True,
    show_default=True,
    help="Read the helpdesks' new satisfaction answers first.",
)
def compute(batch_size: int, ratings: bool) -> None:
    """Compute the outcomes of every exposure whose windows are not all past (schedule daily).

    A helpdesk that cannot be read is reported; the outcomes are computed all the same, and
    its answers join at a later compute."""
    if ratings:
        _read_ratings()
    run = compute_outcomes(db.session(), now=utcnow(), batch_size=batch_size)
    click.echo(
        f"{run.rows} exposures in {run.batches} batches, {run.finalised} final, {run.seconds:.1f}s"
    )

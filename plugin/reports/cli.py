"""`flask effects compute`: fill in what customers did after each shown or held-out suggestion."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from plugin import db
from plugin.clock import utcnow
from plugin.reports.outcomes import BATCH_SIZE, compute_outcomes

effects_cli = AppGroup("effects", help="The measured effect of rules: outcomes for the report.")


@effects_cli.command("compute")
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(100))
def compute(batch_size: int) -> None:
    """Compute the outcomes of every exposure whose windows are not all past (schedule daily)."""
    run = compute_outcomes(db.session(), now=utcnow(), batch_size=batch_size)
    click.echo(
        f"{run.rows} exposures in {run.batches} batches, {run.finalised} final, {run.seconds:.1f}s"
    )

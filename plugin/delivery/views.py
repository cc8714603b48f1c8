"""The console's delivery section: actions that did not reach their tickets, and a Retry.

Lists the installation's dead deliveries (parked after too many failures, or an error no
retry fixes: the ticket is gone, the credentials were refused) and those still failing or
stuck (no worker moving them), each with its last error; Retry sends one again, Retry all
every dead one. Every route answers the console page's fetch (bearer session, supervisors and
admins) with the section's HTML; an action of another installation is a 404. The outbox
itself is in `plugin/delivery/outbox.py`.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from plugin import db
from plugin.clock import utcnow
from plugin.console.views import ConsoleRefused, console_installation, console_refused
from plugin.delivery import outbox as delivery
from plugin.domain.wording import N_, ngettext
from plugin.models import Installation

bp = Blueprint("console_delivery", __name__, url_prefix="/console")
bp.register_error_handler(ConsoleRefused, console_refused)


@bp.get("/deliveries")
def deliveries() -> ResponseReturnValue:
    """Render the counts by state and the deliveries that need a look."""
    return _section(console_installation())


@bp.post("/deliveries/<int:action_id>/retry")
def retry_one(action_id: int) -> ResponseReturnValue:
    """Send one dead or waiting action again now."""
    installation = console_installation()
    count = delivery.retry(
        db.session(),
        now=utcnow(),
        installation_id=installation.id,
        action_ids=[action_id],
        dead_only=False,
    )
    if not count:
        message = "That action is not waiting for delivery here; it may have arrived already."
        return render_template("sidebar/_problem.html", message=message), 404
    return _section(
        installation, status=N_("Action %(id)s will be sent again in a moment.", id=action_id)
    )


@bp.post("/deliveries/retry-dead")
def retry_dead() -> ResponseReturnValue:
    """Send every dead action of the installation again now."""
    installation = console_installation()
    count = delivery.retry(db.session(), now=utcnow(), installation_id=installation.id)
    status = (
        ngettext(
            "%(num)d action will be sent again in a moment.",
            "%(num)d actions will be sent again in a moment.",
            count,
        )
        if count
        else N_("No dead actions to send again.")
    )
    return _section(installation, status=status)


def _section(installation: Installation, *, status: str | None = None) -> tuple[str, int]:
    session = db.session()
    now = utcnow()
    return render_template(
        "console/_deliveries.html",
        counts=delivery.counts(session, now=now, installation_id=installation.id),
        problems=delivery.problems(session, installation.id, now=now),
        status=status,
        now=now,
    ), 200

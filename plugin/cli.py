"""The installed `regulars` command: every `flask --app plugin` command, plus serve and worker.

regulars db upgrade        the same as `flask --app plugin db upgrade`, and so on
regulars serve             gunicorn with the packaged configuration (packaging/gunicorn.conf.py)
regulars worker            the outbox worker, the same as `flask --app plugin outbox work`
"""

from __future__ import annotations

import os
import sys

import click
from flask.cli import FlaskGroup

from plugin import create_app
from plugin.delivery.cli import work_command
from plugin.resources import resource_path

APP_SPEC = "plugin:create_app()"

cli = FlaskGroup(
    name="regulars",
    create_app=create_app,
    help="Regulars: the helpdesk sidebar service. Settings come from the environment "
    "(REGULARS_*, DATABASE_URL) and a .env file.",
)
cli.add_command(work_command, "worker")


def gunicorn_command(extra: tuple[str, ...]) -> list[str]:
    """The gunicorn command line `regulars serve` runs, with the caller's extra options."""
    config = resource_path("packaging") / "gunicorn.conf.py"
    return [sys.executable, "-m", "gunicorn", "-c", str(config), *extra, APP_SPEC]


@cli.command(
    "serve",
    with_appcontext=False,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("gunicorn_options", nargs=-1, type=click.UNPROCESSED)
def serve_command(gunicorn_options: tuple[str, ...]) -> None:
    """Run the service with gunicorn and the packaged production configuration.

    It listens on REGULARS_BIND (default 127.0.0.1:8000) with REGULARS_WORKERS processes of
    REGULARS_THREADS threads; any other gunicorn option may follow, e.g. `-- --timeout 60`.
    """
    command = gunicorn_command(gunicorn_options)
    # gunicorn takes over this process, so a service manager's signals reach it directly.
    os.execv(command[0], command)  # noqa: S606 (our own interpreter, no shell)


def main() -> None:
    """The console script's entry point."""
    cli.main(prog_name="regulars")

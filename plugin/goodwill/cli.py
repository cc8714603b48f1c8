"""`flask rules`: an installation's exception catalog, budgets and rules as a JSON file.

A team can keep the file in version control: `export` writes it (sorted, stable), `import`
checks all of it first and reports each problem at its path, then writes new rule versions in
one transaction; `history` and `rollback` read and restore a rule's versions.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import IO

import click
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from plugin import db
from plugin.clock import utcnow
from plugin.domain.personas import InvalidConditions
from plugin.goodwill.errors import NotFound
from plugin.goodwill.rulebook import Author, find_rule, rollback_rule, rule_history
from plugin.goodwill.transfer import export_rules, import_rules
from plugin.helpdesks.installations import RegistrationError, installation_named
from plugin.models import Installation

rules_cli = AppGroup(
    "rules", help="Exception catalog, budgets and rules: import, export, roll back."
)

INSTALLATION_HELP = "account or platform:account"


def _installation(session: Session, name: str) -> Installation:
    try:
        return installation_named(session, name)
    except RegistrationError as error:
        raise click.UsageError(str(error)) from None


def _author(name: str | None) -> Author:
    """Who is writing: the --author given, or the user running the command."""
    if name:
        return Author(id=None, name=name)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        user = "unknown"
    return Author(id=None, name=f"{user} (command line)")


@rules_cli.command("export")
@click.option("--installation", "name", required=True, help=INSTALLATION_HELP)
@click.option(
    "--output", type=click.Path(dir_okay=False, writable=True), help="Write here, not stdout."
)
def export_command(name: str, output: str | None) -> None:
    """Write the catalog, budgets and current rules as JSON."""
    with db.database().sessions() as session:
        installation = _installation(session, name)
        exported = export_rules(session, installation)
    text = json.dumps(exported, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as file:
            file.write(text)
        click.echo(
            f"Wrote {len(exported['exceptions'])} exceptions, {len(exported['budgets'])} "
            f"budgets and {len(exported['rules'])} rules to {output}.",
            err=True,
        )
    else:
        sys.stdout.write(text)


@rules_cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--installation", "name", required=True, help=INSTALLATION_HELP)
@click.option("--author", help="Who the new versions are by (default: your user name).")
@click.option("--note", default="", help="Why: recorded on every new version.")
def import_command(file: IO[str], name: str, author: str | None, note: str) -> None:
    """Check FILE whole, then create or version what changed; nothing if anything is wrong."""
    try:
        raw = json.load(file)
    except json.JSONDecodeError as error:
        raise click.ClickException(
            f"{file.name}: not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    with db.database().sessions() as session:
        installation = _installation(session, name)
        try:
            report = import_rules(
                session, installation, raw, author=_author(author), note=note, now=utcnow()
            )
        except InvalidConditions as invalid:
            for problem in invalid.errors:
                click.echo(f"{file.name}: {problem.path or '(file)'}: {problem.message}", err=True)
            raise click.ClickException(
                f"Nothing imported: {len(invalid.errors)} problem"
                f"{'s' if len(invalid.errors) != 1 else ''}."
            ) from None
    lines = [
        ("New exceptions", report.exceptions_created),
        ("Changed exceptions", report.exceptions_updated),
        ("Budgets set", report.budgets_set),
        ("New rules", report.rules_created),
        ("New rule versions", report.rules_versioned),
        ("Unchanged rules", report.rules_unchanged),
        ("Rules not in the file (left as they are)", report.rules_not_in_file),
    ]
    for label, keys in lines:
        if keys:
            click.echo(f"{label}: {', '.join(keys)}")
    if not report.changed:
        click.echo("Nothing changed.")


@rules_cli.command("history")
@click.option("--installation", "name", required=True, help=INSTALLATION_HELP)
@click.option("--rule", "rule_name", required=True, help="The rule's id or key.")
def history_command(name: str, rule_name: str) -> None:
    """List a rule's versions: who wrote each, when and why."""
    with db.database().sessions() as session:
        installation = _installation(session, name)
        try:
            rule = find_rule(session, installation.id, rule_name)
            versions = rule_history(session, installation.id, rule.id)
        except NotFound as missing:
            raise click.ClickException(str(missing)) from None
        for version in versions:
            current = " (current)" if version.version == rule.current_version else ""
            restored = (
                f" [copy of version {version.restored_from}]" if version.restored_from else ""
            )
            note = f": {version.note}" if version.note else ""
            click.echo(
                f"v{version.version}{current} {version.created_at:%Y-%m-%d %H:%M} "
                f"by {version.author_name}{restored}{note}"
            )


@rules_cli.command("rollback")
@click.option("--installation", "name", required=True, help=INSTALLATION_HELP)
@click.option("--rule", "rule_name", required=True, help="The rule's id or key.")
@click.option("--to-version", type=click.IntRange(min=1), required=True)
@click.option("--author", help="Who rolls back (default: your user name).")
@click.option("--note", help="Why (default: 'Rolled back to version N').")
def rollback_command(
    name: str, rule_name: str, to_version: int, author: str | None, note: str | None
) -> None:
    """Put an old version of a rule back in force, as a new version that copies it."""
    with db.database().sessions() as session:
        installation = _installation(session, name)
        try:
            rule = find_rule(session, installation.id, rule_name)
            version = rollback_rule(
                session,
                installation,
                rule.id,
                to_version=to_version,
                author=_author(author),
                note=note,
                now=utcnow(),
            )
        except NotFound as missing:
            raise click.ClickException(str(missing)) from None
        except InvalidConditions as invalid:
            raise click.ClickException(
                f"Version {to_version} no longer validates: {invalid}"
            ) from None
        except ValueError as error:
            raise click.ClickException(str(error)) from None
        click.echo(
            f"Rule {rule.key} is at version {version.version}, a copy of version {to_version}."
        )

"""What the helpdesk and shop commands share: options, secrets from the environment, mappings.

Secrets never come from the command line, where `ps` and shell history would show them: they
come from an environment variable or a hidden prompt (`read_secret`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
from flask import current_app
from sqlalchemy.orm import Session

from plugin import db
from plugin.helpdesks.credentials import EXTENSION_KEY as VAULT_KEY
from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.field_mappings import MappingError, add_mapping, list_mappings, remove_mapping
from plugin.helpdesks.installations import CheckStatus
from plugin.models import Installation

MARKS = {CheckStatus.OK: "✓", CheckStatus.FAILED: "✗", CheckStatus.SKIPPED: "-"}
DEFAULT_TIMEOUT = 10.0

Command = TypeVar("Command", bound=Callable[..., Any])
# Finds the installation a command names, or raises a ClickException saying how to register it.
InstallationOf = Callable[[Session], Installation]


def timeout_option(service: str) -> Callable[[Command], Command]:
    """`--timeout`: the seconds to wait for each call to `service` (Zendesk, Shopify ...)."""
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help=f"Seconds to wait for each {service} call.",
    )


def vault() -> CredentialsVault:
    """The app's vault for stored credentials."""
    found: CredentialsVault = current_app.extensions[VAULT_KEY]
    return found


def read_secret(variable: str, label: str) -> str:
    """A secret from the environment variable, or else asked for without echoing it."""
    secret = os.environ.get(variable, "").strip()
    if secret:
        return secret
    answer: str = click.prompt(f"{label} (or set {variable})", hide_input=True)
    if not answer.strip():
        raise click.UsageError(f"No {label} given.")
    return answer.strip()


def map_fact(
    installation_of: InstallationOf,
    *,
    kind: str,
    key: str,
    fact_name: str,
    labels: Mapping[str, str],
) -> None:
    """Read a helpdesk field or tag as a customer fact, and say so."""
    with db.database().sessions() as session:
        installation = installation_of(session)
        try:
            mapping = add_mapping(session, installation, kind=kind, key=key, fact_name=fact_name)
        except MappingError as error:
            raise click.UsageError(str(error)) from None
        session.commit()
    click.echo(f"Mapped {labels[kind]} {mapping.key} to the fact {mapping.fact_name}.")


def unmap_fact(
    installation_of: InstallationOf, *, kind: str, key: str, labels: Mapping[str, str]
) -> None:
    """Stop reading a helpdesk field or tag as a fact; an error if it was not mapped."""
    with db.database().sessions() as session:
        installation = installation_of(session)
        try:
            removed = remove_mapping(session, installation, kind=kind, key=key)
        except MappingError as error:
            raise click.UsageError(str(error)) from None
        session.commit()
    if not removed:
        raise click.ClickException(f"No mapping of {labels[kind]} {key} to remove.")
    click.echo(f"Unmapped {labels[kind]} {key}.")


def echo_mappings(
    installation_of: InstallationOf, *, labels: Mapping[str, str], map_command: str
) -> None:
    """List which fields and tags become which facts, or how to add the first."""
    with db.database().sessions() as session:
        mappings = list_mappings(session, installation_of(session))
    if not mappings:
        click.echo(f"No mappings. Add one with `{map_command}`.")
    for mapping in mappings:
        label = labels.get(mapping.kind, mapping.kind)
        click.echo(f"{label} {mapping.key} -> {mapping.fact_name}")

"""What the app package validators report: one broken rule per problem, error or warning."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One broken rule: its id, a sentence naming the field, and how serious it is."""

    rule: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.severity} [{self.rule}] {self.message}"


def has_errors(problems: Iterable[Problem]) -> bool:
    """Tell whether any problem is an error rather than a warning."""
    return any(found.severity == "error" for found in problems)

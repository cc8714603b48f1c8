"""The goodwill services' errors, which the views turn into answers: nothing of that id in this
installation (404), a refusal that says why, or what does not validate, at its field or path (400).
"""

from __future__ import annotations

from plugin.domain.field_errors import FieldErrors
from plugin.domain.personas import InvalidConditions


class NotFound(LookupError):
    """No such catalog entry, rule, version or action in this installation."""


class ActionRefused(ValueError):
    """The action is well formed but the rules, a cap or a budget forbid it now; says why."""


class InvalidAction(FieldErrors):
    """An action with fields that do not validate: the message for each field, by its name."""


class InvalidImport(InvalidConditions):
    """An import file that does not validate, with every problem at its path (`rules[2].cap`)."""


def path_under(path: str, key: str) -> str:
    """The path of `key` under `path`: "rules[2]" and "cap" -> "rules[2].cap"."""
    if not key:
        return path
    if not path:
        return key
    return path + key if key.startswith("[") else f"{path}.{key}"

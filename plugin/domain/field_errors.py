"""The one shape of a validation failure the web layer can show beside its inputs."""

from __future__ import annotations

from collections.abc import Mapping


class FieldErrors(ValueError):
    """Input that does not validate: one message per field, keyed by the field's name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = dict(errors)

"""How Zendesk's answers read: tickets, users and organizations into the domain's values, and
the app's public key.

Anything of a shape this client cannot read is a non-retryable HelpdeskError, never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from plugin.domain.helpdesk import Person, Ticket
from plugin.domain.order_numbers import mentioned_orders
from plugin.helpdesks.http import utc_timestamp
from plugin.helpdesks.interface import HelpdeskError

NUMERIC_ID = re.compile(r"[0-9]+")
# A public key is a few hundred bytes; anything much larger is not one.
MAX_PUBLIC_KEY_BYTES = 16_384


def numeric_id(value: str, kind: str) -> str:
    """Return `value` if it can be a Zendesk id (a number), else raise: it must not reach a path."""
    if not NUMERIC_ID.fullmatch(value):
        raise HelpdeskError(f"{kind} id {value!r} is not a Zendesk id", retryable=False)
    return value


def unreadable(kind: str) -> HelpdeskError:
    return HelpdeskError(f"Zendesk sent a {kind} this client cannot read", retryable=False)


def as_object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise unreadable("response")
    return value


def object_at(payload: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The JSON object under `key`, such as the "ticket" of a Show Ticket answer."""
    value = payload.get(key)
    if not isinstance(value, dict):
        raise unreadable(key)
    return value


def list_at(payload: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The list of JSON objects under `key` (empty when absent), such as sideloaded "users"."""
    value = payload.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise unreadable(key)
    return value


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def ticket_from(raw: Mapping[str, Any]) -> Ticket:
    """Read a Zendesk ticket object."""
    try:
        via = raw.get("via") or {}
        return Ticket(
            id=str(raw["id"]),
            # Some channels leave `subject` empty and keep the text in `raw_subject`.
            subject=str(raw.get("subject") or raw.get("raw_subject") or ""),
            status=str(raw["status"]),
            channel=str(via.get("channel") or "unknown"),
            priority=_optional_str(raw.get("priority")),
            ticket_type=_optional_str(raw.get("type")),
            tags=tuple(str(tag) for tag in raw.get("tags") or ()),
            requester_id=str(raw["requester_id"]),
            created_at=utc_timestamp(raw["created_at"]),
            updated_at=utc_timestamp(raw["updated_at"]),
            # `description` is the ticket's first comment, as plain text.
            description_orders=mentioned_orders(_optional_str(raw.get("description"))),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise unreadable("ticket") from None


def person_from(raw: Mapping[str, Any]) -> Person:
    """Read a Zendesk user object, with its custom fields and tags."""
    fields = raw.get("user_fields") or {}
    tags = raw.get("tags") or []
    if raw.get("id") is None or not isinstance(fields, dict) or not isinstance(tags, list):
        raise unreadable("user")
    return Person(
        id=str(raw["id"]),
        name=str(raw.get("name") or "Unknown user"),
        email=_optional_str(raw.get("email")),
        phone=_optional_str(raw.get("phone")),
        role=_optional_str(raw.get("role")),
        role_ids=(str(raw["custom_role_id"]),) if raw.get("custom_role_id") is not None else (),
        tags=tuple(str(tag) for tag in tags),
        fields=dict(fields),
        organization_id=_optional_str(raw.get("organization_id")),
        locale=_optional_str(raw.get("locale")),
    )


def with_organization(person: Person, organizations: Mapping[str, Mapping[str, Any]]) -> Person:
    """Attach the fields of the person's organization, when Zendesk sideloaded it."""
    organization = organizations.get(person.organization_id or "")
    if organization is None:
        return person
    fields = organization.get("organization_fields") or {}
    if not isinstance(fields, dict):
        raise unreadable("organization")
    return replace(person, organization_fields=dict(fields))


def rsa_public_key_pem(content: bytes, what: str) -> str:
    """Read the app's public key (PEM, PKCS#1 or SubjectPublicKeyInfo) and return it as
    SubjectPublicKeyInfo PEM, so the same key always reads the same.
    """
    not_a_key = HelpdeskError(
        f"Zendesk answered {what} with something that is not an RSA public key in PEM form",
        retryable=False,
    )
    if len(content) > MAX_PUBLIC_KEY_BYTES:
        raise not_a_key
    try:
        key = serialization.load_pem_public_key(content)
    except (ValueError, UnsupportedAlgorithm):
        raise not_a_key from None
    if not isinstance(key, RSAPublicKey):
        raise not_a_key
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")

"""Field mappings: which helpdesk fields and tags become customer facts, and reading them."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from plugin.domain.helpdesk import Person
from plugin.helpdesks.credentials import CredentialsVault
from plugin.helpdesks.field_mappings import (
    FactMapping,
    MappingError,
    add_mapping,
    list_mappings,
    mapped_facts,
    remove_mapping,
)
from plugin.models import FieldMapping
from tests.helpdesks.zendesk_account import register


def test_mappings_are_added_listed_renamed_and_removed(
    storage_session: Session, vault: CredentialsVault
) -> None:
    acme = register(storage_session, vault)
    globex = register(storage_session, vault, subdomain="globex")

    add_mapping(storage_session, acme, kind="user_field", key="loyalty_tier", fact_name="tier")
    add_mapping(storage_session, acme, kind="tag", key=" VIP ", fact_name="vip")
    add_mapping(
        storage_session, acme, kind="organization_field", key="account_manager", fact_name="am"
    )
    renamed = add_mapping(
        storage_session, acme, kind="user_field", key="loyalty_tier", fact_name="loyalty"
    )
    storage_session.commit()

    assert renamed == FactMapping("user_field", "loyalty_tier", "loyalty")
    assert list_mappings(storage_session, acme) == [
        FactMapping("organization_field", "account_manager", "am"),
        FactMapping("tag", "vip", "vip"),
        FactMapping("user_field", "loyalty_tier", "loyalty"),
    ]
    assert list_mappings(storage_session, globex) == []

    assert remove_mapping(storage_session, acme, kind="tag", key="VIP")
    assert not remove_mapping(storage_session, acme, kind="tag", key="vip")
    assert not remove_mapping(storage_session, globex, kind="user_field", key="loyalty_tier")
    storage_session.commit()
    assert [m.key for m in list_mappings(storage_session, acme)] == [
        "account_manager",
        "loyalty_tier",
    ]


def test_one_fact_comes_from_one_field_only(session: Session, vault: CredentialsVault) -> None:
    installation = register(session, vault)
    add_mapping(session, installation, kind="user_field", key="tier", fact_name="tier")

    with pytest.raises(MappingError, match="'tier' already comes from user field 'tier'"):
        add_mapping(session, installation, kind="organization_field", key="tier", fact_name="tier")


@pytest.mark.parametrize(
    ("kind", "key", "fact_name", "expected"),
    [
        ("custom_field", "tier", "tier", "kind must be one of"),
        ("user_field", "", "tier", "field key must be"),
        ("user_field", "loyalty tier", "tier", "no spaces"),
        ("tag", "x" * 256, "big", "tag must be"),
        ("tag", "vip", "VIP", "fact name"),
        ("tag", "vip", "1st", "fact name"),
        ("tag", "vip", "vip-customer", "fact name"),
        ("tag", "vip", "v" * 101, "fact name"),
        ("tag", "vip", "", "fact name"),
    ],
)
def test_unusable_mappings_are_refused(
    session: Session,
    vault: CredentialsVault,
    kind: str,
    key: str,
    fact_name: str,
    expected: str,
) -> None:
    installation = register(session, vault)

    with pytest.raises(MappingError, match=expected):
        add_mapping(session, installation, kind=kind, key=key, fact_name=fact_name)

    assert session.scalar(sa.select(sa.func.count()).select_from(FieldMapping)) == 0


PERSON = Person(
    id="1",
    name="Ada",
    tags=("vip", "newsletter"),
    fields={"loyalty_tier": "gold", "lifetime_orders": 14, "birthday": None},
    organization_id="9",
    organization_fields={"account_manager": "Charles", "contract_tier": None},
)


def test_mapped_facts_read_tags_as_booleans_and_fields_when_set() -> None:
    mappings = [
        FactMapping("tag", "vip", "is_vip"),
        FactMapping("tag", "wholesale", "is_wholesale"),
        FactMapping("user_field", "loyalty_tier", "tier"),
        FactMapping("user_field", "lifetime_orders", "orders"),
        FactMapping("user_field", "birthday", "birthday"),
        FactMapping("user_field", "missing", "missing"),
        FactMapping("organization_field", "account_manager", "account_manager"),
        FactMapping("organization_field", "contract_tier", "contract_tier"),
    ]

    assert mapped_facts(PERSON, mappings) == {
        "is_vip": True,
        "is_wholesale": False,
        "tier": "gold",
        "orders": 14,
        "account_manager": "Charles",
    }
    assert mapped_facts(PERSON, []) == {}


def test_mapped_facts_take_stored_rows_too(session: Session, vault: CredentialsVault) -> None:
    installation = register(session, vault)
    add_mapping(session, installation, kind="tag", key="vip", fact_name="is_vip")
    rows = session.scalars(sa.select(FieldMapping)).all()

    assert mapped_facts(PERSON, rows) == {"is_vip": True}


def test_mapped_facts_refuse_a_kind_they_do_not_know() -> None:
    with pytest.raises(MappingError, match="unknown mapping kind"):
        mapped_facts(PERSON, [FactMapping("ticket_field", "x", "x")])

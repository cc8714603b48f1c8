"""Account review rules: validation per field, which template applies, and completion."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.domain.reviews import (
    MAX_ITEMS,
    Audience,
    ChecklistItem,
    CustomerSegments,
    InvalidTemplate,
    ItemRow,
    ReviewTemplate,
    TemplateForm,
    parse_template,
    progress,
    template_for,
)

PERSONAS = ("Busy regulars",)
GOOD = TemplateForm(
    name="  High-value   review ",
    priority="3",
    audience={"tier": ["high"], "persona": ["Busy regulars"]},
    items=(
        ItemRow(label="Second", position="2"),
        ItemRow(label="First", position="1", required=False, help="  look here "),
        ItemRow(),  # blank rows are ignored
        ItemRow(label="Unnumbered"),
    ),
)


def test_a_valid_form_parses_with_items_in_position_order() -> None:
    template = parse_template(GOOD, personas=PERSONAS)
    assert template.name == "High-value review" and template.priority == 3
    assert [i.label for i in template.items] == ["First", "Second", "Unnumbered"]
    assert template.items[0] == ChecklistItem(label="First", required=False, help="look here")
    assert template.audience.tiers == {"high"} and template.audience.personas == {"Busy regulars"}
    assert template.audience.describe() == "tier high or persona Busy regulars"


def test_every_wrong_field_is_reported_under_its_form_name() -> None:
    form = TemplateForm(
        name="",
        priority="-1",
        audience={"tier": ["gold"], "persona": ["Nobody"], "colour": ["red"]},
        items=(
            ItemRow(label="", help="no label"),
            ItemRow(label="Same", position="0"),
            ItemRow(label="same"),
            ItemRow(label="x" * 201, help="y" * 501),
        ),
    )
    with pytest.raises(InvalidTemplate) as invalid:
        parse_template(form, personas=PERSONAS)
    assert invalid.value.errors == {
        "name": "enter a name agents will recognise",
        "priority": "expected a whole number from 0 to 999",
        "audience-tier": "not a tier: gold",
        "audience-persona": "not a persona: Nobody",
        "audience": "unknown kind of segment: colour",
        "items-0-label": "enter what the agent checks",
        "items-1-position": f"expected a whole number from 1 to {MAX_ITEMS}",
        "items-2-label": "the same as item 2",
        "items-3-label": "at most 200 characters",
        "items-3-help": "at most 500 characters",
    }


def test_a_template_needs_an_audience_and_an_item() -> None:
    with pytest.raises(InvalidTemplate) as invalid:
        parse_template(TemplateForm(name="Empty", items=(ItemRow(),)), personas=())
    assert set(invalid.value.errors) == {"audience", "items"}
    removed = TemplateForm(
        name="Gone", audience={"tier": ["low"]}, items=(ItemRow(label="x", remove=True, item_id=4),)
    )
    with pytest.raises(InvalidTemplate) as all_removed:
        parse_template(removed, personas=())
    assert all_removed.value.errors == {"items": "add at least one item to check"}


def template(name: str, priority: int = 0, enabled: bool = True, **audience: str) -> ReviewTemplate:
    return ReviewTemplate(
        name=name,
        audience=Audience(**{kind: frozenset([value]) for kind, value in audience.items()}),
        items=(ChecklistItem("x", item_id=1),),
        priority=priority,
        enabled=enabled,
    )


def test_the_lowest_priority_enabled_template_that_fits_applies() -> None:
    champions = template("Champions", 1, rfm_segments="champions")
    high = template("High", 2, tiers="high")
    off = template("Off", 0, enabled=False, tiers="high")
    customer = CustomerSegments(tier="high", rfm_segment="champions")
    assert template_for([high, champions, off], customer) is champions
    assert template_for([high, off], CustomerSegments(tier="low")) is None
    # A prospect (no RFM, no lifecycle) matches on tier or persona only.
    persona = template("Persona", 5, personas="Busy regulars")
    assert (
        template_for([persona], CustomerSegments(tier="low", personas=frozenset({"Busy regulars"})))
        is persona
    )


@given(
    tier=st.sampled_from(["low", "medium", "high"]),
    rfm=st.none() | st.sampled_from(["champions", "lost"]),
    names=st.lists(st.sampled_from(["A", "B", "a", "C"]), min_size=1, max_size=4),
    priorities=st.lists(st.integers(0, 3), min_size=4, max_size=4),
)
def test_the_choice_never_depends_on_order(
    tier: str, rfm: str | None, names: list[str], priorities: list[int]
) -> None:
    templates = [template(name, priorities[index], tiers=tier) for index, name in enumerate(names)]
    customer = CustomerSegments(tier=tier, rfm_segment=rfm)
    chosen = template_for(templates, customer)
    assert chosen is not None
    assert template_for(list(reversed(templates)), customer) == chosen
    assert chosen.priority == min(t.priority for t in templates)


@given(
    items=st.lists(st.booleans(), max_size=8),
    checked=st.sets(st.integers(0, 9)),
)
def test_complete_exactly_when_every_required_item_is_checked(
    items: list[bool], checked: set[int]
) -> None:
    checklist = [ChecklistItem(f"item {i}", required=r, item_id=i) for i, r in enumerate(items)]
    state = progress(checklist, checked)
    required = {i for i, r in enumerate(items) if r}
    done = {i for i in range(len(items)) if i in checked}
    assert state.done == len(done) and state.total == len(items)
    if required:
        assert state.complete == required.issubset(checked)
    else:
        # Optional only: complete once anything is checked; an empty checklist never is.
        assert state.complete == bool(done)
    assert state.describe()


def test_progress_in_words() -> None:
    items = [ChecklistItem("a", item_id=1), ChecklistItem("b", item_id=2, required=False)]
    # One required item is counted as one (ngettext): "0 of 1 required items" was wrong.
    assert progress(items, {2}).describe() == "0 of 1 required item checked"
    assert progress(items, {1}).describe() == "Complete: 1 of 2 items checked"
    both = [ChecklistItem("a", item_id=1), ChecklistItem("b", item_id=2)]
    assert progress(both, {2}).describe() == "1 of 2 required items checked"

"""The scale-out deployment end to end: two service processes and two outbox workers on one
PostgreSQL database, against a fake Zendesk (README, "Scale out: two processes, two workers,
one PostgreSQL"; the deployment is in tests/e2e/scale_out.py).

1. Agents act on suggestions through both processes at once: every action reaches its ticket
   exactly once, in order per ticket, whichever process recorded it and whichever worker
   sent it; a retried POST landing on the other process records nothing twice.
2. A supervisor turns a rule off through process A's console: process B's suggestions card
   drops it on the first request B serves after the change, and the other way round.
3. A worker is SIGKILLed after its notes reached the tickets but before it could record
   that: the other workers take its actions over when its lease runs out, find those notes
   by their markers, and send the rest; nothing is lost or sent twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.fake_zendesk import FaultPlan
from bench.load import Client
from plugin.demo.exceptions_seed import demo_rules_file
from tests.e2e import scale_out
from tests.e2e.scale_out import Agent, Deployment
from tests.postgres_cluster import create_database, drop_database

pytestmark = pytest.mark.postgres

# Ticket 1058 (Margaret Okafor, high value, a late parcel): the rule below suggests expedited
# shipping on it. It is left alone by the agents, for the rule change.
RULE_TICKET = 1058
RULE = "late_delivery_high_value"
MARGIN_SECONDS = 10.0  # on top of the documented bound, for a busy machine
MIN_ACTIONS = 40
KILL_ACTIONS = 12


@pytest.fixture
def world(postgres_base_url: str, tmp_path: Path) -> Iterator[Deployment]:
    url = create_database(postgres_base_url)
    try:
        with scale_out.deployment(url, tmp_path) as deployed:
            yield deployed
    finally:
        drop_database(postgres_base_url, url)


def reasons(kind: str) -> dict[str, list[str]]:
    """Each catalog entry's reason codes for applying (`apply`) or dismissing (`dismiss`)."""
    return {
        entry["key"]: [reason["code"] for reason in entry[f"{kind}_reasons"]]
        for entry in demo_rules_file()["exceptions"]
    }


def test_two_processes_and_two_workers_share_one_database(world: Deployment) -> None:
    try:
        scale_out_end_to_end(world)
    except BaseException:
        print(scale_out.logs(world.folder))
        raise


def scale_out_end_to_end(world: Deployment) -> None:
    started = time.monotonic()
    agents = {
        service: world.sidebar_session(service, user)
        for service, user in (("a", "80001"), ("b", "80002"))
    }
    # What the rules suggest on each ticket, read through both processes in turn.
    offered = [
        (ticket, exception)
        for ticket in world.tickets()
        for exception, _rule in world.offers("ab"[ticket % 2], agents["ab"[ticket % 2]], ticket)
        if ticket != RULE_TICKET
    ]
    assert len(offered) >= 20, offered

    recorded = agents_act_through_both_processes(world, offered)
    world.wait_until_delivered(timeout=30)
    notes = world.notes()
    assert notes.actions == len(recorded) >= MIN_ACTIONS
    assert (notes.delivered, notes.dead, notes.open) == (notes.actions, 0, 0)
    assert (notes.duplicates, notes.lost, notes.misplaced) == (0, 0, 0)
    assert notes.out_of_order_tickets == 0
    reports = world.workers.stop_all()
    # Each delivery was made by one worker: together they delivered each action once.
    assert sum(report.delivered for report in reports) == notes.actions
    print(
        f"\nscale-out: {notes.actions} actions recorded through 2 processes, delivered "
        f"{notes.delivered}, duplicates {notes.duplicates}, lost {notes.lost}, dead "
        f"{notes.dead}; by worker: "
        + ", ".join(f"{report.name} {report.delivered}" for report in reports)
    )

    rule_change_is_in_force_on_the_other_process(world, agents)
    a_killed_worker_loses_and_duplicates_nothing(world, agents, offered)
    print(f"scale-out: the whole test took {time.monotonic() - started:.1f} s after start-up")


def agents_act_through_both_processes(
    world: Deployment, offered: list[tuple[int, str]]
) -> set[str]:
    """Apply every offer once and dismiss it twice (two reasons), four agents at once over
    both processes; the keys of the actions recorded."""
    applying, dismissing = reasons("apply"), reasons("dismiss")
    plan = [("apply", applying, 0), ("dismiss", dismissing, 0), ("dismiss", dismissing, 1)]
    forms = [
        world.action_form(ticket, exception, kind, codes[exception][i], f"so-{kind}{i}-{n:04d}")
        for kind, codes, i in plan
        for n, (ticket, exception) in enumerate(offered)
    ]
    # (the process posted to, the process the agent's session was launched through): a
    # session from one process is good on the other, since they share the secret key.
    lanes = [("a", "a", "80001"), ("b", "b", "80002"), ("a", "b", "80003"), ("b", "a", "80001")]

    def lane(index: int) -> list[tuple[str, int]]:
        to, launched, user = lanes[index]
        agent = world.sidebar_session(launched, user)
        client = Client(world.services[to].port)
        try:
            return [
                (form["idempotency_key"], world.act(client, agent, form).status)
                for form in forms[index :: len(lanes)]
            ]
        finally:
            client.close()

    with ThreadPoolExecutor(len(lanes)) as pool:
        answers = [answer for result in pool.map(lane, range(len(lanes))) for answer in result]
    statuses = Counter(status for _key, status in answers)
    # 409: a cap or budget refused an apply, as it should; anything else is a failure.
    assert set(statuses) <= {200, 409}, statuses
    recorded = {key for key, status in answers if status == 200}
    assert all(key.startswith("so-apply") for key, status in answers if status == 409)

    # An agent's retry that lands on the other process is the same action, not a second one.
    before = world.notes().actions
    agent = world.sidebar_session("b", "80003")
    retried = [form for form in forms if form["idempotency_key"] in recorded][:6]
    for form in retried:
        assert world.act(world.http("b"), agent, form).status == 200
    assert world.notes().actions == before == len(recorded)
    return recorded


def rule_change_is_in_force_on_the_other_process(
    world: Deployment, agents: dict[str, Agent]
) -> None:
    """Turn the rule off through A's console, see B drop it; on through B's, see A take it."""
    for changed_on, seen_on, on in (("a", "b", False), ("b", "a", True)):
        # The process that must see the change has just served the card with the old rules,
        # so its copy of the rule book is warm.
        old = world.offers(seen_on, agents[seen_on], RULE_TICKET)
        assert any(rule == RULE for _exception, rule in old) is not on, old
        world.set_rule_enabled(changed_on, world.console_session(changed_on), RULE, on)
        changed = time.monotonic()
        polls = 0
        while True:
            polls += 1
            now = world.offers(seen_on, agents[seen_on], RULE_TICKET)
            if any(rule == RULE for _exception, rule in now) is on:
                break
            assert time.monotonic() - changed < (
                scale_out.RULE_PROPAGATION_BOUND_SECONDS + MARGIN_SECONDS
            ), f"process {seen_on} still shows the old rules: {now}"
            time.sleep(0.05)
        delay = time.monotonic() - changed
        print(
            f"scale-out: {RULE} turned {'on' if on else 'off'} through process {changed_on}, "
            f"in force on process {seen_on} after {delay * 1000:.0f} ms ({polls} request(s))"
        )
        assert delay <= scale_out.RULE_PROPAGATION_BOUND_SECONDS + MARGIN_SECONDS
        # The documented bound is none: the first request after the change has it.
        assert polls == 1


def a_killed_worker_loses_and_duplicates_nothing(
    world: Deployment, agents: dict[str, Agent], offered: list[tuple[int, str]]
) -> None:
    codes = reasons("dismiss")
    first_offer: dict[int, str] = {}
    for ticket, exception in offered:
        first_offer.setdefault(ticket, exception)
    tickets = list(first_offer.items())[:KILL_ACTIONS]
    for n, (ticket, exception) in enumerate(tickets):
        service = "ab"[n % 2]
        form = world.action_form(
            ticket, exception, "dismiss", codes[exception][-1], f"kill-{n:04d}"
        )
        assert world.act(world.http(service), agents[service], form).status == 200
    assert world.open_deliveries() == len(tickets)

    # Every note now reaches its ticket, but the answer hangs: the worker cannot know.
    world.fake.app_state.set_faults(
        FaultPlan(
            hang_rate=1.0,
            hang_after_write_share=1.0,
            hang_seconds=3 * scale_out.LEASE_SECONDS,
            routes=frozenset({"update_ticket"}),
        )
    )
    world.workers.start("3")
    world.workers.wait_started()
    deadline = time.monotonic() + 20
    while not any("kill-" in note for ticket, _ in tickets for note in world.notes_on(ticket)):
        assert time.monotonic() < deadline, "the worker sent nothing"
        time.sleep(0.02)
    world.workers.kill("3")
    world.fake.app_state.set_faults(FaultPlan())
    written = sum("kill-" in note for ticket, _ in tickets for note in world.notes_on(ticket))

    for name in ("4", "5"):
        world.workers.start(name)
    # Both up before the wait: a worker still loading when the other has delivered everything
    # would be stopped before it could say what it did.
    world.workers.wait_started()
    world.wait_until_delivered(timeout=scale_out.LEASE_SECONDS + 30)
    notes = world.notes()
    assert (notes.delivered, notes.dead, notes.open) == (notes.actions, 0, 0)
    assert (notes.duplicates, notes.lost, notes.misplaced) == (0, 0, 0)
    assert notes.out_of_order_tickets == 0
    reports = world.workers.stop_all()
    found = sum(report.found_on_ticket for report in reports)
    taken_over = sum(report.takeovers for report in reports)
    # The killed worker's notes were found on their tickets, not sent again.
    assert found >= written >= 1
    assert taken_over >= found
    print(
        f"scale-out: worker killed with {written} note(s) written and unrecorded; the others "
        f"took over {taken_over} action(s), found {found} note(s) already there; "
        f"{notes.actions} actions in all, duplicates {notes.duplicates}, lost {notes.lost}"
    )

"""The catalog, budgets and rules as one JSON file: a round trip through export and import, and an
import that reports every problem at its path and writes nothing; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.demo.exceptions_seed import demo_rules_file
from plugin.goodwill import catalog, rulebook, transfer
from plugin.goodwill.errors import InvalidImport
from tests.goodwill.world import ALICE, BOB, LATE, NOW, installation


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def test_export_and_import_round_trip(session: Session) -> None:
    acme = installation(session, "acme")
    report = transfer.import_rules(session, acme, demo_rules_file(), author=ALICE, now=NOW)
    assert len(report.rules_created) == len(demo_rules_file()["rules"])
    exported = transfer.export_rules(session, acme)
    # Through a JSON file, into another installation: the same catalog, budgets and rules.
    globex = installation(session, "globex")
    transfer.import_rules(session, globex, json.loads(json.dumps(exported)), author=BOB, now=NOW)
    assert transfer.export_rules(session, globex) == exported
    # Importing the export again changes nothing and writes no version.
    again = transfer.import_rules(session, acme, exported, author=BOB, now=NOW)
    assert not again.changed and len(again.rules_unchanged) == len(exported["rules"])
    # An edited file versions only the rules it changed.
    exported["rules"][0]["priority"] = 77
    edited = transfer.import_rules(session, acme, exported, author=BOB, note="git 1a2b", now=NOW)
    assert edited.rules_versioned == (exported["rules"][0]["key"],)
    rule = rulebook.find_rule(session, acme.id, exported["rules"][0]["key"])
    assert rule.current_version == 2
    assert rulebook.rule_version(session, acme.id, rule.id, 2).note == "git 1a2b"


def test_import_reports_every_problem_at_its_path_and_writes_nothing(session: Session) -> None:
    inst = installation(session, "acme")
    broken = demo_rules_file()
    broken["exceptions"][2] = dict(broken["exceptions"][2], cost={"kind": "percent", "percent": 0})
    broken["exceptions"][3] = dict(broken["exceptions"][3], currency="EUR")
    broken["budgets"][0] = {"segment": {"field": "tier", "value": "gold"}, "monthly_cents": 1}
    broken["rules"][1] = dict(broken["rules"][1], cap={"times": 0, "days": 90})
    broken["rules"][2] = dict(broken["rules"][2], suggest=[{"exception": "free_pony"}])
    broken["rules"][3] = dict(broken["rules"][3], key=broken["rules"][0]["key"])
    broken["rules"].append({"key": "Bad Key", "name": "x", "conditions": {"all": [LATE]}})
    with pytest.raises(InvalidImport) as raised:
        transfer.import_rules(session, inst, broken, author=ALICE, now=NOW)
    paths = [e.path for e in raised.value.errors]
    assert paths == [
        "exceptions[2].cost.percent",
        "exceptions[3].currency",
        "budgets[0].segment.value",
        "rules[1].cap.times",
        "rules[2].suggest[0].exception",
        "rules[3].key",
        "rules[8].key",
        "rules[8].suggest",
    ]
    assert "listed twice" in raised.value.errors[5].message
    assert transfer.export_rules(session, inst)["rules"] == []
    assert catalog.catalog_rows(session, inst.id) == []

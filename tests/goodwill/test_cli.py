"""`flask rules`: export to a file, import it back, read a rule's history and roll it back, and an
import that does not validate imports nothing; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from plugin import db
from plugin.goodwill import rulebook
from tests.goodwill.world import set_up


@pytest.fixture
def session(storage_app: Flask) -> Iterator[Session]:
    with db.database(storage_app).sessions() as session:
        yield session


def test_the_rules_command_line_exports_imports_and_rolls_back(
    storage_app: Flask, session: Session, tmp_path: Path
) -> None:
    inst = set_up(session)
    runner = storage_app.test_cli_runner()
    out = tmp_path / "rules.json"
    result = runner.invoke(args=["rules", "export", "--installation", "acme", "--output", str(out)])
    assert result.exit_code == 0, result.output
    exported = json.loads(out.read_text())
    exported["rules"][0]["priority"] = 9
    out.write_text(json.dumps(exported))
    result = runner.invoke(
        args=[
            "rules",
            "import",
            str(out),
            "--installation",
            "acme",
            "--author",
            "ci",
            "--note",
            "bump",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "New rule versions: late_high" in result.output
    result = runner.invoke(
        args=["rules", "history", "--installation", "acme", "--rule", "late_high"]
    )
    assert "v2 (current)" in result.output and "by ci: bump" in result.output
    result = runner.invoke(
        args=[
            "rules",
            "rollback",
            "--installation",
            "acme",
            "--rule",
            "late_high",
            "--to-version",
            "1",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "version 3, a copy of version 1" in result.output
    exported["rules"][0]["conditions"]["all"][0]["value"] = "gold"
    out.write_text(json.dumps(exported))
    result = runner.invoke(args=["rules", "import", str(out), "--installation", "acme"])
    assert result.exit_code != 0
    assert "rules[0].conditions.all[0].value: expected one of" in result.output
    assert "Nothing imported: 1 problem." in result.output
    rule = rulebook.find_rule(session, inst.id, "late_high")
    session.refresh(rule)
    assert rule.current_version == 3

"""Every `flask` command the README shows works as typed from the repository root (.flaskenv)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# `flask <group> <command>` as the README and the console's pages show them.
_COMMAND = re.compile(r"\bflask ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
_SOURCES = [ROOT / "README.md", *sorted((ROOT / "templates" / "console").glob("*.html"))]


def shown_commands() -> list[str]:
    found: set[str] = set()
    for source in _SOURCES:
        for line in source.read_text(encoding="utf-8").splitlines():
            for match in _COMMAND.finditer(line.replace("--app plugin ", "")):
                found.add(match.group(1))
    return sorted(found)


def test_the_readme_shows_commands() -> None:
    assert {"db upgrade", "outbox work", "zendesk check"} <= set(shown_commands())


def test_every_shown_command_answers_help_without_naming_the_app(tmp_path: Path) -> None:
    flask = Path(sys.executable).parent / "flask"
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_APP", "DATABASE_URL")}
    env["REGULARS_INSTANCE_PATH"] = str(tmp_path)
    failed = []
    for command in shown_commands():
        words = command.split()
        result = subprocess.run(
            [str(flask), *words, "--help"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        # A group's second word may be an argument in prose ("flask data import customers"):
        # the group itself must then answer.
        if result.returncode != 0 and len(words) == 2:
            result = subprocess.run(
                [str(flask), words[0], "--help"], cwd=ROOT, env=env, capture_output=True, text=True
            )
        if result.returncode != 0:
            failed.append(f"flask {command}: {result.stderr.strip()[-300:]}")
    if failed:
        pytest.fail("\n".join(failed))

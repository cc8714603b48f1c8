"""Every `flask` and `regulars` command the README and docs/admin.md show works as typed from
the repository root (.flaskenv for flask; the installed `regulars` script)."""

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
_GUIDES = [ROOT / "README.md", ROOT / "docs" / "admin.md"]
_SOURCES = [*_GUIDES, *sorted((ROOT / "templates" / "console").glob("*.html"))]
# `regulars <group> <command>` in the guides' code (fenced blocks and `inline` spans): in prose
# "regulars" is the product's name.
_REGULARS = re.compile(r"\bregulars ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
_INLINE_CODE = re.compile(r"`([^`]+)`")


def shown_commands() -> list[str]:
    found: set[str] = set()
    for source in _SOURCES:
        for line in source.read_text(encoding="utf-8").splitlines():
            for match in _COMMAND.finditer(line.replace("--app plugin ", "")):
                found.add(match.group(1))
    return sorted(found)


def code_of(text: str) -> list[str]:
    """The text's code: the lines of fenced blocks and the inline spans of the others."""
    code: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            code.append(line)
        else:
            code.extend(_INLINE_CODE.findall(line))
    return code


def shown_regulars_commands() -> list[str]:
    found: set[str] = set()
    for guide in _GUIDES:
        for span in code_of(guide.read_text(encoding="utf-8")):
            found.update(match.group(1) for match in _REGULARS.finditer(span))
    return sorted(found)


def test_the_readme_shows_commands() -> None:
    assert {"db upgrade", "outbox work", "zendesk check"} <= set(shown_commands())


def test_the_admin_guide_shows_regulars_commands() -> None:
    shown = set(shown_regulars_commands())
    assert {"db upgrade", "serve", "worker", "data shopify", "data import"} <= shown


@pytest.mark.parametrize("program", ["flask", "regulars"])
def test_every_shown_command_answers_help_without_naming_the_app(
    tmp_path: Path, program: str
) -> None:
    executable = Path(sys.executable).parent / program
    commands = shown_commands() if program == "flask" else shown_regulars_commands()
    env = {k: v for k, v in os.environ.items() if k not in ("FLASK_APP", "DATABASE_URL")}
    env["REGULARS_INSTANCE_PATH"] = str(tmp_path)
    failed = []
    for command in commands:
        words = command.split()
        result = subprocess.run(
            [str(executable), *words, "--help"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        # A group's second word may be an argument in prose ("flask data import customers"):
        # the group itself must then answer.
        if result.returncode != 0 and len(words) == 2:
            result = subprocess.run(
                [str(executable), words[0], "--help"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
        if result.returncode != 0:
            failed.append(f"{program} {command}: {result.stderr.strip()[-300:]}")
    if failed:
        pytest.fail("\n".join(failed))

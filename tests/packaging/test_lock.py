"""requirements/lock.txt and setup.cfg agree: every requirement is locked, at a version it allows.

scripts/lock.sh writes the lock from setup.cfg; scripts/setup.sh installs from it. A change to
setup.cfg without running scripts/lock.sh fails here, not on a fresh machine.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def declared() -> list[Requirement]:
    """setup.cfg's install_requires and every extra's requirements."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = config["options"]["install_requires"].splitlines()
    for extra in config["options.extras_require"].values():
        lines += extra.splitlines()
    return [Requirement(line) for line in (line.strip() for line in lines) if line]


def locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def test_the_lock_pins_every_requirement_at_a_version_setup_cfg_allows() -> None:
    pins = locked()
    problems = []
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement}: the lock has {pins[name]}")
        # An extra's packages (PyJWT[crypto], psycopg[binary]) are locked by their own names.
    assert not problems, "run scripts/lock.sh: " + "; ".join(problems)


def test_every_locked_package_has_hashes_and_no_source_is_named() -> None:
    text = LOCK.read_text(encoding="utf-8")
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [entry for entry in entries if _PIN.match(entry)]
    assert len(pinned) == len(locked()) >= 30
    assert all("--hash=sha256:" in entry for entry in pinned)
    # Only package names and hashes: where they come from is the installer's configuration.
    for option in ("--index-url", "--extra-index-url", "--find-links", "--trusted-host", "-e "):
        assert not any(line.startswith(option) for line in text.splitlines()), option
    assert "://" not in text


def test_the_tools_are_pinned_exactly() -> None:
    requirements: dict[str, Requirement] = {canonicalize_name(r.name): r for r in declared()}
    for tool in ("ruff", "mypy"):
        specifiers = list(requirements[tool].specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", requirements[tool]
        assert locked()[tool] == Version(specifiers[0].version)


def test_setup_installs_the_lock_then_the_package_without_its_dependencies() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert "LOCK=requirements/lock.txt" in setup
    assert '--require-hashes -r "$LOCK"' in setup
    assert "--no-deps --no-build-isolation -e ." in setup
    assert "requirements/lock.txt" in (ROOT / "scripts" / "lock.sh").read_text(encoding="utf-8")

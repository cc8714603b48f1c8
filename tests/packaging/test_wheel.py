"""The package as built: a wheel, installed (not editable), migrates, seeds the demo and serves.

The wheel is built offline from a copy of the sources, without build isolation (setuptools and
wheel come with the test extras), and installed with --target into a temporary folder. Every
command then runs from a folder outside the repository with `python -S` and a PYTHONPATH of
that folder and this environment's site-packages: the checkout (and the editable install's
finder) is not importable, so the installed copy is what runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugin.resources import BUNDLED

ROOT = Path(__file__).resolve().parents[2]
BUILD_FILES = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in")
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc")


def run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the sources (the build writes build/ and egg-info)."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "plugin", source / "plugin", ignore=SKIPPED)
    for name in BUNDLED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=SKIPPED)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    run([*pip_wheel, "--no-index", "-q", "-w", str(dist), str(source)], cwd=source)
    (built,) = dist.glob("regulars-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip_install = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q"]
    run([*pip_install, "--target", str(target), str(wheel)], cwd=target)
    return target


@pytest.fixture
def outside(installed: Path, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A working folder outside the repository and the environment that runs the installed copy."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REGULARS_", "FLASK_")) and key not in ("DATABASE_URL", "PYTHONPATH")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(installed), sysconfig.get_paths()["purelib"]])
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'regulars.sqlite3'}"
    env["REGULARS_INSTANCE_PATH"] = str(tmp_path / "instance")
    work = tmp_path / "work"
    work.mkdir()
    yield work, env


def python(*args: str) -> list[str]:
    # -S: no site-packages .pth files, so the editable install's finder cannot import the checkout.
    return [sys.executable, "-S", *args]


def test_the_wheel_carries_templates_static_migrations_and_the_app_packages(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "plugin/_bundled/templates/sidebar/page.html",
        "plugin/_bundled/static/css/sidebar.css",
        "plugin/_bundled/migrations/env.py",
        "plugin/_bundled/migrations/versions/0001_initial.py",
        "plugin/_bundled/packaging/gunicorn.conf.py",
        "plugin/_bundled/packaging/freshdesk/manifest.json",
        "plugin/_bundled/manifest.json",
        # Compiled at build time from the .po catalogs (docs/i18n.md).
        "plugin/_bundled/translations/de/LC_MESSAGES/messages.mo",
        "plugin/_bundled/translations/es/LC_MESSAGES/messages.po",
    ):
        assert expected in names
    assert not [name for name in names if "__pycache__" in name]
    (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    assert "regulars = plugin.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_package_migrates_seeds_and_serves_the_demo(
    installed: Path, outside: tuple[Path, dict[str, str]]
) -> None:
    work, env = outside
    where = run(
        python("-c", "import plugin.resources as r; print(r.source_root())"), cwd=work, env=env
    )
    assert Path(where.strip()) == installed / "plugin" / "_bundled"

    run(python("-m", "flask", "--app", "plugin", "db", "upgrade"), cwd=work, env=env)
    run(python("-m", "flask", "--app", "plugin", "demo", "seed"), cwd=work, env=env)
    served = run(python("-c", SERVE_THE_DEMO), cwd=work, env=env)
    assert served.split() == ["/demo", "200", "/demo/freshdesk", "200", "static", "200", "ok"]


SERVE_THE_DEMO = """
from flask import url_for
from plugin import create_app

app = create_app()
client = app.test_client()
for path in ("/demo", "/demo/freshdesk"):
    # The Zendesk-style desk renders templates; the Freshdesk one reads packaging/freshdesk.
    page = client.get(path)
    print(path, page.status_code)
    assert page.status_code != 200 or b"<html" in page.data.lower(), page.data[:300]
with app.test_request_context():
    asset = url_for("static", filename="css/sidebar.css")
answer = client.get(asset)
print("static", answer.status_code)
assert b"{" in answer.data and len(answer.data) > 1000, answer.data[:300]
print("ok")
"""


def test_the_installed_regulars_command_lists_every_command(
    installed: Path, outside: tuple[Path, dict[str, str]]
) -> None:
    work, env = outside
    assert (installed / "bin" / "regulars").is_file()
    listing = run(
        python(
            "-c",
            "import sys; from plugin.cli import main; sys.argv[0] = 'regulars'; main()",
            "--help",
        ),
        cwd=work,
        env=env,
    )
    for command in ("db", "demo", "outbox", "serve", "worker", "zendesk", "freshdesk"):
        assert f"  {command} " in listing

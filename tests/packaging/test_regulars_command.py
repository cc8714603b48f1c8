"""The `regulars` command: the flask commands, `serve` (gunicorn, packaged config), `worker`."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.service import free_port
from plugin import db
from plugin.cli import cli, gunicorn_command
from plugin.resources import resource_path

REGULARS = [sys.executable, "-c", "from plugin.cli import main; main()"]


@pytest.fixture(autouse=True)
def restored_environment() -> Iterator[None]:
    """Flask's CLI writes .flaskenv's values and FLASK_RUN_FROM_CLI into os.environ: undo it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'regulars.sqlite3'}"
    db.upgrade(url)
    values = {
        "DATABASE_URL": url,
        "REGULARS_INSTANCE_PATH": str(tmp_path / "instance"),
        "REGULARS_SECRET_KEY": "s" * 48,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_help_lists_the_flask_commands_and_serve_and_worker(environment: dict[str, str]) -> None:
    listing = CliRunner().invoke(cli, ["--help"], prog_name="regulars")
    assert listing.exit_code == 0, listing.output
    assert listing.output.startswith("Usage: regulars")
    for command in ("db", "demo", "outbox", "zendesk", "freshdesk", "data", "serve", "worker"):
        assert f"  {command} " in listing.output


def test_worker_is_the_outbox_worker(environment: dict[str, str]) -> None:
    runner = CliRunner()
    worker_help = runner.invoke(cli, ["worker", "--help"])
    assert worker_help.exit_code == 0, worker_help.output
    assert "--until-empty" in worker_help.output
    assert (
        worker_help.output.split("\n\n")[1:]
        == (runner.invoke(cli, ["outbox", "work", "--help"]).output.split("\n\n")[1:])
    )
    emptied = runner.invoke(cli, ["worker", "--until-empty"])
    assert emptied.exit_code == 0, emptied.output


def test_serve_runs_gunicorn_with_the_packaged_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_help = CliRunner().invoke(cli, ["serve", "--help"])
    assert serve_help.exit_code == 0, serve_help.output
    assert "REGULARS_BIND" in serve_help.output

    executed: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda path, args: executed.append(list(args)))
    served = CliRunner().invoke(cli, ["serve", "--timeout", "60"])
    assert served.exit_code == 0, served.output
    command = gunicorn_command(("--timeout", "60"))
    assert executed == [command]
    config = resource_path("packaging") / "gunicorn.conf.py"
    assert config.is_file()
    assert command == [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(config),
        "--timeout",
        "60",
        "plugin:create_app()",
    ]


def test_serve_answers_on_the_configured_address(
    environment: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "REGULARS_DEMO": "false",
        "REGULARS_BIND": f"127.0.0.1:{port}",
        "REGULARS_WORKERS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    log = tmp_path / "stderr.log"
    with open(log, "wb") as stderr:
        server = subprocess.Popen(
            [*REGULARS, "serve"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            deadline = time.monotonic() + 30
            while not _healthy(port):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("regulars serve did not start:\n" + log.read_text())
                time.sleep(0.2)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    assert server.returncode == 0


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()

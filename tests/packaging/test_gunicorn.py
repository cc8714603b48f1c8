"""The production configuration: gunicorn with packaging/gunicorn.conf.py, as the README runs it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.service import free_port
from plugin import db

REPO = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-0123456789abcdef"


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """gunicorn with the production configuration on a migrated SQLite database."""
    url = f"sqlite:///{tmp_path / 'regulars.sqlite3'}"
    db.upgrade(url)
    port = free_port()
    log = tmp_path / "stderr.log"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REGULARS_DEMO": "false",
        "REGULARS_SECRET_KEY": "s" * 48,
        "REGULARS_INSTANCE_PATH": str(tmp_path / "instance"),
        "REGULARS_METRICS_TOKEN": TOKEN,
        "REGULARS_BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    env.pop("REGULARS_LOG_FORMAT", None)
    with open(log, "wb") as stderr:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(REPO / "packaging" / "gunicorn.conf.py"),
                "plugin:create_app()",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if get(port, "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start:\n" + log.read_text())
                time.sleep(0.2)
            yield port, log
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


def test_served_as_in_production_ready_with_json_logs_and_metrics_of_all_workers(
    served: tuple[int, Path],
) -> None:
    port, log = served
    status, body = get(port, "/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"
    for _ in range(20):
        assert get(port, "/healthz")[0] == 200

    assert get(port, "/metrics")[0] == 401
    status, metrics = get(port, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("regulars_http_request_duration_seconds_count")
        and 'route="/healthz"' in line
    ]
    # Both workers' requests are counted, whichever answered the scrape (one more may be in
    # flight: the one that waited for the server to start).
    assert sum(counts) >= 20

    time.sleep(0.5)  # the access lines of the last requests reach the log
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "plugin.access"]
    assert {line["route"] for line in access} >= {"/healthz", "/readyz", "/metrics"}
    assert all(len(line["request_id"]) == 32 for line in access)
    assert TOKEN not in log.read_text()

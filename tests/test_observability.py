"""What an operator sees: request ids, JSON logs, readiness, metrics, and HTTPS behind a proxy."""

from __future__ import annotations

import json
import logging
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from requests.auth import HTTPBasicAuth

from plugin import create_app, db, observability
from plugin.config import ConfigError, load_settings
from plugin.helpdesks import zendesk
from plugin.helpdesks.http import ApiCaller
from tests.conftest import build_app, dispose_app, make_settings

TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def json_app(tmp_path: Path) -> Iterator[Flask]:
    app = build_app(
        f"sqlite:///{tmp_path / 'app.sqlite3'}",
        tmp_path / "instance",
        log_format="json",
        metrics_token=TOKEN,
    )
    yield app
    dispose_app(app)


def test_every_answer_has_a_request_id_and_a_plausible_incoming_one_is_kept(
    client: FlaskClient,
) -> None:
    fresh = client.get("/healthz").headers["X-Request-Id"]
    assert len(fresh) == 32 and client.get("/healthz").headers["X-Request-Id"] != fresh

    kept = client.get("/healthz", headers={"X-Request-Id": "lb-7f3a.42"})
    assert kept.headers["X-Request-Id"] == "lb-7f3a.42"
    for forged in ("a b", "x" * 65, "<script>", "id;drop"):
        answer = client.get("/healthz", headers={"X-Request-Id": forged})
        assert answer.headers["X-Request-Id"] != forged


def test_json_mode_logs_one_line_per_request_with_the_route_not_the_path(
    json_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = json_app.test_client()
    with caplog.at_level(logging.INFO, logger="plugin.access"):
        answer = client.get(
            "/sidebar/banner",
            query_string={"ticket_id": "1058", "requester_id": "margaret@example.com"},
        )
    record = next(r for r in caplog.records if r.name == "plugin.access")
    line = json.loads(observability.JsonFormatter().format(record))

    assert line["route"] == "/sidebar/banner" and line["method"] == "GET"
    assert line["status"] == answer.status_code == 401
    assert line["request_id"] == answer.headers["X-Request-Id"]
    assert isinstance(line["duration_ms"], float) and line["level"] == "INFO"
    assert "margaret" not in json.dumps(line) and "1058" not in json.dumps(line)


def test_the_json_formatter_writes_errors_on_the_same_line() -> None:
    try:
        raise ValueError("broken import")
    except ValueError:
        record = logging.LogRecord(
            "plugin", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    text = observability.JsonFormatter().format(record)

    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "failed" and "ValueError: broken import" in line["error"]
    assert "request_id" not in line  # outside a request


def test_creating_apps_again_does_not_stack_log_handlers(tmp_path: Path) -> None:
    for n in range(3):
        dispose_app(build_app(f"sqlite:///{tmp_path / f'{n}.sqlite3'}", tmp_path / f"i{n}"))
    ours = [h for h in logging.getLogger("plugin").handlers if getattr(h, "regulars", False)]
    assert len(ours) == 1


def test_ready_only_when_the_database_is_at_the_codes_migration(
    database_url: str, tmp_path: Path
) -> None:
    db.upgrade(database_url, "0001")
    app = build_app_without_tables(database_url, tmp_path)
    try:
        behind = app.test_client().get("/readyz")
        assert behind.status_code == 503
        assert behind.get_json()["problem"] == (
            f"the database is at migration 0001, the code needs {db.head_revision()}: "
            "run flask db upgrade"
        )
        db.upgrade(database_url)
        ready = app.test_client().get("/readyz")
    finally:
        dispose_app(app)
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "migration": db.head_revision()}


def test_a_database_never_migrated_is_not_ready(client: FlaskClient) -> None:
    answer = client.get("/readyz")  # the test app's tables come from the models
    assert answer.status_code == 503
    assert "at migration none" in answer.get_json()["problem"]


def test_an_unreachable_database_is_not_ready_and_its_address_is_not_told(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket is closed
    url = f"postgresql+psycopg://regulars:hunter2-secret@127.0.0.1:{port}/db?connect_timeout=2"
    app = build_app_without_tables(url, tmp_path)
    try:
        answer = app.test_client().get("/readyz")
    finally:
        dispose_app(app)

    assert answer.status_code == 503
    body = answer.get_data(as_text=True)
    assert "unreachable" in body and "hunter2" not in body and str(port) not in body


def build_app_without_tables(url: str, tmp_path: Path) -> Flask:
    """The app on a database as it is: migrated by the test, or not at all."""
    app = create_app(make_settings(url), instance_path=str(tmp_path / "instance"))
    app.config["TESTING"] = True
    return app


def test_metrics_are_off_without_a_token_and_need_it_when_on(
    client: FlaskClient, json_app: Flask
) -> None:
    assert client.get("/metrics").status_code == 404

    metrics = json_app.test_client()
    metrics.get("/healthz")
    assert metrics.get("/metrics").status_code == 401
    assert metrics.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = metrics.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert 'regulars_http_request_duration_seconds_count{method="GET",route="/healthz"' in text
    assert "# TYPE regulars_upstream_calls_total counter" in text


def test_counting_upstream_calls_by_outcome() -> None:
    def count(outcome: str) -> float:
        value = observability.UPSTREAM_CALLS.labels(platform="test", outcome=outcome)
        return float(value._value.get())

    before = {o: count(o) for o in ("ok", "rate_limited", "error", "transport")}
    for status in (200, 429, 503, None, 204):
        observability.count_upstream_call("test", status)

    assert {o: count(o) - before[o] for o in before} == {
        "ok": 2,
        "rate_limited": 1,
        "error": 1,
        "transport": 1,
    }


def test_https_behind_a_trusted_proxy_gets_hsts_and_a_forged_header_does_not(
    tmp_path: Path,
) -> None:
    direct = build_app(f"sqlite:///{tmp_path / 'a.sqlite3'}", tmp_path / "a")
    proxied = build_app(f"sqlite:///{tmp_path / 'b.sqlite3'}", tmp_path / "b", trusted_proxies=1)
    try:
        forwarded = {"X-Forwarded-Proto": "https"}
        assert (
            "Strict-Transport-Security"
            not in direct.test_client().get("/healthz", headers=forwarded).headers
        )
        answer = proxied.test_client().get("/healthz", headers=forwarded)
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    finally:
        dispose_app(direct)
        dispose_app(proxied)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("REGULARS_LOG_FORMAT", "xml", "text or json"),
        ("REGULARS_METRICS_TOKEN", "short", "at least 24"),
        ("REGULARS_TRUSTED_PROXIES", "-1", "at least 0"),
    ],
)
def test_bad_settings_are_refused_with_what_to_write(
    tmp_path: Path, name: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        load_settings({name: value}, tmp_path)


def test_the_metrics_token_is_not_in_the_settings_repr(tmp_path: Path) -> None:
    settings = load_settings({"REGULARS_METRICS_TOKEN": TOKEN}, tmp_path)
    assert settings.metrics_token == TOKEN and TOKEN not in repr(settings)


def count_of(platform: str, outcome: str) -> float:
    return float(observability.UPSTREAM_CALLS.labels(platform, outcome)._value.get())


@responses.activate
def test_calls_to_zendesk_are_counted_by_outcome() -> None:
    url = "https://acme.zendesk.com/api/v2/users/me.json"
    responses.get(url, json={"user": {}})
    responses.get(url, status=429, headers={"Retry-After": "3"})
    responses.get(url, body=requests.ConnectionError("refused"))
    before = {o: count_of("zendesk", o) for o in ("ok", "rate_limited", "transport")}

    with requests.Session() as session:
        calls = ApiCaller(
            zendesk.ZENDESK_API,
            session=session,
            auth=HTTPBasicAuth("a", "b"),
            timeout=1,
            budget=None,
            account="acme.zendesk.com",
        )
        for _ in range(2):
            calls.send("GET", url)
        with pytest.raises(zendesk.ZendeskError):
            calls.send("GET", url)

    assert {o: count_of("zendesk", o) - before[o] for o in before} == {
        "ok": 1,
        "rate_limited": 1,
        "transport": 1,
    }


def test_the_outbox_and_the_cache_are_in_the_metrics(json_app: Flask) -> None:
    answer = json_app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = answer.get_data(as_text=True)
    assert "regulars_outbox_depth 0" in text
    assert "regulars_outbox_oldest_age_seconds 0.0" in text
    assert "# TYPE regulars_upstream_cache_lookups_total counter" in text


def test_every_answer_says_the_services_own_time(client: FlaskClient) -> None:
    # Server-Timing: the browser's network panel shows it, and the benchmark adds it up.
    timing = client.get("/healthz").headers["Server-Timing"]
    assert re.fullmatch(r"app;dur=\d+\.\d{2}", timing)

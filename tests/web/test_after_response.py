"""Work left for after the answer (`plugin.web.after_response.later`) runs once the answer is
made, in order, also when the view fails, and at once outside a request."""

from __future__ import annotations

from flask import Flask

from plugin.web import after_response


def _app(ran: list[str]) -> Flask:
    app = Flask(__name__)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    after_response.init_app(app)

    @app.get("/fine")
    def fine() -> str:
        after_response.later(lambda: ran.append("first"))
        after_response.later(lambda: ran.append("second"))
        ran.append("answered")
        return "ok"

    @app.get("/failing")
    def failing() -> str:
        after_response.later(lambda: ran.append("bookkeeping"))
        raise RuntimeError("the view failed")

    def broken() -> None:
        raise ValueError("this bookkeeping failed")

    @app.get("/one-fails")
    def one_fails() -> str:
        after_response.later(broken)
        after_response.later(lambda: ran.append("the next one"))
        return "ok"

    return app


def test_work_runs_after_the_answer_is_made_in_order() -> None:
    ran: list[str] = []
    answer = _app(ran).test_client().get("/fine")
    assert answer.status_code == 200
    assert ran == ["answered", "first", "second"]


def test_work_runs_when_the_view_fails_and_when_other_work_fails() -> None:
    ran: list[str] = []
    client = _app(ran).test_client()
    assert client.get("/failing").status_code == 500
    assert client.get("/one-fails").status_code == 200
    assert ran == ["bookkeeping", "the next one"]


def test_outside_a_request_work_runs_at_once() -> None:
    ran: list[str] = []
    after_response.later(lambda: ran.append("now"))
    assert ran == ["now"]

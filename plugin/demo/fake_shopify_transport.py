"""Hand a client's HTTP requests to the fake Shopify in-process: a requests adapter, so the
real client builds its requests and reads the answers (errors included) as it would Shopify's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from plugin.demo.fake_shopify import FakeShopifyEngine

FAKE_BASE_URL = "https://demo-shop.invalid"


class FakeShopifyAdapter(BaseAdapter):
    """A requests transport answering from a `FakeShopifyEngine`.

    A slow answer (a `hang` fault) waits, unless it would outlast the call's timeout, in which
    case the call times out at once, as it would have; a lost answer always times out.
    """

    def __init__(self, engine: FakeShopifyEngine) -> None:
        super().__init__()
        self.engine = engine

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
        verify: bool | str = True,
        cert: object = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = None
        answer = self.engine.handle(request.headers.get("X-Shopify-Access-Token"), body)
        limit = timeout[1] if isinstance(timeout, tuple) else timeout
        if answer.lost or (limit is not None and answer.delay_seconds >= limit):
            raise requests.ReadTimeout("the fake shop did not answer in time", request=request)
        if answer.delay_seconds > 0:
            time.sleep(answer.delay_seconds)
        response = requests.Response()
        response.status_code = answer.status
        response._content = json.dumps(answer.body).encode()
        response.headers = CaseInsensitiveDict(
            {"Content-Type": "application/json", **dict(answer.headers)}
        )
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        return None


def fake_session(engine: FakeShopifyEngine) -> requests.Session:
    """A session whose every call goes to `engine`."""
    session = requests.Session()
    adapter = FakeShopifyAdapter(engine)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session

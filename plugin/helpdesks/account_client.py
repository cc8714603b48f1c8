"""The base of the remote helpdesk clients (Zendesk, Freshdesk): one account's calls through the
shared HTTP plumbing, its base URL, and its group names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

import requests

from plugin.helpdesks.http import ApiCaller, CallBudget, HeaderAuth, UpstreamApi
from plugin.helpdesks.interface import GroupDirectory, HelpdeskError


class AuthorizationCredentials(Protocol):
    def authorization_header(self) -> str:
        """The value of the Authorization header the credentials call for."""
        ...


CredentialsT = TypeVar("CredentialsT", bound=AuthorizationCredentials)


class HelpdeskAccountClient(Generic[CredentialsT]):
    """Call one helpdesk account's API: `_call` calls a path of it through `_http` (budget,
    timeout, 429, transport failures), and `_groups` holds the account's group names. A
    subclass names its `api` and reads its error statuses.
    """

    remote = True
    api: ClassVar[UpstreamApi]

    def __init__(
        self,
        *,
        session: requests.Session,
        base_url: str,
        credentials: CredentialsT,
        budget: CallBudget,
        timeout: float = 5.0,
        groups: GroupDirectory | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = ApiCaller(
            self.api,
            session=session,
            auth=HeaderAuth("Authorization", credentials.authorization_header()),
            timeout=timeout,
            budget=budget,
            account=urlsplit(self._base_url).netloc,
            error_for_status=self._error_for_status,
        )
        # Shared by the clients of one account (`AccountSessions.groups`); else this one's own.
        self._groups = groups or GroupDirectory()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._base_url}>"

    def _url(self, path: str) -> str:
        return f"{self._base_url}{path}"

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: object = None,
    ) -> requests.Response:
        """Call a path of the account's API; an error status raises the client's error."""
        return self._http.call(method, self._url(path), params=params, json=json)

    def _error_for_status(self, status: int, what: str) -> HelpdeskError:
        """The helpdesk's answer to a call, other than 429 (the plumbing's), as the error to
        raise: a subclass says which statuses mean what.
        """
        raise NotImplementedError

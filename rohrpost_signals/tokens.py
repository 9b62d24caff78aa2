"""Token authentication for sockets of clients without a session cookie.

Mobile apps, services and command-line clients authenticate a socket with a
token instead of Django's session cookie:

* in the ``Sec-WebSocket-Protocol`` header, as a subprotocol
  ``token.<token>`` (browsers: ``new WebSocket(url, ["rohrpost",
  "token." + token])``; the server answers with the other subprotocol);
* or in the query string, ``?token=<token>``.

``lookup(token)`` returns the user or ``None``; it runs in a worker thread and
may query the database. :func:`drf_token_user` is a ready one for Django REST
framework's ``Token`` model. The socket asks the lookup again whenever it
re-checks its subscriptions (``REAUTHORIZE_INTERVAL``, ``reauthorize()``), so
a deleted token ends its subscriptions like a logout.

The token is never logged by this module, and not kept in the scope in a form
whose ``repr`` shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.utils.module_loading import import_string

from .core.sessions import ACCEPTED_SUBPROTOCOL_KEY, CREDENTIAL_KEY

#: Subprotocol prefix that carries a token.
SUBPROTOCOL_PREFIX = "token."

Lookup = Callable[[str], Any]


def drf_token_user(token: str) -> Any:
    """The active user owning Django REST framework ``Token`` ``token``, or ``None``.

    Needs ``rest_framework.authtoken`` in ``INSTALLED_APPS``.
    """
    token_model = import_string("rest_framework.authtoken.models.Token")  # optional dependency
    found = token_model.objects.select_related("user").filter(key=token).first()
    if found is None or not getattr(found.user, "is_active", True):
        return None
    return found.user


class TokenCredential:
    """What re-validates a token socket; its ``repr`` hides the token."""

    __slots__ = ("_lookup", "_token")

    def __init__(self, lookup: Lookup, token: str) -> None:
        self._lookup = lookup
        self._token = token

    def current_user(self) -> Any:
        """The token's user now, or ``None`` (sync: may query the database)."""
        return self._lookup(self._token)

    def __repr__(self) -> str:
        return "<TokenCredential (hidden)>"


def token_from_scope(
    scope: dict[str, Any], query_param: str = "token"
) -> tuple[str | None, str | None]:
    """The token of a WebSocket scope, and the subprotocol to accept (one without a token)."""
    token = None
    other = None
    for protocol in scope.get("subprotocols") or ():
        if protocol.startswith(SUBPROTOCOL_PREFIX) and len(protocol) > len(SUBPROTOCOL_PREFIX):
            token = token or protocol[len(SUBPROTOCOL_PREFIX) :]
        elif other is None:
            other = protocol
    if token is None and query_param:
        query = scope.get("query_string") or b""
        values = parse_qs(query.decode("latin-1")).get(query_param)
        token = values[0] if values else None
    return token, other


class TokenAuthMiddleware:
    """ASGI middleware that sets ``scope["user"]`` from a token.

    ``lookup`` is a callable or its dotted path (default:
    :func:`drf_token_user`). A socket without a token keeps the user an outer
    middleware set (``AuthMiddlewareStack``), or is anonymous; a wrong token
    makes it anonymous, so its subscribes get ``unauthenticated``.
    """

    def __init__(
        self,
        inner: Any,
        lookup: Lookup | str = "rohrpost_signals.tokens.drf_token_user",
        query_param: str = "token",
    ) -> None:
        self.inner = inner
        self.lookup: Lookup = import_string(lookup) if isinstance(lookup, str) else lookup
        self.query_param = query_param

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope.get("type") != "websocket":
            return await self.inner(scope, receive, send)
        token, other = token_from_scope(scope, self.query_param)
        scope = dict(scope)
        if other is not None:
            scope[ACCEPTED_SUBPROTOCOL_KEY] = other
        if token is not None:
            user = await database_sync_to_async(self.lookup)(token)
            scope["user"] = user if user is not None else AnonymousUser()
            scope[CREDENTIAL_KEY] = TokenCredential(self.lookup, token)
        elif "user" not in scope:
            scope["user"] = AnonymousUser()
        return await self.inner(scope, receive, send)

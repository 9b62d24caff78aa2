"""rohrpost_signals.security: the same Origin check as Channels', with the reason logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from rohrpost_signals import security

# Channels' WebsocketDenier is a consumer, and consumers close old database
# connections on every event.
pytestmark = pytest.mark.django_db


async def accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A bare ASGI app that accepts the socket and waits for it to close."""
    while (await receive())["type"] != "websocket.disconnect":
        await send({"type": "websocket.accept"})


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    security.reset()
    yield
    security.reset()


def refusals(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == "rohrpost_signals.security"
    ]


async def handshake(origin: bytes | None) -> bool:
    app = security.AllowedHostsOriginValidator(accept)
    headers = [(b"origin", origin)] if origin is not None else []
    socket = WebsocketCommunicator(app, "/ws/rohrpost/", headers=headers)
    connected, _ = await socket.connect(timeout=10)
    await socket.disconnect()
    return connected


async def test_an_allowed_origin_connects_and_nothing_is_logged(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ALLOWED_HOSTS = ["shop.example"]
    with caplog.at_level(logging.DEBUG, logger="rohrpost_signals"):
        assert await handshake(b"https://shop.example") is True
    assert refusals(caplog) == []


async def test_no_origin_header_is_refused_and_said_so(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ALLOWED_HOSTS = ["shop.example"]
    with caplog.at_level(logging.DEBUG, logger="rohrpost_signals"):
        assert await handshake(None) is False
    assert refusals(caplog) == [(logging.WARNING, security.REFUSED_NO_ORIGIN)]


async def test_a_foreign_origin_is_refused_with_the_allowed_hosts_named_once(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ALLOWED_HOSTS = ["shop.example"]
    with caplog.at_level(logging.DEBUG, logger="rohrpost_signals"):
        assert await handshake(b"http://localhost:5173") is False
        assert await handshake(b"http://localhost:5173") is False
    first, again = refusals(caplog)
    assert first == (
        logging.WARNING,
        "Refused a WebSocket handshake from origin 'http://localhost:5173' with HTTP 403: its "
        "host is not allowed (allowed: 'shop.example'; see ALLOWED_HOSTS).",
    )
    assert again == (logging.DEBUG, first[1])

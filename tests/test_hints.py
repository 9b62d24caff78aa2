"""The one-time warning for sends that can reach nobody (rohrpost_signals.hints)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from channels.layers import InMemoryChannelLayer

from rohrpost_signals.core import hints


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    hints.reset()
    yield
    hints.reset()


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rohrpost_signals.hints"]


def test_an_in_memory_send_with_no_socket_in_the_process_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = InMemoryChannelLayer()
    with caplog.at_level(logging.WARNING, logger="rohrpost_signals"):
        hints.after_send(layer, "order-5", "update of shop.Order pk=5")
        hints.after_send(layer, "order-6", "update of shop.Order pk=6")
    [message] = warnings(caplog)
    assert message.startswith(
        "Sent update of shop.Order pk=5 to group 'order-5' through the in-memory channel layer,"
    )
    assert "manage.py shell" in message
    assert "channels_redis" in message


async def test_no_warning_once_a_socket_of_this_process_joined_a_group(
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = InMemoryChannelLayer()
    await layer.group_add("orders", await layer.new_channel())
    with caplog.at_level(logging.WARNING, logger="rohrpost_signals"):
        hints.after_send(layer, "order-5", "update of shop.Order pk=5")
    assert warnings(caplog) == []


def test_other_layers_never_warn(caplog: pytest.LogCaptureFixture) -> None:
    class SharedLayer:
        groups: dict[str, object] = {}

    with caplog.at_level(logging.WARNING, logger="rohrpost_signals"):
        hints.after_send(SharedLayer(), "order-5", "update of shop.Order pk=5")
    assert warnings(caplog) == []

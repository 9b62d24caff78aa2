"""Sending rohrpost messages to one socket or to a group.

The code lives in ``rohrpost_signals.protocols.rohrpost.message``.
"""

from .protocols.rohrpost.message import (
    TolerantJSONEncoder,
    asend_error,
    asend_message,
    build_message,
    build_text,
    send_error,
    send_message,
    send_success,
    send_to_group,
)

__all__ = [
    "TolerantJSONEncoder",
    "asend_error",
    "asend_message",
    "build_message",
    "build_text",
    "send_error",
    "send_message",
    "send_success",
    "send_to_group",
]

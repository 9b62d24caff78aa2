"""Handlers for incoming rohrpost requests, by message type.

The code lives in ``rohrpost_signals.protocols.rohrpost.handler_registry``.
"""

from .protocols.rohrpost.handler_registry import (
    HANDLERS,
    HandlerAlreadyRegistered,
    adapted,
    rohrpost_handler,
)

__all__ = ["HANDLERS", "HandlerAlreadyRegistered", "adapted", "rohrpost_handler"]

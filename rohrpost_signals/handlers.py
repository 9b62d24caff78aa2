"""The built-in rohrpost handlers: ``ping``, ``subscribe`` and ``unsubscribe``.

The code lives in ``rohrpost_signals.protocols.rohrpost.handlers``.
"""

from .protocols.rohrpost.handlers import handle_ping, handle_subscribe, handle_unsubscribe

__all__ = ["handle_ping", "handle_subscribe", "handle_unsubscribe"]

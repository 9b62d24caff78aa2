"""WebSocket consumers speaking the rohrpost protocol.

The code lives in ``rohrpost_signals.protocols.rohrpost.consumers``.
"""

from .protocols.rohrpost.consumers import RohrpostConsumer, SyncRohrpostConsumer

__all__ = ["RohrpostConsumer", "SyncRohrpostConsumer"]

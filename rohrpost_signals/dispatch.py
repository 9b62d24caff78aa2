"""Flushing queued messages, and the send counters.

Messages are queued to a long-lived sender task and never block ``save()``;
``flush()`` / ``aflush()`` wait until what is queued has been handed to the
channel layer. The code lives in ``rohrpost_signals.core.dispatch``.
"""

from .core.dispatch import Stats, aflush, flush, stats

__all__ = ["Stats", "aflush", "flush", "stats"]

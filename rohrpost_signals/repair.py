"""The gap-repair counters.

The code lives in ``rohrpost_signals.core.repair``.
"""

from .core.repair import stats

__all__ = ["stats"]

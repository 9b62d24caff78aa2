"""Make channels-redis's silent drops visible.

``RedisChannelLayer.group_send`` drops a message for every worker process
whose queue already holds ``capacity`` messages (all sockets of a process
share one queue), and says so only in an INFO
record of the ``channels_redis.core`` logger, which default logging hides.
:func:`install` counts those reports into
``rohrpost_signals.dispatch.stats.layer_dropped`` and re-logs them as
WARNING, whatever the project's logging configuration shows.
"""

from __future__ import annotations

import logging
from typing import Any

from .dispatch import stats

LOGGER_NAME = "channels_redis.core"


class CapacityDropFilter(logging.Filter):
    """Counts and raises "channels over capacity" records; others keep their level."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        # Records below the level the logger had before install() stay hidden.
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if "over capacity" not in str(record.msg):
            return record.levelno >= self.threshold
        args: tuple[Any, ...] = record.args if isinstance(record.args, tuple) else ()
        try:
            over, members, group = int(args[0]), int(args[1]), args[2]
        except (IndexError, TypeError, ValueError):
            stats.add("layer_dropped")
            over, members, group = 1, 0, "?"
        else:
            stats.add("layer_dropped", over)
        record.levelno = logging.WARNING
        record.levelname = logging.getLevelName(logging.WARNING)
        record.msg = (
            "channels-redis dropped a message to group %r in %d worker queue(s) over the "
            "layer's capacity (the group has %d members; see the deployment docs)."
        )
        record.args = (group, over, members)
        return True


def install() -> None:
    """Attach the filter once; safe to call again (after a logging reconfiguration)."""
    logger = logging.getLogger(LOGGER_NAME)
    if any(isinstance(f, CapacityDropFilter) for f in logger.filters):
        return
    threshold = logger.getEffectiveLevel()
    logger.addFilter(CapacityDropFilter(threshold))
    if threshold > logging.INFO:
        logger.setLevel(logging.INFO)

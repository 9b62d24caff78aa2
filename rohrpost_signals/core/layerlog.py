"""Count the messages channels-redis drops silently.

``RedisChannelLayer.group_send`` drops a message for every worker process
whose queue already holds ``capacity`` messages (all sockets of a process
share one queue), and says so only in an INFO record of the
``channels_redis.core`` logger. :func:`install` attaches a filter to that
logger which counts those records into
``rohrpost_signals.dispatch.stats.layer_dropped`` and reports them, once per
interval, on this app's own logger. It changes neither the records nor the
logger's level: the records reach the filter only where the project's
``LOGGING`` enables ``channels_redis.core`` at INFO (the deployment docs give
the recipe). The consumers repair such drops from the group history either way.
"""

from __future__ import annotations

import logging
from typing import Any

from .dispatch import stats
from .failurelog import FailureLog

LOGGER_NAME = "channels_redis.core"

drops_log = FailureLog(
    "were dropped by channels-redis (worker queues over the layer's capacity)",
    level=logging.WARNING,
)


class CapacityDropCounter(logging.Filter):
    """Counts "channels over capacity" records; lets every record through unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "over capacity" not in str(record.msg):
            return True
        args: tuple[Any, ...] = record.args if isinstance(record.args, tuple) else ()
        try:
            over, members, group = int(args[0]), int(args[1]), str(args[2])
        except (IndexError, TypeError, ValueError):
            over, members, group = 1, 0, "?"
        stats.add("layer_dropped", over)
        drops_log.record(
            group,
            f"channels-redis dropped a message to group {group!r} in {over} worker queue(s) "
            f"over the layer's capacity (the group has {members} members; see the "
            "deployment docs)",
        )
        return True


def install() -> None:
    """Attach the counter once; safe to call again (after a logging reconfiguration)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(f, CapacityDropCounter) for f in logger.filters):
        logger.addFilter(CapacityDropCounter())

"""Every use of another package's private API, in one place, checked at start-up.

Django, asgiref, Channels, channels-redis, django-model-utils and Twisted have
no public way to do the few things below. Each function names what it relies on;
:func:`shape_problems` checks that the installed versions still have that
shape, and the system check ``rohrpost_signals.E090`` reports any that does
not, naming the package and its version, before a server starts. Code
outside this module never touches these names (``tests/test_compat.py``
scans the package for them).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
from collections.abc import Callable
from importlib import metadata
from typing import Any

from asgiref.sync import SyncToAsync
from django.db.backends.base.base import BaseDatabaseWrapper

#: The private names used here, by package: what the package scan looks for.
PRIVATE_NAMES: dict[str, frozenset[str]] = {
    "asyncio": frozenset({"_get_running_loop"}),
    "asgiref": frozenset({"threadlocal", "main_event_loop", "main_event_loop_pid"}),
    "django": frozenset({"run_on_commit"}),
    "channels": frozenset({"channel_receive"}),
    "channels_redis": frozenset(
        {"_consistent_hash", "client_prefix", "ring_size", "create_pool", "decode_hosts"}
    ),
    "model_utils": frozenset({"finalize_class", "saved_data"}),
    "twisted": frozenset({"_asyncioEventloop"}),
}


# -- asyncio and asgiref: which event loop to send from ----------------------


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running loop or None, without raising (it runs on every save)."""
    return asyncio._get_running_loop()


def server_loop_of_sync_thread() -> asyncio.AbstractEventLoop | None:
    """The ASGI server's loop, seen from a ``sync_to_async`` worker thread.

    asgiref records it in ``SyncToAsync.threadlocal`` for the thread it runs
    sync code in; outside such a thread (or in a forked child) there is none.
    """
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(local, "main_event_loop", None)
    if loop is not None and loop.is_running() and not loop.is_closed():
        return loop  # type: ignore[no-any-return]
    return None


# -- Django: the commit hooks of a connection --------------------------------
#
# ``connection.run_on_commit`` holds ``(savepoint ids, callable, robust)``
# tuples since Django 4.2. The change recorder keeps one flush hook of its
# own last in that list, with no savepoint ids so a savepoint rollback never
# drops it; transaction.on_commit() can do neither.


def commit_hooks(connection: BaseDatabaseWrapper) -> list[tuple[Any, Callable[[], None], bool]]:
    hooks: list[tuple[Any, Callable[[], None], bool]] = connection.run_on_commit  # type: ignore[assignment]
    return hooks


def append_commit_hook(connection: BaseDatabaseWrapper, func: Callable[[], None]) -> None:
    """Run ``func`` at commit, whatever savepoint rolls back before."""
    commit_hooks(connection).append((set(), func, False))


def commit_hook_index(connection: BaseDatabaseWrapper, func: Callable[[], None]) -> int | None:
    hooks = commit_hooks(connection)
    for index in range(len(hooks) - 1, -1, -1):
        if hooks[index][1] is func:
            return index
    return None


def move_commit_hook_last(connection: BaseDatabaseWrapper, func: Callable[[], None]) -> None:
    hooks = commit_hooks(connection)
    index = commit_hook_index(connection, func)
    if index is not None and index != len(hooks) - 1:
        hooks.append(hooks.pop(index))


# -- Channels: the consumer's channel-layer receive --------------------------


def guard_channel_receive(
    wrap: Callable[[Any, Callable[[], Any]], None], guarded: Callable[[Any], Any]
) -> property:
    """A ``channel_receive`` property for a consumer mixin.

    ``AsyncConsumer.__call__`` assigns ``self.channel_receive`` and then reads
    it back for ``await_many_dispatch``; there is no hook in between. The
    property hands ``wrap(consumer, receive)`` the layer's receive and gives
    Channels ``guarded(consumer)`` instead.
    """

    def get(consumer: Any) -> Any:
        return guarded(consumer)

    def set_(consumer: Any, receive: Callable[[], Any]) -> None:
        wrap(consumer, receive)

    return property(get, set_)


# -- channels-redis: shards, connections and the process's channel prefix ----


def redis_shard(name: str, shard_count: int) -> int:
    """The shard channels-redis stores group ``name`` on."""
    from channels_redis.utils import _consistent_hash

    return int(_consistent_hash(name, shard_count))


def redis_hosts(hosts: list[Any]) -> list[dict[str, Any]]:
    from channels_redis.utils import decode_hosts

    return list(decode_hosts(hosts))


def redis_pool(host: dict[str, Any]) -> Any:
    """A redis-py connection pool built the way channels-redis builds its own."""
    from channels_redis.utils import create_pool

    return create_pool(host)


def layer_shard_count(layer: Any) -> int:
    return int(layer.ring_size)


def misroutes_process_sends(layer: Any) -> bool:
    """Whether ``layer.send`` to a channel of this process can miss the process.

    channels-redis picks the shard of a ``send`` by the whole channel name,
    but keeps and reads a process's channels under their process part
    (``specific.<process>!``), on that part's shard, as ``group_send`` does.
    With one host they agree; with more, most such sends are never read.
    """
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:  # channels-redis is an optional dependency
        return False
    return isinstance(layer, RedisChannelLayer) and layer_shard_count(layer) > 1


def layer_connection(layer: Any, index: int) -> Any:
    return layer.connection(index)


def layer_process_name(layer: Any) -> str:
    """The part of a channels-redis layer's channel names unique to this process."""
    return str(layer.client_prefix)


# -- django-model-utils: a tracker attached after start-up -------------------


def attach_tracker(tracker: Any, model: type[Any], name: str) -> None:
    """What ``contribute_to_class`` does, minus waiting for ``class_prepared``.

    The app registry attaches trackers to classes that are long prepared.
    """
    tracker.name = name
    tracker.attname = f"_{name}"
    tracker.finalize_class(sender=model)


def tracker_saved_values(tracker: Any) -> dict[str, Any]:
    """The values a tracker saved at load or last save, read without a copy."""
    saved: dict[str, Any] = tracker.saved_data
    return saved


# -- Twisted (daphne): the event loop under the asyncio reactor --------------


def reactor_event_loop(reactor: Any) -> asyncio.AbstractEventLoop | None:
    """The asyncio loop a Twisted ``AsyncioSelectorReactor`` runs, or None for another reactor.

    daphne installs that reactor on a loop of its own and runs applications
    on it; Twisted keeps the loop in ``_asyncioEventloop`` and has no public
    accessor for it.
    """
    loop = getattr(reactor, "_asyncioEventloop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None


# -- the start-up check ------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def shape_problems() -> list[tuple[str, str]]:
    """``(distribution, what changed)`` for each private API that is not as expected."""
    problems: list[tuple[str, str]] = []
    if not callable(getattr(asyncio, "_get_running_loop", None)):
        problems.append(("python", "asyncio._get_running_loop() is gone"))
    if not hasattr(SyncToAsync, "threadlocal"):
        problems.append(("asgiref", "SyncToAsync.threadlocal is gone"))
    if "robust" not in inspect.signature(BaseDatabaseWrapper.on_commit).parameters:
        problems.append(("Django", "on_commit() lost 'robust': run_on_commit has another shape"))
    elif "self.run_on_commit.append((set(self.savepoint_ids), func, robust))" not in _source(
        BaseDatabaseWrapper.on_commit
    ):
        problems.append(("Django", "on_commit() no longer appends to run_on_commit"))
    from channels.consumer import AsyncConsumer

    call = _source(AsyncConsumer.__call__)
    if "self.channel_receive = " not in call or "self.channel_receive]" not in call:
        problems.append(("channels", "AsyncConsumer.__call__ no longer sets channel_receive"))
    problems.extend(_channels_redis_problems())
    problems.extend(_model_utils_problems())
    problems.extend(_twisted_problems())
    return problems


def _channels_redis_problems() -> list[tuple[str, str]]:
    try:
        from channels_redis import core, utils
    except ImportError:
        return []  # optional: only Redis layers need it
    problems = []
    for name in ("_consistent_hash", "decode_hosts", "create_pool"):
        if not callable(getattr(utils, name, None)):
            problems.append(("channels-redis", f"channels_redis.utils.{name} is gone"))
    if not callable(getattr(core.RedisChannelLayer, "connection", None)):
        problems.append(("channels-redis", "RedisChannelLayer.connection() is gone"))
    init = _source(core.RedisChannelLayer.__init__)
    for attribute in ("self.ring_size", "self.client_prefix"):
        if attribute not in init:
            problems.append(("channels-redis", f"RedisChannelLayer no longer sets {attribute}"))
    return problems


def _model_utils_problems() -> list[tuple[str, str]]:
    from model_utils.tracker import FieldInstanceTracker, FieldTracker

    problems = []
    if not callable(getattr(FieldTracker, "finalize_class", None)):
        problems.append(("django-model-utils", "FieldTracker.finalize_class() is gone"))
    if "self.saved_data" not in _source(FieldInstanceTracker):
        problems.append(("django-model-utils", "FieldInstanceTracker has no saved_data"))
    return problems


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _twisted_problems() -> list[tuple[str, str]]:
    # Only daphne runs applications under Twisted's reactor: projects without
    # it (or without Twisted) never reach reactor_event_loop().
    if not (_installed("twisted") and _installed("daphne")):
        return []
    # Not twisted.internet.reactor: importing that installs a reactor.
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    if "self._asyncioEventloop" not in _source(AsyncioSelectorReactor.__init__):
        return [("Twisted", "AsyncioSelectorReactor no longer keeps its loop in _asyncioEventloop")]
    return []


def describe(distribution: str, problem: str) -> str:
    """A problem with the installed version named, for the system check."""
    return f"{distribution} {_version(distribution)}: {problem}."

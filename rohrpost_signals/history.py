"""Per-group sequence numbers and a bounded history, for resumable delivery.

Every ``subscription-update`` sent to a group gets the group's next ``seq``
when the sender hands it to the layer, and is kept in a bounded history
(``HISTORY_MAX_MESSAGES`` messages, ``HISTORY_MAX_AGE`` seconds). A client
that reconnects subscribes with ``since``: it gets what it missed, in order,
or ``resync-required`` when the history no longer covers ``since``.

Counters start at a number taken from the clock (milliseconds x 1000), not at
1, so a counter that is lost (Redis restarted empty, an in-memory server
restarted) never hands out a number a client has seen before: such a client
finds a gap and is told to resync instead of silently missing messages.

Only sending creates anything: a group nothing was sent to has no counter
and no history, and reads as the store's current *base*, the number its
first message will follow. The base is taken from the clock and renewed
whenever a counter may have been forgotten (an evicted group, an expired
base key), so a restarted counter never reuses numbers either.

With a channels-redis layer the counter and history live in Redis (shared by
every worker, updated atomically by one script); with any other layer they
live in this process's memory.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from . import _compat
from .conf import conf


@dataclass(frozen=True)
class Replay:
    """The answer to "what did I miss since ``since``?"."""

    last_seq: int
    texts: tuple[str, ...] = ()
    resync: bool = False


def _clock_origin() -> int:
    return int(time.time() * 1000) * 1000


def _seq_text(head: str, seq: int, tail: str) -> str:
    return f"{head}{seq}{tail}"


@dataclass
class _GroupLog:
    last: int
    entries: deque[tuple[int, float, str]] = field(default_factory=deque)


#: What the memory bound counts for a group's counter and for each entry
#: besides its text (the objects that hold them), measured on CPython 3.11.
GROUP_OVERHEAD = 400
ENTRY_OVERHEAD = 120


class MemoryHistory:
    """Per-process counters and history (in-memory layer, single process).

    At most ``HISTORY_MAX_BYTES`` in all: past it, the group sent to least
    recently is forgotten first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Least recently sent to first.
        self._groups: OrderedDict[str, _GroupLog] = OrderedDict()
        self._base = _clock_origin()
        self.size = 0  # bytes counted against HISTORY_MAX_BYTES

    def _log(self, group: str) -> _GroupLog:
        log = self._groups.get(group)
        if log is None:
            log = self._groups[group] = _GroupLog(last=self._base)
            self.size += GROUP_OVERHEAD
        else:
            self._groups.move_to_end(group)
        return log

    def _trim(self, log: _GroupLog, now: float) -> None:
        oldest = now - conf.HISTORY_MAX_AGE
        while log.entries and (
            len(log.entries) > conf.HISTORY_MAX_MESSAGES or log.entries[0][1] < oldest
        ):
            self.size -= len(log.entries.popleft()[2]) + ENTRY_OVERHEAD

    def _evict(self, keep: str) -> None:
        """Forget the least recently sent groups until the store fits its bound."""
        limit = conf.HISTORY_MAX_BYTES
        while self.size > limit and len(self._groups) > 1:
            group, log = next(iter(self._groups.items()))
            if group == keep:
                break
            del self._groups[group]
            self.size -= GROUP_OVERHEAD + sum(len(e[2]) + ENTRY_OVERHEAD for e in log.entries)
            # A forgotten group restarts from the base: move it past its old numbers.
            self._base = max(self._base + 1, _clock_origin())

    async def append(self, group: str, head: str, tail: str) -> tuple[int, str]:
        with self._lock:
            log = self._log(group)
            log.last += 1
            text = _seq_text(head, log.last, tail)
            now = time.time()
            log.entries.append((log.last, now, text))
            self.size += len(text) + ENTRY_OVERHEAD
            self._trim(log, now)
            self._evict(group)
            return log.last, text

    async def replay(self, group: str, since: int | None) -> Replay:
        with self._lock:
            log = self._groups.get(group)
            if log is None:  # nothing was ever sent: create nothing
                if since is None or since == self._base:
                    return Replay(self._base)
                return Replay(self._base, resync=True)
            self._trim(log, time.time())
            if since is None or since == log.last:
                return Replay(log.last)
            missed = [entry for entry in log.entries if entry[0] > since]
            if since > log.last or not missed or missed[0][0] != since + 1:
                return Replay(log.last, resync=True)
            return Replay(log.last, tuple(text for _seq, _ts, text in missed))


# KEYS: counter, history stream, the shard's base. The base is set once per
# counter lifetime (no refresh), so a counter that expired restarts above it.
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[3], ARGV[3], 'NX', 'EX', ARGV[6])
  redis.call('SET', KEYS[1], redis.call('GET', KEYS[3]))
end
local seq = string.format('%.0f', redis.call('INCR', KEYS[1]))
local text = ARGV[1] .. seq .. ARGV[2]
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 's', seq, 't', text)
redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', oldest))
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return seq
"""

_REPLAY = """
local last = redis.call('GET', KEYS[1])
if not last then
  -- Nothing was sent to the group: report the number its first message follows.
  redis.call('SET', KEYS[3], ARGV[2], 'NX', 'EX', ARGV[5])
  last = redis.call('GET', KEYS[3])
  if ARGV[1] == '' or ARGV[1] == last then return {last} end
  return {last, 'resync'}
end
if ARGV[1] == '' then return {last} end
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[3])
redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', oldest))
local missing = tonumber(last) - tonumber(ARGV[1])
if missing == 0 then return {last} end
if missing < 0 or missing > tonumber(ARGV[4]) then return {last, 'resync'} end
local entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', missing)
if #entries ~= missing then return {last, 'resync'} end
local result = {last, 'ok'}
for i = #entries, 1, -1 do
  local fields = entries[i][2]
  result[#result + 1] = fields[4]
end
return result
"""

# Counters outlive their history by a day so a quiet group keeps its numbers.
_COUNTER_GRACE_SECONDS = 86400


class RedisHistory:
    """Counters and history in the Redis behind a channels-redis layer."""

    def __init__(self, hosts: list[Any], prefix: str) -> None:
        self._hosts = _compat.redis_hosts(hosts)
        self._prefix = prefix
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self, group: str) -> Any:
        from redis import asyncio as aioredis

        loop = asyncio.get_running_loop()
        clients = self._clients.get(loop)
        if clients is None:
            clients = self._clients[loop] = [
                aioredis.Redis(connection_pool=_compat.redis_pool(host)) for host in self._hosts
            ]
        return clients[_compat.redis_shard(group, len(clients))]

    def _keys(self, group: str) -> list[str]:
        return [
            f"{self._prefix}:rps:seq:{group}",
            f"{self._prefix}:rps:hist:{group}",
            f"{self._prefix}:rps:base",
        ]

    async def append(self, group: str, head: str, tail: str) -> tuple[int, str]:
        ttl = conf.HISTORY_MAX_AGE + _COUNTER_GRACE_SECONDS
        seq = await self._client(group).eval(
            _APPEND,
            3,
            *self._keys(group),
            head,
            tail,
            _clock_origin(),
            conf.HISTORY_MAX_MESSAGES,
            conf.HISTORY_MAX_AGE * 1000,
            ttl,
        )
        value = int(seq)
        return value, _seq_text(head, value, tail)

    async def replay(self, group: str, since: int | None) -> Replay:
        result = await self._client(group).eval(
            _REPLAY,
            3,
            *self._keys(group),
            "" if since is None else str(since),
            _clock_origin(),
            conf.HISTORY_MAX_AGE * 1000,
            conf.HISTORY_MAX_MESSAGES,
            conf.HISTORY_MAX_AGE + _COUNTER_GRACE_SECONDS,
        )
        last = int(result[0])
        if len(result) == 1:
            return Replay(last)
        if result[1] in (b"resync", "resync"):
            return Replay(last, resync=True)
        texts = tuple(t.decode() if isinstance(t, bytes) else t for t in result[2:])
        return Replay(last, texts)


History = MemoryHistory | RedisHistory

_stores: dict[tuple[str, str, str], History] = {}
_stores_lock = threading.Lock()


def enabled() -> bool:
    return conf.HISTORY_MAX_MESSAGES > 0


def store_for(alias: str) -> History:
    """The history store that matches channel layer ``alias``."""
    config: dict[str, Any] = settings.CHANNEL_LAYERS.get(alias, {})
    backend = str(config.get("BACKEND", ""))
    layer_config: dict[str, Any] = config.get("CONFIG", {}) or {}
    key = (alias, backend, repr(sorted(layer_config.items())))
    store = _stores.get(key)
    if store is None:
        with _stores_lock:
            store = _stores.get(key)
            if store is None:
                if backend.startswith("channels_redis."):
                    store = RedisHistory(
                        layer_config.get("hosts") or [], layer_config.get("prefix", "asgi")
                    )
                else:
                    store = MemoryHistory()
                _stores[key] = store
    return store

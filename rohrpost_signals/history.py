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

With a channels-redis layer the counter and history live in Redis (shared by
every worker, updated atomically by one script); with any other layer they
live in this process's memory.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

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


class MemoryHistory:
    """Per-process counters and history (in-memory layer, single process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, _GroupLog] = {}

    def _log(self, group: str) -> _GroupLog:
        log = self._groups.get(group)
        if log is None:
            log = self._groups[group] = _GroupLog(last=_clock_origin())
        return log

    @staticmethod
    def _trim(log: _GroupLog, now: float) -> None:
        oldest = now - conf.HISTORY_MAX_AGE
        while log.entries and (
            len(log.entries) > conf.HISTORY_MAX_MESSAGES or log.entries[0][1] < oldest
        ):
            log.entries.popleft()

    async def append(self, group: str, head: str, tail: str) -> tuple[int, str]:
        with self._lock:
            log = self._log(group)
            log.last += 1
            text = _seq_text(head, log.last, tail)
            now = time.time()
            log.entries.append((log.last, now, text))
            self._trim(log, now)
            return log.last, text

    async def replay(self, group: str, since: int | None) -> Replay:
        with self._lock:
            log = self._log(group)
            self._trim(log, time.time())
            if since is None or since == log.last:
                return Replay(log.last)
            missed = [entry for entry in log.entries if entry[0] > since]
            if since > log.last or not missed or missed[0][0] != since + 1:
                return Replay(log.last, resync=True)
            return Replay(log.last, tuple(text for _seq, _ts, text in missed))


_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[3]) end
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
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[5])
end
local last = redis.call('GET', KEYS[1])
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
        from channels_redis.utils import decode_hosts

        self._hosts = decode_hosts(hosts)
        self._prefix = prefix
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self, group: str) -> Any:
        from channels_redis.utils import _consistent_hash, create_pool
        from redis import asyncio as aioredis

        loop = asyncio.get_running_loop()
        clients = self._clients.get(loop)
        if clients is None:
            clients = self._clients[loop] = [
                aioredis.Redis(connection_pool=create_pool(host)) for host in self._hosts
            ]
        return clients[_consistent_hash(group, len(clients))]

    def _keys(self, group: str) -> list[str]:
        return [f"{self._prefix}:rps:seq:{group}", f"{self._prefix}:rps:hist:{group}"]

    async def append(self, group: str, head: str, tail: str) -> tuple[int, str]:
        ttl = conf.HISTORY_MAX_AGE + _COUNTER_GRACE_SECONDS
        seq = await self._client(group).eval(
            _APPEND,
            2,
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
            2,
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

"""Per-group sequence numbers and a bounded history, for resumable delivery.

Every ``subscription-update`` sent to a group gets the group's next ``seq``
when the sender hands it to the layer, and is kept in a bounded history
(``HISTORY_MAX_MESSAGES`` messages, ``HISTORY_MAX_AGE`` seconds). A client
that reconnects subscribes with ``since``: it gets what it missed, in order,
or ``resync-required`` when the history no longer covers ``since``.

Numbers carry an ``epoch``: a short string naming the generation of the
group's numbers. A history that may have gone backwards (Redis restarted,
restored from a snapshot, failed over to a replica; an in-memory history in
a new process) is in a new epoch, so a number seen in the old epoch is never
taken for the same message in the new one. Redis cannot tell a clean restart
from a restore, so every restart costs each resuming client one
``resync-required``; none is ever skipped silently. Counters also start at a
number taken from the clock (milliseconds x 1000), not at 1, so even a client
that ignores epochs does not see a number twice.

Only sending creates anything: a group nothing was sent to has no counter
and no history, and reads as the store's current *base*, the number its
first message will follow. The base is taken from the clock and renewed
whenever a counter may have been forgotten (an evicted group, an expired
base key), so a restarted counter never reuses numbers either. Redis can
also lose keys while it runs (``FLUSHDB``, a delete, an eviction: same
run_id), so its base names every counter it started: one that is gone goes
on in a new epoch, which sockets and resuming clients take as a resync.

With a channels-redis layer the counter and history live in Redis (shared by
every worker, updated atomically by one script, each group on the shard
channels-redis uses for it); with any other layer they live in this process's
memory.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .. import _compat
from ..conf import conf


@dataclass(frozen=True)
class Replay:
    """The answer to "what did I miss since ``since``?".

    ``texts`` are the messages after ``since`` up to ``last_seq``; ``resync``
    means the history cannot say (gone, ahead of the head, another epoch).
    """

    last_seq: int
    epoch: str
    texts: tuple[str, ...] = ()
    resync: bool = False


@dataclass(frozen=True)
class Head:
    """A group's newest number and its epoch."""

    seq: int
    epoch: str


def _clock_origin() -> int:
    return int(time.time() * 1000) * 1000


def seq_text(head: str, seq: int, epoch: str, tail: str) -> str:
    """The frame with its numbers spliced in (``tail`` starts with the comma)."""
    return f'{head}{seq},"epoch":"{epoch}"{tail}'


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
    recently is forgotten first. Its epoch is random per process: a restarted
    server can vouch for nothing its predecessor numbered.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Least recently sent to first.
        self._groups: OrderedDict[str, _GroupLog] = OrderedDict()
        self._base = _clock_origin()
        self.size = 0  # bytes counted against HISTORY_MAX_BYTES
        self.epoch = secrets.token_hex(6)

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

    async def append(self, group: str, head: str, tail: str) -> tuple[int, str, str]:
        """Number a message: its ``seq``, ``epoch`` and text."""
        with self._lock:
            log = self._log(group)
            log.last += 1
            text = seq_text(head, log.last, self.epoch, tail)
            now = time.time()
            log.entries.append((log.last, now, text))
            self.size += len(text) + ENTRY_OVERHEAD
            self._trim(log, now)
            self._evict(group)
            return log.last, self.epoch, text

    async def replay(self, group: str, since: int | None, epoch: str | None = None) -> Replay:
        with self._lock:
            log = self._groups.get(group)
            if log is None:  # nothing was ever sent: create nothing
                if since is None or (since == self._base and epoch in (None, self.epoch)):
                    return Replay(self._base, self.epoch)
                return Replay(self._base, self.epoch, resync=True)
            self._trim(log, time.time())
            if since is None:
                return Replay(log.last, self.epoch)
            if epoch is not None and epoch != self.epoch:
                return Replay(log.last, self.epoch, resync=True)
            if since == log.last:
                return Replay(log.last, self.epoch)
            missed = [entry for entry in log.entries if entry[0] > since]
            if since > log.last or not missed or missed[0][0] != since + 1:
                return Replay(log.last, self.epoch, resync=True)
            return Replay(log.last, self.epoch, tuple(text for _seq, _ts, text in missed))

    async def heads(self, groups: list[str]) -> dict[str, Head]:
        """The head of each group that has a counter (others have nothing to miss)."""
        with self._lock:
            return {
                group: Head(self._groups[group].last, self.epoch)
                for group in groups
                if group in self._groups
            }


# Shared by every script. The server's run_id changes with every start, so
# numbers written by another server life (a restart, a restore from a
# snapshot, a replica promoted) are recognised as such.
#
# fields(): a hash's s, e and r. A key of another type under the name was
# left by an older version (builds of main from the morning of 2026-12-01
# kept the base as a string): it is dropped as a lost history, and the
# number it held returned as a floor for the new one.
#
# base(): the shard's base hash (s = seq, e = epoch, r = run_id): the number a
# group's first message follows, and the epoch new counters get. Made once per
# server life or when it expired (no refresh), from the clock, in a new epoch.
# It also names every head key it started (a field per key, set by the first
# append), so a head lost while its base stays (deleted, evicted: Redis kept
# its run_id) is told from a group nothing was sent to. One key holds both, so
# no partial loss can drop the record and keep the base's epoch.
#
# head(): a group's head hash (same fields). Returns seq, epoch and whether the
# counter is of this server life. One from another life reads as continuing
# in the base's epoch, above its old numbers; the next append starts it so.
# The string counter the previous release kept (<prefix>:rps:seq:<group>,
# ``legacy``) is such a life too, one without epochs: the new numbers start
# two above it, so a since from it never lines up with them. A head the base
# started and that is gone is made again at once, in an epoch of its own and
# above every number of the old one, by whichever script finds it first:
# sockets then resync, whether a send, a resume or a head check comes first.
_EPOCH = """
local rid = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local function fields(key)
  local v = redis.pcall('HMGET', key, 's', 'e', 'r')
  if not v.err then return v, 0 end
  local floor = 0
  if redis.call('TYPE', key)['ok'] == 'string' then
    floor = tonumber(redis.call('GET', key)) or 0
  end
  redis.call('DEL', key)
  return {false, false, false}, floor
end
local function micros()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function new_epoch()
  return string.format('%s%x', string.sub(rid, 1, 6), micros())
end
local function base(key, origin, ttl, member)
  local b, floor = fields(key)
  if b[1] and b[3] == rid then
    return tonumber(b[1]), b[2], redis.call('HEXISTS', key, member) == 1
  end
  local seq = math.max(tonumber(b[1] or '0'), tonumber(origin), floor)
  local epoch = new_epoch()
  redis.call('DEL', key)
  redis.call('HSET', key, 's', string.format('%.0f', seq), 'e', epoch, 'r', rid)
  redis.call('EXPIRE', key, ttl)
  return seq, epoch, false
end
local function head(key, hist, basekey, origin, ttl, legacy)
  local h, floor = fields(key)
  if h[1] and h[3] == rid then return tonumber(h[1]), h[2], true end
  local seq, epoch, started = base(basekey, origin, ttl, key)
  if h[1] then seq = math.max(seq, tonumber(h[1])) end
  seq = math.max(seq, floor)
  if legacy then
    local old = redis.pcall('GET', legacy)
    if type(old) == 'string' and tonumber(old) then seq = math.max(seq, tonumber(old) + 1) end
  end
  if not started then return seq, epoch, false end
  -- Redis's clock too, in case this process's clock is behind the one that numbered before.
  seq = string.format('%.0f', math.max(seq, tonumber(origin), math.floor(micros() / 1000) * 1000))
  epoch = new_epoch()
  redis.call('DEL', hist)
  redis.call('HSET', key, 's', seq, 'e', epoch, 'r', rid)
  redis.call('EXPIRE', key, ttl)
  return tonumber(seq), epoch, true
end
"""

# KEYS: head hash, history stream, the shard's base, the previous release's counter.
_APPEND = (
    _EPOCH
    + """
local seq, epoch, live = head(KEYS[1], KEYS[2], KEYS[3], ARGV[3], ARGV[6], KEYS[4])
if not live then
  -- A new counter, or one from another server life: its entries carry an old epoch.
  redis.call('DEL', KEYS[2], KEYS[4])
  redis.call('HSET', KEYS[1], 's', string.format('%.0f', seq), 'e', epoch, 'r', rid)
  redis.call('HSET', KEYS[3], KEYS[1], 1)
end
seq = string.format('%.0f', redis.call('HINCRBY', KEYS[1], 's', 1))
local text = ARGV[1] .. seq .. ',"epoch":"' .. epoch .. '"' .. ARGV[2]
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 's', seq, 't', text)
redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', oldest))
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return {seq, epoch}
"""
)

# Reading creates no counter: a group nothing was sent to in this server life
# reads as the base (in the base's epoch).
_REPLAY = (
    _EPOCH
    + """
local last, epoch, live = head(KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[5], KEYS[4])
last = string.format('%.0f', last)
if ARGV[1] == '' then return {last, epoch} end
if ARGV[6] ~= '' and ARGV[6] ~= epoch then return {last, epoch, 'resync'} end
if not live then
  if ARGV[1] == last then return {last, epoch} end
  return {last, epoch, 'resync'}
end
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[3])
redis.call('XTRIM', KEYS[2], 'MINID', string.format('%.0f', oldest))
local missing = tonumber(last) - tonumber(ARGV[1])
if missing == 0 then return {last, epoch} end
if missing < 0 or missing > tonumber(ARGV[4]) then return {last, epoch, 'resync'} end
local entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', missing)
if #entries ~= missing then return {last, epoch, 'resync'} end
local result = {last, epoch, 'ok'}
local want = tonumber(ARGV[1])
for i = #entries, 1, -1 do
  local entry = entries[i][2]
  want = want + 1
  -- An entry of another numbering (a process of the previous release still
  -- writing to the stream) means the history cannot vouch for this range.
  if tonumber(entry[2]) ~= want then return {last, epoch, 'resync'} end
  result[#result + 1] = entry[4]
end
return result
"""
)

# KEYS: the shard's base, then the head hash and history stream of each group.
# Returns seq and epoch per group, '' for a group without a counter (nothing
# to miss); a lost one the base started is made again in a new epoch.
_HEADS = (
    _EPOCH
    + """
local result = {}
for i = 2, #KEYS, 2 do
  local kept = redis.call('TYPE', KEYS[i])['ok'] == 'hash'
  if kept or redis.call('HEXISTS', KEYS[1], KEYS[i]) == 1 then
    local seq, epoch = head(KEYS[i], KEYS[i + 1], KEYS[1], ARGV[1], ARGV[2])
    result[#result + 1] = string.format('%.0f', seq)
    result[#result + 1] = epoch
  else
    result[#result + 1] = ''
    result[#result + 1] = ''
  end
end
return result
"""
)

# Counters outlive their history by a day so a quiet group keeps its numbers.
_COUNTER_GRACE_SECONDS = 86400


def _with_retry(host: dict[str, Any]) -> dict[str, Any]:
    """Retry a command once on a fresh connection: after Redis restarted, every
    pooled connection is stale, and the first use of each fails."""
    if host.get("retry") is not None:
        return host
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return {**host, "retry": Retry(NoBackoff(), 1)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisHistory:
    """Counters and history in the Redis behind a channels-redis layer.

    A group lives on the shard channels-redis picks for it (the same hash
    over the layer's ``hosts``), so with several hosts each group's numbers
    and its layer traffic share a server.
    """

    def __init__(self, hosts: list[Any], prefix: str) -> None:
        self._hosts = _compat.redis_hosts(hosts)
        self._prefix = prefix
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _clients_here(self) -> list[Any]:
        from redis import asyncio as aioredis

        loop = asyncio.get_running_loop()
        clients = self._clients.get(loop)
        if clients is None:
            clients = self._clients[loop] = [
                aioredis.Redis(connection_pool=_compat.redis_pool(_with_retry(host)))
                for host in self._hosts
            ]
        return clients

    def shard(self, group: str) -> int:
        return _compat.redis_shard(group, len(self._hosts))

    def _client(self, group: str) -> Any:
        return self._clients_here()[self.shard(group)]

    def _head_key(self, group: str) -> str:
        return f"{self._prefix}:rps:head:{group}"

    def _base_key(self) -> str:
        return f"{self._prefix}:rps:base"

    def _keys(self, group: str) -> list[str]:
        return [
            self._head_key(group),
            f"{self._prefix}:rps:hist:{group}",
            self._base_key(),
            # The previous release's counter: read as a floor, removed on the first send.
            f"{self._prefix}:rps:seq:{group}",
        ]

    async def append(self, group: str, head: str, tail: str) -> tuple[int, str, str]:
        """Number a message: its ``seq``, ``epoch`` and text."""
        ttl = conf.HISTORY_MAX_AGE + _COUNTER_GRACE_SECONDS
        seq, epoch = await self._client(group).eval(
            _APPEND,
            4,
            *self._keys(group),
            head,
            tail,
            _clock_origin(),
            conf.HISTORY_MAX_MESSAGES,
            conf.HISTORY_MAX_AGE * 1000,
            ttl,
        )
        value, name = int(seq), _text(epoch)
        return value, name, seq_text(head, value, name, tail)

    async def replay(self, group: str, since: int | None, epoch: str | None = None) -> Replay:
        result = await self._client(group).eval(
            _REPLAY,
            4,
            *self._keys(group),
            "" if since is None else str(since),
            _clock_origin(),
            conf.HISTORY_MAX_AGE * 1000,
            conf.HISTORY_MAX_MESSAGES,
            conf.HISTORY_MAX_AGE + _COUNTER_GRACE_SECONDS,
            epoch or "",
        )
        last, current = int(result[0]), _text(result[1])
        if len(result) == 2:
            return Replay(last, current)
        if _text(result[2]) == "resync":
            return Replay(last, current, resync=True)
        return Replay(last, current, tuple(_text(t) for t in result[3:]))

    async def heads(self, groups: list[str]) -> dict[str, Head]:
        """The head of each group that has a counter: one script call per shard."""
        clients = self._clients_here()
        by_shard: dict[int, list[str]] = {}
        for group in groups:
            by_shard.setdefault(self.shard(group), []).append(group)
        ttl = conf.HISTORY_MAX_AGE + _COUNTER_GRACE_SECONDS

        async def read(index: int, names: list[str]) -> dict[str, Head]:
            keys = [self._base_key()]
            for name in names:
                keys += self._keys(name)[:2]
            flat = await clients[index].eval(_HEADS, len(keys), *keys, _clock_origin(), ttl)
            return {
                name: Head(int(flat[2 * n]), _text(flat[2 * n + 1]))
                for n, name in enumerate(names)
                if _text(flat[2 * n])
            }

        found: dict[str, Head] = {}
        for shard_heads in await asyncio.gather(*(read(i, n) for i, n in by_shard.items())):
            found.update(shard_heads)
        return found


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

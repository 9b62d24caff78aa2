"""The writer process of the live measurements: saves rows when told to.

``python -m benchmarks.writer`` (Redis layer). It creates three rows per
variant (slots ``a``, ``b``, ``c``: the orchestrator subscribes 1, 100 and
1,000 clients to them) and prints one JSON line describing them. Then it
reads one JSON command per line on stdin and answers with one JSON line:

* ``{"cmd": "save", "variant": v, "slot": s, "k": k}``: set ``counter = k``
  and ``save()``; answers the monotonic times before the call and after it
  returned.
* ``{"cmd": "paced", ..., "start": k0, "count": n, "interval_us": i}``: n saves
  at a fixed rate, answered at the end.
* ``{"cmd": "profile", ..., "start": k0, "count": n}``: n saves under cProfile;
  answers how many JSON encodes they made.

The ``floor`` variant saves nothing: it hands the pre-encoded text of the same
message straight to ``group_send`` on a long-lived event loop, its times
taken right before that call.

Saves run in this process's main thread, as in a management command or task
worker: rohrpost_signals sends from its background loop, rohrpost and DCRF
call ``async_to_sync(group_send)`` inside ``save()``.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import sys
import threading
import time
from typing import Any

from . import djangoenv
from .stats import median

SLOTS = ("a", "b", "c")


def json_encode_calls(stats: pstats.Stats) -> int:
    """Calls of ``JSONEncoder.encode``: every ``json.dumps`` and Django encoder goes through it."""
    total = 0
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        if filename.endswith("json/encoder.py") and name == "encode":
            total += row[1]  # primitive calls
    return total


class Writer:
    def __init__(self) -> None:
        from channels.layers import get_channel_layer

        from rohrpost_signals.core import dispatch

        from .benchapp.models import VARIANTS

        self.dispatch = dispatch
        self.layer = get_channel_layer()
        self.rows = {
            variant: {slot: VARIANTS[variant].objects.create(name="item") for slot in SLOTS}
            for variant in ("signals", "rohrpost", "dcrf")
        }
        dispatch.flush(timeout=30)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="floor", daemon=True).start()

    def describe(self) -> dict[str, Any]:
        groups: dict[str, dict[str, str]] = {"floor": {s: f"floor-{s}" for s in SLOTS}}
        pks: dict[str, dict[str, Any]] = {"floor": dict.fromkeys(SLOTS)}
        for variant, rows in self.rows.items():
            pks[variant] = {slot: obj.pk for slot, obj in rows.items()}
            groups[variant] = {slot: f"{variant}item-{obj.pk}" for slot, obj in rows.items()}
        groups["dcrf"] = dict.fromkeys(SLOTS, "")  # DCRF clients subscribe by pk
        return {"ready": True, "pks": pks, "groups": groups}

    @staticmethod
    def floor_text(slot: str, k: int) -> str:
        from rohrpost_signals.core.encoding import encode, new_message_id, subscription_update_text

        data = {"id": 0, "name": "item", "counter": k, "updated_fields": ["counter"]}
        return subscription_update_text(new_message_id(), "update", f"floor-{slot}", encode(data))

    async def _floor_send(self, slot: str, texts: list[str], interval_ns: int) -> list[int]:
        stamps = []
        group = f"floor-{slot}"
        deadline = time.monotonic_ns()
        for text in texts:
            stamps.append(time.monotonic_ns())
            await self.layer.group_send(group, {"type": "rohrpost.message", "message": text})
            if interval_ns:
                deadline += interval_ns
                delay = deadline - time.monotonic_ns()
                if delay > 0:
                    await asyncio.sleep(delay / 1e9)
        return stamps

    def saves(self, variant: str, slot: str, start: int, count: int, interval_ns: int) -> list[Any]:
        if variant == "floor":
            texts = [self.floor_text(slot, start + i) for i in range(count)]
            future = asyncio.run_coroutine_threadsafe(
                self._floor_send(slot, texts, interval_ns), self.loop
            )
            stamps = future.result()
            return [[start + i, t, t] for i, t in enumerate(stamps)]
        obj = self.rows[variant][slot]
        out = []
        clock = time.monotonic_ns
        deadline = clock()
        for k in range(start, start + count):
            obj.counter = k
            t_call = clock()
            obj.save()
            t_return = clock()
            out.append([k, t_call, t_return])
            if interval_ns:
                deadline += interval_ns
                delay = deadline - clock()
                if delay > 0:
                    time.sleep(delay / 1e9)
        return out

    def profile(self, variant: str, slot: str, start: int, count: int) -> dict[str, Any]:
        profiler = cProfile.Profile()
        profiler.enable()
        self.saves(variant, slot, start, count, 0)
        self.dispatch.flush(timeout=30)
        profiler.disable()
        stats = pstats.Stats(profiler)
        return {"json_encodes": json_encode_calls(stats), "saves": count}

    def breakdown(self, slot: str, start: int, count: int, interval_us: int) -> dict[str, Any]:
        """Where a rohrpost_signals message spends its time in this process.

        Wraps the sender's steps with clocks for ``count`` paced saves, then
        times the floor's bare ``group_send`` the same way. Answers medians in us.
        """
        from rohrpost_signals.core import history

        dispatch = self.dispatch
        marks: dict[str, list[int]] = {"picked": [], "numbered": [], "sent": []}
        original_send = dispatch._send
        store = history.store_for("default")
        original_append = store.append
        original_group_send = self.layer.group_send

        async def send(item: Any) -> None:
            marks["picked"].append(time.monotonic_ns())
            await original_send(item)

        async def append(*args: Any) -> Any:
            result = await original_append(*args)
            marks["numbered"].append(time.monotonic_ns())
            return result

        async def group_send(group: str, message: Any) -> None:
            await original_group_send(group, message)
            marks["sent"].append(time.monotonic_ns())

        dispatch._send = send  # type: ignore[attr-defined]
        store.append = append  # type: ignore[method-assign]
        self.layer.group_send = group_send
        try:
            stamps = []
            for k in range(start, start + count):
                # One at a time, so no message waits behind another.
                stamps += self.saves("signals", slot, k, 1, 0)
                dispatch.flush(timeout=30)
                time.sleep(interval_us / 1e6)
        finally:
            dispatch._send = original_send  # type: ignore[attr-defined]
            del store.append
            del self.layer.group_send
        returned = [t_return for _k, _c, t_return in stamps]
        numbered = marks["numbered"] or marks["picked"]  # no history: nothing to number

        def gaps(later: list[int], earlier: list[int]) -> float:
            return median([(b - a) / 1000 for a, b in zip(earlier, later, strict=False)])

        # The same group_send, bare, on a long-lived loop (clients ignore "{}").
        floor_times = asyncio.run_coroutine_threadsafe(
            self._time_floor(slot, count, interval_us * 1000), self.loop
        ).result()
        return {
            "save_us": median([(t_r - t_c) / 1000 for _k, t_c, t_r in stamps]),
            "queue_to_sender_us": gaps(marks["picked"], returned),
            "history_us": gaps(numbered, marks["picked"]) if marks["numbered"] else 0.0,
            "group_send_us": gaps(marks["sent"], numbered),
            "floor_group_send_us": median(floor_times),
        }

    async def _time_floor(self, slot: str, count: int, interval_ns: int) -> list[float]:
        times = []
        for _ in range(count):
            started = time.monotonic_ns()
            await self.layer.group_send(
                f"floor-{slot}", {"type": "rohrpost.message", "message": "{}"}
            )
            times.append((time.monotonic_ns() - started) / 1000)
            await asyncio.sleep(interval_ns / 1e9)
        return times

    def handle(self, command: dict[str, Any]) -> Any:
        name = command["cmd"]
        if name == "save":
            return self.saves(command["variant"], command["slot"], command["k"], 1, 0)[0]
        if name == "paced":
            interval_ns = int(command["interval_us"] * 1000)
            args = (command["variant"], command["slot"], command["start"], command["count"])
            return self.saves(*args, interval_ns)
        if name == "profile":
            return self.profile(
                command["variant"], command["slot"], command["start"], command["count"]
            )
        if name == "breakdown":
            return self.breakdown(
                command["slot"], command["start"], command["count"], command["interval_us"]
            )
        if name == "flush":
            return self.dispatch.flush(timeout=30)
        raise ValueError(f"unknown command {name!r}")


def main() -> None:
    djangoenv.setup()
    writer = Writer()
    print(json.dumps(writer.describe()), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        print(json.dumps(writer.handle(command)), flush=True)


if __name__ == "__main__":
    main()

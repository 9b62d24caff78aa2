"""Measurement 1: what a watched model adds to ``Model.save()``.

Runs in a child process for one database / channel layer pair and prints one
JSON document. Every variant updates one field of its own row (``counter``)
with a plain ``save()``, outside a transaction and inside ``atomic()`` (the
commit, and with it the on-commit sends, is inside the timed block). Variants
and modes take turns in short chunks so that drift on a noisy machine hits
all of them alike.

Per save it records the time ``save()`` (or the atomic block) took. Because
rohrpost_signals hands the message to a background sender, it also records
each chunk's wall time *including* ``dispatch.flush()``: the queue must not
hide cost, so the drained time per save and the messages/s the sender keeps
up with are reported too, and every message is counted (sent, failed, dropped).

The groups have no members here, so every library pays the same price inside
the layer; what differs is how each one gets there. With Redis the harness
also checks that no message is lost when a writer process exits normally
right after its last save (``benchmarks.exitcheck``).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import djangoenv

MODES = ("outside", "inside")


# Two more runs of the rohrpost_signals model split its added cost in three:
# the field tracker alone (our receiver disconnected), then tracker and
# receiver with the send intercepted; the rest is the sender's share. A third
# builds the same payload with a DRF ModelSerializer instead of ``fields``.
PARTS = ("signals_tracker", "signals_nosend", "signals_drf")
DRF_SERIALIZER = "benchmarks.benchapp.serializers.SignalsItemSerializer"


@contextmanager
def part(variant: str) -> Iterator[None]:
    from django.conf import settings
    from django.db.models.signals import post_save
    from django.test import override_settings

    from rohrpost_signals.core import dispatch
    from rohrpost_signals.core.receivers import on_post_save

    from .benchapp.models import SignalsItem

    if variant == "signals_tracker":
        uid = "rohrpost_signals.post_save.benchapp.SignalsItem"
        post_save.disconnect(sender=SignalsItem, dispatch_uid=uid)
        try:
            yield
        finally:
            post_save.connect(on_post_save, sender=SignalsItem, dispatch_uid=uid, weak=False)
    elif variant == "signals_nosend":

        def swallow(item: Any) -> bool:
            return True

        dispatch.interceptors.append(swallow)
        try:
            yield
        finally:
            dispatch.interceptors.remove(swallow)
    elif variant == "signals_drf":
        label = "benchapp.SignalsItem"
        options = {**settings.ROHRPOST["MODELS"][label], "serializer": DRF_SERIALIZER}
        models = {**settings.ROHRPOST["MODELS"], label: options}
        # The registry is rebuilt on entry and exit, outside the timed saves.
        with override_settings(ROHRPOST={**settings.ROHRPOST, "MODELS": models}):
            yield
    else:
        yield


def run(n: int, chunks: int, warmup: int) -> dict[str, Any]:
    from django.db import transaction

    from rohrpost_signals.core import dispatch

    from .benchapp.models import VARIANTS, SignalsItem

    models = {**VARIANTS, **dict.fromkeys(PARTS, SignalsItem)}
    objects = {name: model.objects.create(name="item") for name, model in models.items()}
    dispatch.flush(timeout=30)
    order = list(models)
    per_save: dict[str, dict[str, list[int]]] = {v: {m: [] for m in MODES} for v in order}
    drained: dict[str, dict[str, int]] = {v: dict.fromkeys(MODES, 0) for v in order}
    counter = 0

    def chunk(variant: str, mode: str, count: int, record: bool) -> None:
        obj = objects[variant]
        times = per_save[variant][mode]
        clock = time.perf_counter_ns
        gc.collect()
        with part(variant):
            start = clock()
            timed(obj, times, count, mode, record)
            if not dispatch.flush(timeout=60):
                raise RuntimeError("the sender did not drain within 60 s")
            if record:
                drained[variant][mode] += clock() - start

    def timed(obj: Any, times: list[int], count: int, mode: str, record: bool) -> None:
        nonlocal counter
        clock = time.perf_counter_ns
        for _ in range(count):
            counter += 1
            if mode == "outside":
                t0 = clock()
                obj.counter = counter
                obj.save()
                t1 = clock()
            else:
                t0 = clock()
                with transaction.atomic():
                    obj.counter = counter
                    obj.save()
                t1 = clock()
            if record:
                times.append(t1 - t0)

    for variant in order:
        for mode in MODES:
            chunk(variant, mode, warmup, record=False)

    before = dispatch.stats.as_dict()
    size = max(1, n // chunks)
    for index in range(chunks):
        rotated = order[index % len(order) :] + order[: index % len(order)]
        for variant in rotated:
            for mode in MODES if index % 2 == 0 else MODES[::-1]:
                chunk(variant, mode, size, record=True)
    after = dispatch.stats.as_dict()
    # Both variants that send: the fields list and the DRF serializer.
    signals_saves = sum(len(per_save[v][m]) for v in ("signals", "signals_drf") for m in MODES)
    return {
        "per_save_ns": per_save,
        "drained_ns": drained,
        "saves_per_cell": size * chunks,
        "signals_messages": {
            "expected": signals_saves,
            "sent": after["sent"] - before["sent"],
            "failed": after["failed"] - before["failed"],
            "dropped": after["dropped"] - before["dropped"],
        },
    }


def exit_check(n: int) -> dict[str, Any]:
    """Save ``n`` times in a child that exits right away; count what arrived."""
    import asyncio

    from channels.layers import get_channel_layer

    channel = f"bench-exit-{uuid.uuid4().hex}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.exitcheck", channel, str(n)],
        check=True,
        timeout=300,
        capture_output=True,
        text=True,
    )
    exited = time.monotonic() - started
    group = done.stdout.strip()

    async def drain() -> int:
        layer = get_channel_layer()
        got = 0
        try:
            while got < n:
                await asyncio.wait_for(layer.receive(channel), timeout=2.0)
                got += 1
        except asyncio.TimeoutError:
            pass
        await layer.group_discard(group, channel)
        return got

    received = asyncio.run(drain())
    return {
        "saves": n,
        "received": received,
        "child_seconds": exited,
        "child_log": done.stderr.strip()[-500:],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--exit-check", type=int, default=0)
    args = parser.parse_args()
    djangoenv.setup()
    result = run(args.n, args.chunks, args.warmup)
    if args.exit_check:
        result["exit_check"] = exit_check(args.exit_check)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

"""The burst part of ``python -m benchmarks``: every layer config, library and floor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..report import Table
from .run import BurstConfig, run_burst

LAYERS = ("core-defaults", "core-documented", "pubsub", "memory")
LABELS = {
    "core-defaults": "RedisChannelLayer, Channels docs' config",
    "core-documented": "RedisChannelLayer, documented settings",
    "pubsub": "RedisPubSubChannelLayer",
    "memory": "in-memory layer (1 worker, writes inside it)",
}
QUICK = {"clients": 50, "updates": 100}
FULL = {"clients": 200, "updates": 400}


def measure(size: dict[str, int], redis_url: str, workdir: Path, log: Callable[[str], None]) -> Any:
    """Floor and library for each layer config, taking turns; one dict per run."""
    rows = []
    for layer in LAYERS:
        for variant in ("floor", "library"):
            log(f"6. burst: {LABELS[layer]}, {variant}")
            config = BurstConfig(layer, variant, redis_urls=[redis_url], **size)
            result = asyncio.run(run_burst(config, workdir))
            rows.append(
                {
                    "layer": layer,
                    "variant": variant,
                    "clients": config.clients,
                    "updates": config.updates,
                    "expected": result.expected,
                    "lost": result.lost,
                    "duplicated": result.duplicated,
                    "out_of_order": result.out_of_order,
                    "resyncs": result.resyncs,
                    "p50_ms": result.percentile(0.5),
                    "p99_ms": result.percentile(0.99),
                    "drain_s": result.drain_s,
                }
            )
    return rows


def tables(rows: list[dict[str, Any]]) -> list[Table]:
    if not rows:
        return []
    first = rows[0]
    table = Table(
        f"6. Burst: 2 workers, {first['clients']} clients x {first['updates']} updates, "
        "each client in its own item group and the shared one "
        f"({first['expected']:,} frames per run)",
        ["layer config", "variant", "lost", "duplicated", "p50", "p99", "last frame", "vs floor"],
        note=(
            "Floor: a consumer that group_adds and forwards pre-encoded text, a writer that "
            "group_sends from one long-lived loop after QuerySet.update (no signal). "
            "Latency from the write returning to the frame arriving; 'last frame': from the "
            "first write to the last frame. Lost: for the floor, what had not arrived after "
            "15 s of quiet; for rohrpost_signals, what had not arrived once every group's "
            "newest message had."
        ),
    )
    floors = {row["layer"]: row for row in rows if row["variant"] == "floor"}
    for row in rows:
        floor = floors.get(row["layer"])
        ratio = ""
        if row["variant"] == "library" and floor and floor["drain_s"]:
            ratio = f"{row['drain_s'] / floor['drain_s']:.2f}x"
        table.add(
            LABELS[row["layer"]],
            "rohrpost_signals" if row["variant"] == "library" else "floor",
            f"{row['lost']:,} ({row['lost'] / row['expected']:.0%})",
            f"{row['duplicated']:,}",
            f"{row['p50_ms']:,.0f} ms",
            f"{row['p99_ms']:,.0f} ms",
            f"{row['drain_s']:.2f} s",
            ratio,
        )
    return [table]


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """0 lost where the floor loses; drain within 1.2x the floor where it loses nothing."""
    lines = []
    floors = {row["layer"]: row for row in rows if row["variant"] == "floor"}
    for row in rows:
        floor = floors.get(row["layer"])
        if row["variant"] != "library" or floor is None:
            continue
        label = LABELS[row["layer"]]
        clean = row["lost"] == 0 and row["duplicated"] == 0 and row["out_of_order"] == 0
        if floor["lost"]:
            ok = clean
            what = f"0 lost where the floor lost {floor['lost']:,}: lost {row['lost']:,}"
        else:
            ratio = row["drain_s"] / floor["drain_s"] if floor["drain_s"] else float("inf")
            ok = clean and ratio <= 1.2
            what = f"drain {ratio:.2f}x the floor (target <= 1.2x), lost {row['lost']:,}"
        lines.append(f"[{'met' if ok else 'MISSED'}] burst, {label}: {what}")
    return lines

"""Turn the raw results into tables (text and reStructuredText) and a plot.

Every figure is a median (or a percentile) over repetitions in one run, and
every comparison is a ratio between variants measured in that same run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .stats import median, percentile

LIBS = ("signals", "rohrpost", "dcrf")
NAMES = {
    "plain": "unwatched",
    "floor": "floor",
    "signals": "rohrpost_signals",
    "rohrpost": "rohrpost 4.1",
    "dcrf": "DCRF 1.3",
}
RATIO_HEADERS = ("ours / floor", "ours / rohrpost", "ours / DCRF")
DASH = "\u2013"  # an empty cell in the docs' tables


def fmt_us(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 10_000:
        return f"{value / 1000:,.1f} ms"
    return f"{value:,.0f} us"


def fmt_added(value: float) -> str:
    return "n/a" if math.isnan(value) else f"+{value:,.0f} us" if value >= 0 else f"{value:,.0f} us"


def ratio(a: float, b: float) -> str:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


class Table:
    def __init__(self, title: str, headers: Sequence[str], note: str = "") -> None:
        self.title = title
        self.headers = list(headers)
        self.rows: list[list[str]] = []
        self.note = note

    def add(self, *cells: str) -> None:
        self.rows.append(list(cells))

    def widths(self) -> list[int]:
        return [
            max(len(str(row[i])) for row in [self.headers, *self.rows])
            for i in range(len(self.headers))
        ]

    def text(self) -> str:
        widths = self.widths()
        line = "  ".join("-" * w for w in widths)
        out = [self.title, line]
        out.append("  ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=True)))
        out.append(line)
        for row in self.rows:
            out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        out.append(line)
        if self.note:
            out.append(self.note)
        return "\n".join(out)

    def rst(self) -> str:
        out = [f".. list-table:: {self.title}", "   :header-rows: 1", ""]
        for row in [self.headers, *self.rows]:
            for index, cell in enumerate(row):
                out.append(f"   {'* -' if index == 0 else '  -'} {cell or DASH}")
        if self.note:
            out += ["", self.note]
        return "\n".join(out)


def us(values_ns: Sequence[float]) -> list[float]:
    return [v / 1000 for v in values_ns]


def save_tables(save: dict[str, Any]) -> list[Table]:
    per_save = Table(
        "1. Save overhead: time of save() (median, p99 in brackets), and what a watched "
        "model adds to the unwatched one",
        ["database, layer, transaction", "unwatched", *(NAMES[v] for v in LIBS), *RATIO_HEADERS],
        note="Added = median(variant) - median(unwatched). 'ours / floor' compares whole "
        "save() times; the other two compare the added costs.",
    )
    drained = Table(
        "1b. The same saves with the background send included: wall time per save until "
        "every message was handed to the layer (mean), added over unwatched",
        [
            "database, layer, transaction",
            "unwatched",
            *(NAMES[v] for v in LIBS),
            *RATIO_HEADERS[1:],
        ],
        note="rohrpost_signals returns from save() before sending; this table charges the "
        "send to the save anyway, so the queue hides nothing.",
    )
    parts = Table(
        "1c. Where rohrpost_signals' added cost goes (medians, us)",
        [
            "database, layer, transaction",
            "field tracker",
            "receiver, encoding, queueing",
            "sender's share of the process",
            "added",
        ],
        note="Field tracker: django-model-utils' FieldTracker alone (our receiver "
        "disconnected). Receiver: the same with the message built and queued but not "
        "sent. Sender's share: the rest; the background sender runs in the same process "
        "and takes turns with save() for the GIL.",
    )
    serializer = Table(
        "1d. Payload from a Django REST framework ModelSerializer instead of the fields "
        "list (rohrpost_signals, medians, us)",
        ["database, layer, transaction", "fields list: added", "DRF serializer: added", "ratio"],
        note="Both build the same object (id, name, counter); added over the unwatched save.",
    )
    for combo, result in save.items():
        if "error" in result:
            per_save.add(combo, result["error"], "", "", "", "", "", "")
            continue
        for mode in ("outside", "inside"):
            if "signals_drf" not in result["per_save_ns"]:
                break
            med = {
                v: median(us(result["per_save_ns"][v][mode]))
                for v in ("plain", "signals", "signals_drf")
            }
            serializer.add(
                f"{combo}, {'in atomic()' if mode == 'inside' else 'autocommit'}",
                fmt_added(med["signals"] - med["plain"]),
                fmt_added(med["signals_drf"] - med["plain"]),
                ratio(med["signals_drf"] - med["plain"], med["signals"] - med["plain"]),
            )
        for mode in ("outside", "inside"):
            if "signals_tracker" not in result["per_save_ns"]:
                break
            med = {
                v: median(us(result["per_save_ns"][v][mode]))
                for v in ("plain", "signals_tracker", "signals_nosend", "signals")
            }
            parts.add(
                f"{combo}, {'in atomic()' if mode == 'inside' else 'autocommit'}",
                fmt_added(med["signals_tracker"] - med["plain"]),
                fmt_added(med["signals_nosend"] - med["signals_tracker"]),
                fmt_added(med["signals"] - med["signals_nosend"]),
                fmt_added(med["signals"] - med["plain"]),
            )
        for mode in ("outside", "inside"):
            label = f"{combo}, {'in atomic()' if mode == 'inside' else 'autocommit'}"
            times = {v: us(result["per_save_ns"][v][mode]) for v in ("plain", *LIBS)}
            med = {v: median(t) for v, t in times.items()}
            p99 = {v: percentile(t, 99) for v, t in times.items()}
            added = {v: med[v] - med["plain"] for v in LIBS}
            per_save.add(
                label,
                f"{fmt_us(med['plain'])} ({fmt_us(p99['plain'])})",
                *(f"{fmt_added(added[v])} ({fmt_us(p99[v])})" for v in LIBS),
                ratio(med["signals"], med["plain"]),
                ratio(added["signals"], added["rohrpost"]),
                ratio(added["signals"], added["dcrf"]),
            )
            count = len(times["plain"])
            mean = {v: result["drained_ns"][v][mode] / 1000 / count for v in ("plain", *LIBS)}
            dadded = {v: mean[v] - mean["plain"] for v in LIBS}
            drained.add(
                label,
                fmt_us(mean["plain"]),
                *(fmt_added(dadded[v]) for v in LIBS),
                ratio(dadded["signals"], dadded["rohrpost"]),
                ratio(dadded["signals"], dadded["dcrf"]),
            )
    return [per_save, drained, parts, serializer]


def delivery_lines(save: dict[str, Any]) -> list[str]:
    lines = []
    for combo, result in save.items():
        if "error" in result:
            continue
        sent = result["signals_messages"]
        lines.append(
            f"{combo}: rohrpost_signals queued {sent['expected']} messages, sent {sent['sent']}, "
            f"failed {sent['failed']}, dropped {sent['dropped']}"
        )
        check = result.get("exit_check")
        if check:
            lines.append(
                f"{combo}: exit check: a writer saved {check['saves']} times and exited without "
                f"flushing; {check['received']} messages arrived"
            )
    return lines


def live_tables(live: dict[str, Any]) -> list[Table]:
    variants = ("floor", *LIBS)
    headers = ["", *(NAMES[v] for v in variants), *RATIO_HEADERS]
    tables = []

    latency = Table(
        f"2. Save-to-socket latency through Redis and uvicorn "
        f"({len(live['latency']['signals']['from_return_us'])} updates per variant)",
        headers,
        note="Floor: the bare consumer fed by group_send of pre-encoded text; its clock "
        "starts right before group_send. rohrpost and DCRF send inside save(), so 'after "
        "save() was called' is the fair comparison for them.",
    )
    for key, label in (
        ("from_return_us", "after save() returned"),
        ("from_call_us", "after save() was called"),
    ):
        for q, name in ((50, "p50"), (99, "p99")):
            values = {v: percentile(live["latency"][v][key], q) for v in variants}
            latency.add(
                f"{name} {label}",
                *(fmt_us(values[v]) for v in variants),
                *(ratio(values["signals"], values[o]) for o in variants if o != "signals"),
            )
    latency.add(
        "lost",
        *(str(live["latency"][v]["lost"]) for v in variants),
        "",
        "",
        "",
    )
    tables.append(latency)

    if "breakdown" in live:
        steps = live["breakdown"]
        breakdown = Table(
            "2b. Where rohrpost_signals' extra latency goes: the writer process, medians",
            ["step", "rohrpost_signals", "floor"],
            note="The sender numbers each message and keeps it in the group's history "
            "(resumable delivery) before group_send: one more Redis round trip than the floor.",
        )
        breakdown.add("save() itself", fmt_us(steps["save_us"]), "")
        breakdown.add(
            "save() returned -> sender picks it up", fmt_us(steps["queue_to_sender_us"]), ""
        )
        breakdown.add("seq + history (one Redis script)", fmt_us(steps["history_us"]), "")
        breakdown.add(
            "group_send", fmt_us(steps["group_send_us"]), fmt_us(steps["floor_group_send_us"])
        )
        tables.append(breakdown)

    fanout = Table(
        "3. Fan-out: one update to N subscribed clients, time from the save() call until "
        "the last one has it (median, p99 in brackets), and messages per second sustained",
        headers,
        note="Messages/s: a stream of updates with at most 20 undelivered, through the same "
        "server; 'lost' counts every message a client did not get.",
    )
    slots = list(live["fanout"]["floor"])
    for slot in slots:
        clients = live["fanout"]["floor"][slot]["clients"]
        med = {v: median(live["fanout"][v][slot]["last_us"]) for v in variants}
        p99 = {v: percentile(live["fanout"][v][slot]["last_us"], 99) for v in variants}
        fanout.add(
            f"{clients} client{'s' if clients > 1 else ''}: last arrival",
            *(f"{fmt_us(med[v])} ({fmt_us(p99[v])})" for v in variants),
            *(ratio(med["signals"], med[o]) for o in variants if o != "signals"),
        )
    for slot in slots:
        rows = {v: live["sustained"][v][slot] for v in variants}
        clients = rows["floor"]["clients"]
        rate = {v: rows[v]["per_second"] for v in variants}
        fanout.add(
            f"{clients} client{'s' if clients > 1 else ''}: messages/s",
            *(f"{rate[v]:,.0f}/s" for v in variants),
            *(ratio(rate["signals"], rate[o]) for o in variants if o != "signals"),
        )
    lost = {v: sum(live["sustained"][v][s]["lost"] for s in slots) for v in variants}
    lost_fan = {v: sum(live["fanout"][v][s]["lost"] for s in slots) for v in variants}
    fanout.add("lost", *(str(lost[v] + lost_fan[v]) for v in variants), "", "", "")
    tables.append(fanout)

    memory = Table("4. Memory: server RSS growth per 1,000 connected, subscribed clients", headers)
    per = {v: live["memory"][v]["kib_per_1000"] / 1024 for v in variants}
    memory.add(
        f"MiB per 1,000 ({live['memory']['floor']['clients']} clients measured)",
        *(f"{per[v]:.1f} MiB" for v in variants),
        *(ratio(per["signals"], per[o]) for o in variants if o != "signals"),
    )
    tables.append(memory)

    profile = Table(
        "5. JSON encodes per update (cProfile: server event loop during fan-out; writer "
        "process during save())",
        ["", *(NAMES[v] for v in variants)],
        note="rohrpost's consumer is sync: its send runs in a worker thread the loop "
        "profile does not see (it forwards the text it got, without encoding).",
    )

    def per_update(row: dict[str, Any], key: str) -> str:
        return f"{row[key] / row['saves']:g}"

    slots_profiled = list(live["profile"]["floor"])
    for slot in slots_profiled:
        clients = live["profile"]["floor"][slot]["clients"]
        profile.add(
            f"server, {clients} client{'s' if clients > 1 else ''}",
            *(per_update(live["profile"][v][slot], "server_json_encodes") for v in variants),
        )
    first = slots_profiled[0]
    profile.add(
        "writer, per save()",
        "0 (pre-encoded)",
        *(per_update(live["profile"][v][first], "writer_json_encodes") for v in LIBS),
    )
    tables.append(profile)
    return tables


def targets(results: dict[str, Any]) -> list[str]:
    """The design's targets, each met or missed (informational, never a test)."""
    lines = []
    save = results.get("save", {})
    for combo, result in save.items():
        if "error" in result:
            continue
        limit = 65 if combo.endswith("memory") else 340
        for mode in ("outside", "inside"):
            med = {v: median(us(result["per_save_ns"][v][mode])) for v in ("plain", *LIBS)}
            added = med["signals"] - med["plain"]
            tenth = min(med["rohrpost"], med["dcrf"]) - med["plain"]
            ok = added <= limit and added <= tenth / 10
            lines.append(
                f"[{'met' if ok else 'MISSED'}] added save cost, {combo} {mode}: "
                f"{added:,.0f} us (target <= {limit} us and <= a tenth of "
                f"the alternatives' {tenth:,.0f} us)"
            )
    live = results.get("live")
    if live:
        p50 = {v: median(live["latency"][v]["from_return_us"]) for v in ("floor", "signals")}
        value = p50["signals"] / p50["floor"]
        lines.append(
            f"[{'met' if value <= 1.5 else 'MISSED'}] save-to-socket p50 {value:.2f}x the floor "
            "(target <= 1.5x)"
        )
        big = list(live["fanout"]["floor"])[-1]
        clients = live["fanout"]["floor"][big]["clients"]
        fan = {v: median(live["fanout"][v][big]["last_us"]) for v in ("floor", "signals")}
        value = fan["signals"] / fan["floor"]
        lines.append(
            f"[{'met' if value <= 1.3 else 'MISSED'}] fan-out to {clients} clients "
            f"{value:.2f}x the floor (target <= 1.3x)"
        )
        encodes = [
            live["profile"]["signals"][s]["server_json_encodes"] for s in live["profile"]["signals"]
        ]
        lines.append(
            f"[{'met' if not any(encodes) else 'MISSED'}] no per-socket JSON encoding: "
            f"{sum(encodes)} encodes in the server's loop during the profiled fan-outs"
        )
    return lines


def plot(live: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = ("floor", *LIBS)
    colors = {"floor": "#555555", "signals": "#1f77b4", "rohrpost": "#ff7f0e", "dcrf": "#2ca02c"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for v in variants:
        values = sorted(live["latency"][v]["from_call_us"])
        if not values:
            continue
        ys = [(i + 1) / len(values) for i in range(len(values))]
        left.plot([x / 1000 for x in values], ys, label=NAMES[v], color=colors[v])
    tails = [percentile(live["latency"][v]["from_call_us"], 99.9) for v in variants]
    left.set_xlim(right=max(t for t in tails if not math.isnan(t)) / 1000 * 1.5)
    left.set_xscale("log")
    left.set_xlabel("save() called -> text at the client (ms, log)")
    left.set_ylabel("fraction of updates")
    left.set_title("Save-to-socket latency (CDF)")
    left.grid(True, which="both", alpha=0.3)
    left.legend()
    slots = list(live["fanout"]["floor"])
    clients = [live["fanout"]["floor"][s]["clients"] for s in slots]
    for v in variants:
        meds = [median(live["fanout"][v][s]["last_us"]) / 1000 for s in slots]
        p99s = [percentile(live["fanout"][v][s]["last_us"], 99) / 1000 for s in slots]
        errors = [[0] * len(meds), [max(0.0, p - m) for p, m in zip(p99s, meds, strict=True)]]
        right.errorbar(
            clients, meds, yerr=errors, marker="o", capsize=3, label=NAMES[v], color=colors[v]
        )
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("subscribed clients")
    right.set_ylabel("time until the last client has it (ms, median; bar to p99)")
    right.set_title("Fan-out of one update")
    right.grid(True, which="both", alpha=0.3)
    right.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def meta_lines(meta: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    return [
        f"Run: {meta['mode']} mode, {meta['date']}, {meta['seconds']:.0f} s",
        f"Machine: {meta['machine']}",
        f"Load average at start / end: {meta['load_start']} / {meta.get('load_end', '?')}",
        f"Versions: {versions}",
    ]

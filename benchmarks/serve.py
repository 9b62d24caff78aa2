"""The benchmark ASGI server: uvicorn, one worker, optionally under cProfile.

``python -m benchmarks.serve PORT [PROFILE_BASE]``. With ``PROFILE_BASE``,
SIGUSR1 starts profiling the event loop thread and SIGUSR2 stops it and
writes ``PROFILE_BASE.N.prof`` (N counts up), so a profile covers exactly
the fan-out the orchestrator asked for.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from typing import Any

import uvicorn


def install_profiler(base: str) -> None:
    state: dict[str, Any] = {"profiler": None, "dumps": 0}

    def start(signum: int, frame: Any) -> None:
        state["profiler"] = cProfile.Profile()
        state["profiler"].enable()

    def stop(signum: int, frame: Any) -> None:
        profiler = state["profiler"]
        if profiler is None:
            return
        profiler.disable()
        state["profiler"] = None
        path = f"{base}.{state['dumps']}.prof"
        state["dumps"] += 1
        profiler.dump_stats(path + ".tmp")
        # Rename so the orchestrator never reads a half-written file.
        os.replace(path + ".tmp", path)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)


def main() -> None:
    port = int(sys.argv[1])
    if len(sys.argv) > 2:
        install_profiler(sys.argv[2])
    uvicorn.run(
        "benchmarks.asgi:application",
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws_ping_interval=None,
        ws_per_message_deflate=False,
    )


if __name__ == "__main__":
    main()

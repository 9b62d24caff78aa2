"""Run CI jobs side by side and report each one.

    python3 .ci/pool.py [--jobs N] NAME=COMMAND ...

Each COMMAND runs under ``bash -c`` with its output in ``artifacts/ci/NAME.log``.
At most N run at once (default: the ``RPS_CI_JOBS`` environment variable, else
2), in the order given, so put the longest first. A line is printed when a job
starts and when it ends, with its time and pytest's summary line; the whole
log of every failed job is printed at the end, and the exit status is 1 if
any job failed. The test suite spends about half its time waiting on sockets
and servers, so two passes side by side take little longer than one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

LOGS = Path("artifacts/ci")
print_lock = threading.Lock()
#: The jobs' processes, ended with their children when the pool is stopped.
running: set[subprocess.Popen[bytes]] = set()


def stop(signum: int, frame: object) -> None:
    with print_lock:
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    os._exit(128 + signum)


@dataclass
class Job:
    name: str
    command: str
    seconds: float = 0.0
    status: int | None = None

    @property
    def log(self) -> Path:
        return LOGS / f"{self.name}.log"


def say(text: str) -> None:
    with print_lock:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def summary_line(log: Path) -> str:
    """pytest's last line (``713 passed, 52 skipped in 130.34s``), else the log's last line."""
    lines = [line.strip("= \n") for line in log.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if " in " in line and any(word in line for word in ("passed", "failed", "error")):
            return line
    return lines[-1] if lines else "(no output)"


def run(job: Job) -> Job:
    say(f"start   {job.name}: {job.command}")
    started = time.monotonic()
    with job.log.open("wb") as out:
        # Each job in a process group of its own, which stop() ends whole.
        process = subprocess.Popen(
            ["bash", "-c", job.command],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        with print_lock:
            running.add(process)
        job.status = process.wait()
        with print_lock:
            running.discard(process)
    job.seconds = time.monotonic() - started
    verdict = "passed " if job.status == 0 else f"FAILED ({job.status})"
    say(f"{verdict} {job.name} in {job.seconds / 60:.1f} min: {summary_line(job.log)}")
    return job


def parse_job(text: str) -> Job:
    name, sep, command = text.partition("=")
    if not sep or not name or not command:
        raise SystemExit(f"pool.py: expected NAME=COMMAND, got {text!r}")
    return Job(name, command)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("RPS_CI_JOBS") or 2))
    parser.add_argument("job", nargs="+", type=parse_job, metavar="NAME=COMMAND")
    args = parser.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        jobs = list(pool.map(run, args.job))
    failed = [job for job in jobs if job.status != 0]
    for job in failed:
        print(f"\n----- log of the failed job {job.name} ({job.log}) -----", flush=True)
        sys.stdout.write(job.log.read_text(errors="replace"))
    minutes = (time.monotonic() - started) / 60
    print(f"\n----- {len(jobs)} jobs, {args.jobs} at a time, {minutes:.1f} min -----")
    for job in jobs:
        verdict = "passed" if job.status == 0 else "FAILED"
        print(f"{verdict}  {job.seconds / 60:5.1f} min  {job.name}: {summary_line(job.log)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m benchmarks [--quick] [--write-docs]``: run every measurement, print the tables.

See ``benchmarks/README.md``. The harness starts its own child processes
(save benchmark per database and layer, uvicorn server, writer) and needs
Redis at ``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) and, for
the PostgreSQL rows, a PostgreSQL server at 127.0.0.1:5432 (user postgres).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from . import report
from .burst import table as burst_table
from .live import LiveConfig, LiveRun

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOCS_PAGE = ROOT / "docs" / "performance.rst"
DOCS_PLOT = ROOT / "docs" / "_static" / "benchmark-full.png"
README = ROOT / "benchmarks" / "README.md"
BEGIN, END = ".. BEGIN GENERATED RESULTS", ".. END GENERATED RESULTS"
MD_BEGIN, MD_END = "<!-- BEGIN GENERATED RESULTS -->", "<!-- END GENERATED RESULTS -->"

QUICK = {
    "save": {"n": 60, "chunks": 2, "warmup": 5, "exit_check": 100},
    "live": LiveConfig(
        clients=100,
        latency_updates=200,
        rounds=2,
        fanout_reps=3,
        sustained_updates=(40, 10, 4),
        profile_saves=3,
    ),
}
FULL = {
    "save": {"n": 2000, "chunks": 10, "warmup": 50, "exit_check": 2000},
    "live": LiveConfig(),
}
PACKAGES = (
    "rohrpost-signals",
    "Django",
    "channels",
    "channels-redis",
    "redis",
    "uvicorn",
    "websockets",
    "rohrpost",
    "djangochannelsrestframework",
    "djangorestframework",
    "django-model-utils",
    "psycopg",
)


_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:5.0f} s] {message}", flush=True)


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} x {model}{memory}, {platform.system()} {platform.release()}"


def versions() -> dict[str, str]:
    found = {"Python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def service_versions(redis_url: str, pg: bool) -> dict[str, str]:
    out = {}
    try:
        import redis

        out["Redis server"] = str(redis.Redis.from_url(redis_url).info()["redis_version"])
    except Exception as exc:  # the run fails later with a clearer message
        out["Redis server"] = f"unreachable ({exc})"
    if pg:
        try:
            import psycopg

            with psycopg.connect(_pg_dsn("postgres")) as conn:
                row = conn.execute("show server_version").fetchone()
                out["PostgreSQL"] = str(row[0]).split()[0] if row else "?"
        except Exception as exc:
            out["PostgreSQL"] = f"unreachable ({exc})"
    return out


def _pg_dsn(name: str) -> str:
    host = os.environ.get("PGHOST", "127.0.0.1")
    port = os.environ.get("PGPORT", "5432")
    user = os.environ.get("PGUSER", "postgres")
    return f"host={host} port={port} user={user} dbname={name}"


def pg_database(name: str, create: bool) -> None:
    import psycopg

    with psycopg.connect(_pg_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def clean_redis(redis_url: str, prefix: str) -> int:
    """Delete this run's keys (only those: the Redis server is shared)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    return len(keys)


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def child_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    env = dict(base)
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    env.pop("RPS_DB", None)
    env.pop("RPS_LAYER", None)
    return env


def run_save(env: dict[str, str], options: dict[str, int], exit_check: bool) -> dict[str, Any]:
    args = [
        sys.executable,
        "-m",
        "benchmarks.savebench",
        "--n",
        str(options["n"]),
        "--chunks",
        str(options["chunks"]),
        "--warmup",
        str(options["warmup"]),
    ]
    if exit_check:
        args += ["--exit-check", str(options["exit_check"])]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    if done.returncode != 0:
        return {"error": f"failed: {done.stderr.strip().splitlines()[-1:]}"}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run, under a minute")
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="put the table and plot into docs/performance.rst and docs/_static",
    )
    parser.add_argument("--only", choices=("save", "live", "burst"), help="run one part only")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument(
        "--report",
        type=Path,
        metavar="JSON",
        help="measure nothing: print (and with --write-docs publish) a saved run",
    )
    args = parser.parse_args()
    if args.report:
        results = json.loads(args.report.read_text())
        publish(results, args.out, results["meta"]["mode"], args.write_docs)
        return

    missing = [name for name in ("rohrpost", "djangochannelsrestframework") if not installed(name)]
    if missing and args.only != "burst":  # the burst compares with bare Channels only
        sys.exit(
            f"The comparison libraries are missing ({', '.join(missing)}): "
            "pip install -e '.[bench]' (rohrpost 4.1 and DCRF 1.3 run with today's Django "
            "and Channels; see benchmarks/README.md)."
        )
    preset = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    have_pg = reachable(
        os.environ.get("PGHOST", "127.0.0.1"), int(os.environ.get("PGPORT", "5432"))
    )
    prefix = f"rpsbench-{os.getpid()}-{int(time.time())}"
    pg_name = f"rps_bench_{os.getpid()}"
    workdir = Path(tempfile.mkdtemp(prefix="rps-bench-"))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    base = child_env(os.environ, BENCH_REDIS_URL=redis_url, BENCH_PREFIX=prefix)
    meta: dict[str, Any] = {
        "mode": mode,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine(),
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "versions": {**versions(), **service_versions(redis_url, have_pg)},
    }
    results: dict[str, Any] = {"meta": meta}
    log(f"rohrpost_signals benchmarks ({mode}); scratch files in {workdir}")
    for line in report.meta_lines({**meta, "seconds": 0})[1:]:
        log(line)
    try:
        if args.only in (None, "save"):
            results["save"] = {}
            databases = ["sqlite", "postgres"] if have_pg else ["sqlite"]
            if not have_pg:
                log("PostgreSQL is not reachable: its rows are skipped.")
            if "postgres" in databases:
                pg_database(pg_name, create=True)
            for db in databases:
                for layer in ("memory", "redis"):
                    if args.quick and (db, layer) == ("postgres", "memory"):
                        continue  # the smoke run stays under a minute
                    combo = f"{'SQLite' if db == 'sqlite' else 'PostgreSQL'}, {layer}"
                    log(f"1. save overhead: {combo}")
                    env = dict(
                        base,
                        BENCH_DB=db,
                        BENCH_LAYER=layer,
                        BENCH_PG_NAME=pg_name,
                        BENCH_SQLITE_PATH=str(workdir / f"save-{layer}.sqlite3"),
                    )
                    exit_check = layer == "redis" and db == "sqlite"
                    results["save"][combo] = run_save(env, preset["save"], exit_check)
            if "postgres" in databases:
                pg_database(pg_name, create=False)
        if args.only in (None, "live"):
            log("2-4. live measurements (uvicorn + Redis)")
            env = dict(
                base,
                BENCH_DB="sqlite",
                BENCH_LAYER="redis",
                BENCH_SQLITE_PATH=str(workdir / "live.sqlite3"),
            )
            results["live"] = asyncio.run(LiveRun(preset["live"], env, workdir, log).run())
        if args.only in (None, "burst"):
            size = burst_table.QUICK if args.quick else burst_table.FULL
            results["burst"] = burst_table.measure(size, redis_url, workdir, log)
    finally:
        removed = clean_redis(redis_url, prefix)
        log(f"removed {removed} Redis keys with prefix {prefix}")
    meta["seconds"] = time.monotonic() - started
    meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    publish(results, args.out, mode, args.write_docs)
    failed = [combo for combo, result in results.get("save", {}).items() if "error" in result]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


def render(results: dict[str, Any]) -> tuple[list[report.Table], list[str], list[str]]:
    tables: list[report.Table] = []
    notes: list[str] = []
    if "save" in results:
        tables += report.save_tables(results["save"])
        notes += report.delivery_lines(results["save"])
    if "live" in results:
        tables += report.live_tables(results["live"])
    tables += burst_table.tables(results.get("burst", []))
    return tables, notes, report.targets(results) + burst_table.targets(results.get("burst", []))


def publish(results: dict[str, Any], out: Path, mode: str, write_docs: bool) -> None:
    tables, notes, targets = render(results)
    header = report.meta_lines(results["meta"])
    text = "\n\n".join([*header[:0], "\n".join(header), *(t.text() for t in tables)])
    text += "\n\n" + "\n".join(notes) + "\n\nTargets (informational):\n" + "\n".join(targets)
    print("\n" + text, flush=True)
    (out / f"{mode}.json").write_text(json.dumps(results))
    (out / f"{mode}.txt").write_text(text + "\n")
    if "live" in results:
        plot_path = out / f"{mode}.png"
        report.plot(results["live"], plot_path, " | ".join(header[:2]))
        print(f"\nplot: {plot_path}")
    if write_docs:
        write_docs_page(results, tables, notes, targets, header)
        replace_between(README, MD_BEGIN, MD_END, f"```text\n{text}\n```")
        print(f"updated {README}")


def replace_between(path: Path, begin: str, end: str, body: str) -> None:
    page = path.read_text(encoding="utf-8")
    block = f"{begin}\n{body}\n{end}"
    if begin in page and end in page:
        page = page[: page.index(begin)] + block + page[page.index(end) + len(end) :]
    else:
        page = page.rstrip() + "\n\n" + block + "\n"
    path.write_text(page, encoding="utf-8")


def write_docs_page(
    results: dict[str, Any],
    tables: list[report.Table],
    notes: list[str],
    targets: list[str],
    header: list[str],
) -> None:
    body = [""]
    body += ["::", ""] + [f"   {line}" for line in header] + [""]
    for table in tables:
        body += [table.rst(), ""]
    if notes:
        body += ["::", ""] + [f"   {line}" for line in notes] + [""]
    body += ["Targets:", ""] + [f"* ``{line}``" for line in targets] + [""]
    if "live" in results:
        report.plot(results["live"], DOCS_PLOT, " | ".join(header[:2]))
        body += [
            f".. image:: _static/{DOCS_PLOT.name}",
            "   :alt: latency CDF and fan-out time",
            "",
        ]
    replace_between(DOCS_PAGE, BEGIN, END, "\n".join(body))
    print(f"updated {DOCS_PAGE} and {DOCS_PLOT}")


if __name__ == "__main__":
    main()

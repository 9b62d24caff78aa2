"""The process's counters: safe to change from many threads, and resettable for tests."""

from __future__ import annotations

import threading
import typing

from rohrpost_signals.core.dispatch import CounterName, Stats


def test_counts_from_many_threads_add_up() -> None:
    stats = Stats()
    threads = [
        threading.Thread(target=lambda: [stats.add("queued") for _ in range(20_000)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats.queued == 160_000


def test_an_error_counts_as_failed_and_is_remembered() -> None:
    stats = Stats()
    stats.error("ConnectionError: down")
    assert stats.failed == 1
    assert stats.last_error == "ConnectionError: down"
    assert stats.last_error_at > 0


def test_reset_sets_every_counter_back() -> None:
    stats = Stats()
    for name in typing.get_args(CounterName):
        stats.add(name, 3)
    stats.error("boom")
    assert all(value for value in stats.as_dict().values())
    stats.reset()
    assert stats.as_dict() == {**dict.fromkeys(typing.get_args(CounterName), 0), "last_error": ""}
    assert stats.last_error_at == 0.0

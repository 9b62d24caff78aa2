from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _sqlite_pragmas(sender: Any, connection: Any, **kwargs: Any) -> None:
    # WAL without an fsync per commit, as SQLite is usually run in production;
    # otherwise the disk's fsync time would dwarf everything measured here.
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")


class BenchAppConfig(AppConfig):
    name = "benchmarks.benchapp"
    label = "benchapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        connection_created.connect(_sqlite_pragmas, dispatch_uid="benchapp-sqlite-pragmas")
        # DCRF connects its signal receivers when the consumer class is built,
        # so every benchmark process (writer included) must import it.
        from . import consumers  # noqa: F401

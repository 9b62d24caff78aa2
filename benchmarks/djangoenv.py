"""Start Django in a benchmark child process and make sure the tables exist."""

from __future__ import annotations

import os

import django


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    django.setup()
    ensure_tables()


def ensure_tables() -> None:
    from django.db import connection

    from .benchapp.models import VARIANTS

    existing = set(connection.introspection.table_names())
    with connection.schema_editor() as editor:
        for model in VARIANTS.values():
            if model._meta.db_table not in existing:
                editor.create_model(model)

"""Sequence numbers stay unique and gap-free with writers in several processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings

from tests import services
from tests.conftest import redis_layer_config
from tests.helpers import GroupListener

pytestmark = [pytest.mark.slow, pytest.mark.redis]

UPDATES_PER_WRITER = 150

WRITER = textwrap.dedent(
    """
    import os, sys, django
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    django.setup()
    from django.db import connection
    from shop.models import Customer, Order
    if sys.argv[1] == "migrate":
        from django.core.management import call_command
        call_command("migrate", verbosity=0)
        Customer.objects.create(pk=1, name="shared")
        sys.exit(0)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 30000")
    order = Order.objects.create(customer_id=1)
    for n in range(int(sys.argv[2])):
        order.status = f"{sys.argv[1]}-{n}"
        order.save()
    """
)


def test_concurrent_writers_never_share_or_skip_a_seq(tmp_path: Path) -> None:
    layer = redis_layer_config(capacity=10_000)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {
        **os.environ,
        "RPS_DB": "sqlite",
        "RPS_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
        "RPS_LAYER": "redis",
        "REDIS_URL": services.REDIS_URL,
        "RPS_REDIS_PREFIX": layer["CONFIG"]["prefix"],
        "RPS_REDIS_CAPACITY": "10000",
        "PYTHONPATH": os.pathsep.join(["testproject", "."]),
    }
    subprocess.run([sys.executable, str(script), "migrate"], env=env, check=True, timeout=60)
    with override_settings(CHANNEL_LAYERS={"default": layer}):
        from channels.layers import channel_layers

        channel_layers.backends.clear()
        listener = GroupListener("customer-1-orders")
        writers = [
            subprocess.Popen([sys.executable, str(script), name, str(UPDATES_PER_WRITER)], env=env)
            for name in ("a", "b")
        ]
        for writer in writers:
            assert writer.wait(timeout=120) == 0
        received = listener.messages(timeout=1.0)
    seqs = sorted(m["data"]["seq"] for m in received)
    expected = 2 * (UPDATES_PER_WRITER + 1)  # each writer: one create, then its updates
    assert len(received) == expected
    assert len(set(seqs)) == expected, "two messages share a seq"
    assert seqs == list(range(seqs[0], seqs[0] + expected)), "a seq was skipped"
    # Each writer's own messages keep their commit order.
    for name in ("a", "b"):
        mine = [m for m in received if str(m["data"]["object"].get("status", "")).startswith(name)]
        assert [m["data"]["object"]["status"] for m in mine] == [
            f"{name}-{n}" for n in range(UPDATES_PER_WRITER)
        ]
        assert [m["data"]["seq"] for m in mine] == sorted(m["data"]["seq"] for m in mine)

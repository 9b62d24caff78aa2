"""A writer process driven over stdin, for the scale-out integration tests.

Each input line is one JSON command; each gets one JSON line back on stdout:

  {"op": "setup", "customers": 1, "orders": 3, "products": 1}
      -> {"user": id, "session": key, "orders": [pk, ...], "products": [pk, ...]}
  {"op": "save", "writes": [["order", pk, "status"], ["product", pk, "name"], ...],
   "interval": 0.01}   (optional: seconds from one save's start to the next's)
      -> {"saved": [t, ...]}   wall-clock time after each save() returned
  {"op": "broadcast", "group": "order-1", "count": 100, "size": 30000}
      -> {"sent": [t, ...]}   send_to_group() of "news" frames: {"n": n, "t": t, "pad": "..."}
  {"op": "login", "user": id}  -> {"session": key}   one more session of that user
  {"op": "logout", "session": key}  -> {"logged_out": bool}   django.contrib.auth.logout()
  {"op": "revoke", "user": id, "codename": "view_order"}  -> {"revoked": true}
      removes the permission and calls rohrpost_signals.reauthorize(user=id)
  {"op": "flush"}  -> {"flushed": bool, "stats": {...}}   waits for the sender
  {"op": "stats"}  -> {"stats": {...}}

Every save commits on its own (autocommit), as web requests and task
workers do. Send errors are logged by rohrpost_signals to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand
from django.http import HttpRequest

from rohrpost_signals import dispatch, reauthorize
from rohrpost_signals.message import send_to_group
from shop.models import Customer, Order, Product


def _session(user: Any) -> str:
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return session.session_key


def _logout(session_key: str) -> dict[str, Any]:
    """What a logout view does, in this process: the workers learn it via the layer."""
    request = HttpRequest()
    request.session = SessionStore(session_key)
    request.user = auth.get_user(request)
    logged_in = request.user.is_authenticated
    auth.logout(request)
    return {"logged_out": logged_in}


def _revoke(user_id: int, codename: str) -> dict[str, Any]:
    user = get_user_model().objects.get(pk=user_id)
    user.user_permissions.remove(Permission.objects.get(codename=codename))
    reauthorize(user=user)
    return {"revoked": True}


def _setup(command: dict[str, Any]) -> dict[str, Any]:
    user = get_user_model().objects.create_user(f"writer-{time.time_ns()}")
    # The default policy asks for the models' view permission.
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_order", "view_product"])
    )
    session_key = _session(user)
    customers = [
        Customer.objects.create(name=f"customer-{n}") for n in range(command.get("customers", 1))
    ]
    orders = [
        Order.objects.create(customer=customers[n % len(customers)])
        for n in range(command.get("orders", 0))
    ]
    products = [Product.objects.create(name="p-") for _ in range(command.get("products", 0))]
    # The "create" messages are out before anyone subscribes to these objects.
    dispatch.flush(timeout=60)
    return {
        "user": user.pk,
        "session": session_key,
        "orders": [o.pk for o in orders],
        "products": [p.pk for p in products],
    }


# Loaded once: later saves diff against what this process saved last.
_objects: dict[tuple[str, int], Order | Product] = {}


def _save(writes: list[list[Any]], interval: float = 0.0) -> dict[str, Any]:
    saved = []
    next_at = time.monotonic()
    for model, pk, value in writes:
        if interval:
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        obj = _objects.get((model, pk))
        if obj is None:
            obj = _objects[model, pk] = (Order if model == "order" else Product).objects.get(pk=pk)
        if isinstance(obj, Order):
            obj.status = value
            obj.save(update_fields=["status"])
        else:
            obj.name = value
            obj.save(update_fields=["name"])
        saved.append(time.time())
    return {"saved": saved}


def _broadcast(group: str, count: int, size: int) -> dict[str, Any]:
    sent = []
    for n in range(count):
        now = time.time()
        send_to_group(group, "news", data={"n": n, "t": now, "pad": "x" * size})
        sent.append(now)
    return {"sent": sent}


class Command(BaseCommand):
    help = "Save model changes as told on stdin (scale-out integration tests)."

    def handle(self, *args: Any, **options: Any) -> None:
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            if op == "setup":
                answer = _setup(command)
            elif op == "save":
                answer = _save(command["writes"], command.get("interval", 0.0))
            elif op == "broadcast":
                answer = _broadcast(command["group"], command["count"], command["size"])
            elif op == "login":
                answer = {"session": _session(get_user_model().objects.get(pk=command["user"]))}
            elif op == "logout":
                answer = _logout(command["session"])
            elif op == "revoke":
                answer = _revoke(command["user"], command["codename"])
            elif op == "flush":
                answer = {"flushed": dispatch.flush(timeout=60), "stats": dispatch.stats.as_dict()}
            elif op == "stats":
                answer = {"stats": dispatch.stats.as_dict()}
            else:
                answer = {"error": f"unknown op {op!r}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()

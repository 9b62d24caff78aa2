"""Run inside the tutorial's project by tests/test_tutorial.py.

Usage: python tutorial_client.py <memory|redis> <password> <shell input>
"""

import asyncio
import json
import os
import re
import subprocess
import sys

os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client
from mysite.asgi import application

from shop.models import Order

MODE, PASSWORD, SHELL = sys.argv[1], sys.argv[2], sys.argv[3]
call_command("check", fail_level="WARNING")
user = get_user_model().objects.get(username="ada")
browser = Client(HTTP_HOST="localhost:8000")

# Logging in through the tutorial's own login page lands on the list.
answer = browser.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
assert (answer.status_code, answer["Location"]) == (302, "/orders/"), answer
first = Order.objects.create(customer=user)


def page_groups(path):
    html = browser.get(path).content.decode()
    tag = re.search(
        r'<script src="([^"]+)" data-rohrpost-url="([^"]+)" data-rohrpost-groups="([^"]+)"', html
    )
    assert tag, html
    src, url, groups = tag.groups()
    assert src == "/static/rohrpost_signals/rohrpost.js"
    assert finders.find("rohrpost_signals/rohrpost.js")
    assert url == "/ws/rohrpost/"
    return json.loads(groups.replace("&quot;", '"'))


list_groups = page_groups("/orders/")
detail_groups = page_groups(f"/orders/{first.pk}/")
assert (list_groups, detail_groups) == (["orders"], [f"order-{first.pk}"])


def admin(path, **fields):
    answer = browser.post(path, {"customer": user.pk, "_save": "Save", **fields})
    assert answer.status_code == 302, answer.content.decode()[:2000]


async def frames(socket, count):
    got = []
    for _ in range(count):
        frame = await socket.receive_json_from(timeout=20)
        assert frame["type"] == "subscription-update", frame
        got.append(frame["data"])
    return sorted(got, key=lambda data: (data["object"]["id"], data["group"]))


def check_numbers(update, replies):
    reply = replies[update["group"]]
    if "seq" in reply:
        assert isinstance(update["seq"], int), update
        assert update["seq"] > reply["seq"], (update, reply)
        if "epoch" in reply:
            assert update["epoch"] == reply["epoch"], (update, reply)


async def main():
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    socket = WebsocketCommunicator(
        application,
        "/ws/rohrpost/",
        headers=[(b"origin", b"http://localhost:8000"), (b"cookie", cookie)],
    )
    connected, _ = await socket.connect(timeout=10)
    assert connected
    replies = {}
    for number, group in enumerate(list_groups + detail_groups, start=1):
        await socket.send_json_to({"id": number, "type": "subscribe", "data": {"group": group}})
        reply = await socket.receive_json_from(timeout=10)
        assert reply.get("error") is None, reply
        assert reply["data"]["group"] == group, reply
        replies[group] = reply["data"]

    # In the server's process, as the admin would: a new order, then a change.
    await sync_to_async(admin)("/admin/shop/order/add/", status="new", total="4.20")
    [created] = await frames(socket, 1)
    assert (created["type"], created["group"]) == ("create", "orders"), created
    assert (created["object"]["status"], created["object"]["total"]) == ("new", "4.20"), created
    await sync_to_async(admin)(
        f"/admin/shop/order/{first.pk}/change/", status="paid", total="12.50"
    )
    updates = await frames(socket, 2)
    assert [u["group"] for u in updates] == [f"order-{first.pk}", "orders"], updates
    for update in updates:
        assert update["type"] == "update"
        assert update["object"] == {
            "id": first.pk,
            "status": "paid",
            "total": "12.50",
            "updated_fields": ["status", "total"],
        }, update
        check_numbers(update, replies)
    print("in-process ok")

    # The tutorial's shell lines, in a second process, on the newest order.
    newest = await sync_to_async(lambda: Order.objects.order_by("pk").last().pk)()
    shell = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "manage.py", "shell"],
        input=SHELL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0, shell.stdout + shell.stderr
    if MODE == "redis":
        [update] = await frames(socket, 1)
        assert (update["group"], update["object"]["id"]) == ("orders", newest), update
        assert update["object"]["status"] == "shipped", update
        print("second process ok")
    else:
        assert (
            "through the in-memory channel layer, but no WebSocket is connected" in shell.stderr
        ), shell.stderr
        assert await socket.receive_nothing(timeout=0.5)
        print("second process warned")
    await socket.disconnect()


asyncio.run(main())

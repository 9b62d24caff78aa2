"""A subscription is authorized for its whole life, not just when it starts.

Each leak the demo was attacked with, on both consumers and both layers:
logout, deactivation, a removed board member, a card moved to a board the
subscriber cannot see, a rejoin after an outage. The sockets log in the way
a browser does: a session cookie through ``AuthMiddlewareStack``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, Permission, User
from django.contrib.sessions.models import Session
from django.test import Client, override_settings

from board.models import Board, Card
from rohrpost_signals import reauthorize
from rohrpost_signals.core import dispatch, membership, repair
from shop.models import Customer, Order
from tests import services
from tests.conftest import own_redis_layer
from tests.helpers import aeventually
from tests.test_layer_resilience import FlakyLayer
from tests.ws import CONSUMERS, reply, request

pytestmark = [pytest.mark.django_db(transaction=True)]

KINDS = list(CONSUMERS)


class Browser:
    """A logged-in browser: its HTTP client and the cookie its sockets send."""

    def __init__(self, user: User) -> None:
        self.client = Client()
        self.client.force_login(user)
        self.cookie = f"sessionid={self.client.cookies['sessionid'].value}"

    @property
    def session_key(self) -> str:
        return str(self.client.cookies["sessionid"].value)


async def browser(user: User) -> Browser:
    return await database_sync_to_async(Browser)(user)


async def open_socket(kind: str, cookie: str) -> WebsocketCommunicator:
    app = AuthMiddlewareStack(CONSUMERS[kind].as_asgi())
    ws = WebsocketCommunicator(app, "/ws/rohrpost/", headers=[(b"cookie", cookie.encode())])
    connected, _ = await ws.connect(timeout=10)
    assert connected
    return ws


async def subscribe(ws: WebsocketCommunicator, group: str, id: int = 1) -> dict[str, Any]:
    answer = await request(ws, id=id, type="subscribe", data={"group": group})
    assert "error" not in answer, answer
    return answer


async def frames_until(ws: WebsocketCommunicator, type: str) -> list[dict[str, Any]]:
    """Every frame up to and including the first of ``type``."""
    seen = []
    while True:
        frame = await reply(ws, timeout=30)
        seen.append(frame)
        if frame["type"] == type:
            return seen


async def save(obj: Any, **values: Any) -> None:
    for name, value in values.items():
        setattr(obj, name, value)
    await database_sync_to_async(obj.save)()
    await dispatch.aflush()


@pytest.fixture
def people() -> dict[str, User]:
    return {name: User.objects.create_user(name) for name in ("alice", "bob")}


@pytest.fixture
def boards(people: dict[str, User]) -> dict[str, Board]:
    """Board "team" has alice and bob; board "secret" only alice."""
    team = Board.objects.create(name="team")
    team.members.add(people["alice"], people["bob"])
    secret = Board.objects.create(name="secret")
    secret.members.add(people["alice"])
    assert dispatch.flush(timeout=30)  # the create messages are out before anyone subscribes
    return {"team": team, "secret": secret}


@pytest.fixture
def card(boards: dict[str, Board]) -> Card:
    card = Card.objects.create(board=boards["team"], title="plan")
    # Its create message is out before any socket subscribes.
    assert dispatch.flush(timeout=30)
    return card


async def assert_gets_no_more(ws: WebsocketCommunicator, watcher: WebsocketCommunicator) -> None:
    """What reached ``watcher`` (still allowed) did not reach ``ws``."""
    update = await reply(watcher, timeout=30)
    assert update["type"] == "subscription-update"
    assert await ws.receive_nothing(timeout=0.5)


# --- logout, deactivation, password, session ------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_logout_ends_that_sessions_sockets(
    kind: str, any_layer: str, people: dict[str, User], card: Card
) -> None:
    laptop, phone = await browser(people["bob"]), await browser(people["bob"])
    on_laptop = await open_socket(kind, laptop.cookie)
    on_phone = await open_socket(kind, phone.cookie)
    group = f"card-{card.pk}"
    await subscribe(on_laptop, group)
    await subscribe(on_phone, group)

    # The HTTP side logs the laptop out (django.contrib.auth.logout).
    await database_sync_to_async(laptop.client.logout)()
    unsubscribed = await reply(on_laptop, timeout=30)
    assert unsubscribed["type"] == "unsubscribed"
    assert unsubscribed["data"] == {"group": group, "reason": "logged-out"}
    await save(card, title="after logout")
    await assert_gets_no_more(on_laptop, on_phone)  # the phone's session still works
    # The socket is anonymous now.
    refused = await request(on_laptop, id=2, type="subscribe", data={"group": group})
    assert refused["code"] == "unauthenticated"
    await on_laptop.disconnect()
    await on_phone.disconnect()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("change", ["deactivate", "password", "delete-session"])
async def test_a_lost_login_ends_the_users_sockets(
    kind: str, any_layer: str, change: str, people: dict[str, User], card: Card
) -> None:
    bob = await browser(people["bob"])
    ws = await open_socket(kind, bob.cookie)
    group = f"board-{card.board_id}-cards"
    await subscribe(ws, group)
    watcher = await open_socket(kind, (await browser(people["alice"])).cookie)
    await subscribe(watcher, group)

    def lose_login() -> None:
        user = User.objects.get(pk=people["bob"].pk)
        if change == "deactivate":
            user.is_active = False
            user.save()
        elif change == "password":
            user.set_password("changed elsewhere")
            user.save()
        else:  # an admin ends the session, or clearsessions
            Session.objects.filter(session_key=bob.session_key).delete()

    await database_sync_to_async(lose_login)()
    await dispatch.aflush()
    unsubscribed = await reply(ws, timeout=30)
    assert unsubscribed["type"] == "unsubscribed"
    assert unsubscribed["data"] == {"group": group, "reason": "logged-out"}
    await save(card, title="after")
    await assert_gets_no_more(ws, watcher)
    await ws.disconnect()
    await watcher.disconnect()


# --- membership, moves, reauthorize() -------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_a_removed_member_loses_the_boards_groups(
    kind: str, any_layer: str, people: dict[str, User], boards: dict[str, Board], card: Card
) -> None:
    ws = await open_socket(kind, (await browser(people["bob"])).cookie)
    groups = {f"board-{card.board_id}-cards", f"card-{card.pk}"}
    for n, group in enumerate(sorted(groups)):
        await subscribe(ws, group, id=n)
    watcher = await open_socket(kind, (await browser(people["alice"])).cookie)
    await subscribe(watcher, f"card-{card.pk}")

    # The demo reauthorizes the members a board loses (board/apps.py).
    await database_sync_to_async(boards["team"].members.remove)(people["bob"])
    await dispatch.aflush()
    ended = [await reply(ws, timeout=30) for _ in groups]
    assert {(f["type"], f["data"]["group"], f["data"]["reason"]) for f in ended} == {
        ("unsubscribed", group, "forbidden") for group in groups
    }
    await save(card, title="members only")
    await assert_gets_no_more(ws, watcher)
    await ws.disconnect()
    await watcher.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_card_moved_to_a_secret_board_is_not_delivered(
    kind: str, any_layer: str, people: dict[str, User], boards: dict[str, Board], card: Card
) -> None:
    bob = await open_socket(kind, (await browser(people["bob"])).cookie)
    alice = await open_socket(kind, (await browser(people["alice"])).cookie)
    group = f"card-{card.pk}"
    await subscribe(bob, group)
    await subscribe(alice, group)

    await save(card, board=boards["secret"], title="secret: codename PHOENIX")
    frames = await frames_until(bob, "unsubscribed")
    assert frames[-1]["data"] == {"group": group, "reason": "forbidden"}
    update = await reply(alice, timeout=30)  # alice may see both boards
    assert update["data"]["object"]["title"] == "secret: codename PHOENIX"
    assert await bob.receive_nothing(timeout=0.5)
    assert "PHOENIX" not in json.dumps(frames)
    await bob.disconnect()
    await alice.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_move_between_visible_boards_keeps_the_subscription(
    kind: str, any_layer: str, people: dict[str, User], boards: dict[str, Board], card: Card
) -> None:
    alice = await open_socket(kind, (await browser(people["alice"])).cookie)
    await subscribe(alice, f"card-{card.pk}")
    await save(card, board=boards["secret"])
    update = await reply(alice, timeout=30)
    assert update["type"] == "subscription-update"
    assert update["data"]["object"]["board"] == boards["secret"].pk
    await alice.disconnect()


def silently_remove(board: Board, user: User) -> None:
    """Remove a member without m2m_changed: nobody calls reauthorize()."""
    Board.members.through.objects.filter(board=board, user=user).delete()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", ["user", "group", "everyone"])
async def test_reauthorize_rechecks_the_matching_subscriptions(
    kind: str, any_layer: str, target: str, people: dict[str, User], boards: dict[str, Board]
) -> None:
    ws = await open_socket(kind, (await browser(people["bob"])).cookie)
    group = f"board-{boards['team'].pk}"
    await subscribe(ws, group)
    await database_sync_to_async(silently_remove)(boards["team"], people["bob"])
    if target == "user":
        reauthorize(user=people["bob"])
    elif target == "group":
        reauthorize(group=group)
    else:
        reauthorize()
    await dispatch.aflush()
    assert (await reply(ws, timeout=30))["data"] == {"group": group, "reason": "forbidden"}
    await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_reauthorize_keeps_what_is_still_allowed(
    kind: str, any_layer: str, people: dict[str, User], boards: dict[str, Board], card: Card
) -> None:
    ws = await open_socket(kind, (await browser(people["bob"])).cookie)
    await subscribe(ws, f"card-{card.pk}")
    reauthorize(user=people["bob"].pk)
    await save(card, title="still visible")
    update = await reply(ws, timeout=30)
    assert update["type"] == "subscription-update"
    await ws.disconnect()


# --- the periodic check and rejoins ----------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_the_periodic_check_finds_what_no_event_told(
    kind: str, any_layer: str, people: dict[str, User], boards: dict[str, Board]
) -> None:
    with override_settings(ROHRPOST={**_project_rohrpost(), "REAUTHORIZE_INTERVAL": 0.2}):
        ws = await open_socket(kind, (await browser(people["bob"])).cookie)
        group = f"board-{boards['team'].pk}"
        await subscribe(ws, group)
        await database_sync_to_async(silently_remove)(boards["team"], people["bob"])
        assert (await reply(ws, timeout=30))["data"] == {"group": group, "reason": "forbidden"}
        await ws.disconnect()


@pytest.mark.redis
async def test_the_periodic_check_reaches_every_socket_on_a_sharded_redis(
    people: dict[str, User], boards: dict[str, Board]
) -> None:
    """channels-redis misroutes most of a worker's sends to its own sockets over several hosts."""
    from tests.test_sharded_layer import SHARDS, misrouted

    settings = {**_project_rohrpost(), "REAUTHORIZE_INTERVAL": 0.2}
    with own_redis_layer(shards=SHARDS), override_settings(ROHRPOST=settings):
        cookie = (await browser(people["bob"])).cookie
        group = f"board-{boards['team'].pk}"
        sockets: list[WebsocketCommunicator] = []
        # Until at least one socket is one that channels-redis' send would miss.
        while len(sockets) < 4 or not any(
            misrouted(member.channel_name) for member in repair.feed_for("default").members(group)
        ):
            assert len(sockets) < 64
            sockets.append(await open_socket("async", cookie))
            await subscribe(sockets[-1], group)
        await database_sync_to_async(silently_remove)(boards["team"], people["bob"])
        for ws in sockets:
            assert (await reply(ws, timeout=30))["data"] == {"group": group, "reason": "forbidden"}
        for ws in sockets:
            await ws.disconnect()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_periodic_check_due_before_connect_ran_waits_for_the_next(kind: str) -> None:
    """The first check's random delay can end before a busy server ran connect()."""
    from django.contrib.auth.models import AnonymousUser

    consumer = CONSUMERS[kind]()
    consumer.scope = {"user": AnonymousUser()}
    consumer.channel_name = "specific.test!socket"
    with override_settings(ROHRPOST={**_project_rohrpost(), "REAUTHORIZE_INTERVAL": 60}):
        consumer._recheck_due()  # no subscriptions attribute yet: nothing to check
    assert consumer._recheck_timer is not None
    consumer._recheck_timer.cancel()


@pytest.mark.parametrize("kind", KINDS)
async def test_an_expired_session_is_found_by_the_periodic_check(
    kind: str, any_layer: str, people: dict[str, User], boards: dict[str, Board]
) -> None:
    with override_settings(ROHRPOST={**_project_rohrpost(), "REAUTHORIZE_INTERVAL": 0.2}):
        bob = await browser(people["bob"])
        ws = await open_socket(kind, bob.cookie)
        group = f"board-{boards['team'].pk}"
        await subscribe(ws, group)

        def expire() -> None:  # no signal: the row is only past its expiry date
            Session.objects.filter(session_key=bob.session_key).update(
                expire_date="2000-01-01T00:00:00Z"
            )

        await database_sync_to_async(expire)()
        assert (await reply(ws, timeout=30))["data"] == {"group": group, "reason": "logged-out"}
        await ws.disconnect()


def _project_rohrpost() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.ROHRPOST)


@pytest.fixture
def fast_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(membership, "CHECK_INTERVAL", 0.02)


@pytest.fixture(params=["memory", "redis"])
def outage_layer(request: pytest.FixtureRequest, fast_checks: None) -> Iterator[str]:
    """A layer whose outage a test can cause: a flaky in-memory one, or Redis losing its data."""
    if request.param == "redis":
        with own_redis_layer():
            yield request.param
        return
    config = {"BACKEND": f"{FlakyLayer.__module__}.FlakyLayer"}
    with override_settings(CHANNEL_LAYERS={"default": config}):
        channel_layers.backends.clear()
        yield request.param
    channel_layers.backends.clear()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rejoin_after_an_outage_asks_the_policy_again(
    kind: str, outage_layer: str, people: dict[str, User], boards: dict[str, Board], card: Card
) -> None:
    layer = get_channel_layer()
    ws = await open_socket(kind, (await browser(people["bob"])).cookie)
    group = f"card-{card.pk}"
    await subscribe(ws, group)
    watcher = await open_socket(kind, (await browser(people["alice"])).cookie)
    await subscribe(watcher, group)
    rejoins, errors = dispatch.stats.rejoins, dispatch.stats.layer_errors

    if outage_layer == "memory":
        layer.crash()  # memberships gone, calls fail
    else:
        client = redis.Redis.from_url(services.REDIS_URL)
        prefix = layer.prefix
        await aeventually(lambda: client.keys(f"{prefix}:rps:worker:*"), what="the marker")
        client.delete(*client.keys(f"{prefix}:*"))  # Redis restarted empty
        client.close()
    # Meanwhile bob lost the board, and nobody told the sockets.
    await database_sync_to_async(silently_remove)(boards["team"], people["bob"])
    if outage_layer == "memory":
        await aeventually(lambda: dispatch.stats.layer_errors > errors, what="the outage")
        layer.recover()
    await aeventually(lambda: dispatch.stats.rejoins > rejoins, what="the rejoin")

    assert (await reply(ws, timeout=30))["data"] == {"group": group, "reason": "forbidden"}
    await save(card, title="after the outage")
    if outage_layer == "redis":
        # The group's numbers went with Redis' data: a new epoch, so the watcher resyncs first.
        assert (await reply(watcher, timeout=30))["type"] == "resync-required"
    await assert_gets_no_more(ws, watcher)
    await ws.disconnect()
    await watcher.disconnect()


# --- Django's permissions ------------------------------------------------------


def order_viewer(via: str) -> tuple[User, Order, Any]:
    """A user who may view orders through ``via`` and an order; returns how to revoke it."""
    order = Order.objects.create(customer=Customer.objects.create(name="c"))
    permission = Permission.objects.get(codename="view_order")
    user = User.objects.create_user(f"viewer-{via}")
    if via == "user":
        user.user_permissions.add(permission)
        return user, order, lambda: user.user_permissions.remove(permission)
    group = Group.objects.create(name="viewers")
    group.permissions.add(permission)
    user.groups.add(group)
    if via == "group":
        return user, order, lambda: group.permissions.remove(permission)
    return user, order, lambda: group.user_set.remove(user)


@pytest.mark.usefixtures("library_default_policy")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("via", ["user", "group", "membership"])
async def test_a_revoked_permission_ends_the_subscription(
    kind: str, any_layer: str, via: str
) -> None:
    user, order, revoke = await database_sync_to_async(order_viewer)(via)
    await dispatch.aflush()
    ws = await open_socket(kind, (await browser(user)).cookie)
    group = f"order-{order.pk}"
    await subscribe(ws, group)
    await database_sync_to_async(revoke)()  # no reauthorize(): Django's m2m_changed says it
    await dispatch.aflush()
    assert (await reply(ws, timeout=30))["data"] == {"group": group, "reason": "forbidden"}
    await ws.disconnect()


# --- the JSON-RPC protocol shares all of it ---------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_json_rpc_sockets_are_rechecked_too(
    kind: str, people: dict[str, User], boards: dict[str, Board]
) -> None:
    from rohrpost_signals.jsonrpc import JsonRpcConsumer, SyncJsonRpcConsumer

    consumer = {"async": JsonRpcConsumer, "sync": SyncJsonRpcConsumer}[kind]
    cookie = (await browser(people["bob"])).cookie
    ws = WebsocketCommunicator(
        AuthMiddlewareStack(consumer.as_asgi()), "/ws/", headers=[(b"cookie", cookie.encode())]
    )
    assert (await ws.connect(timeout=10))[0]
    group = f"board-{boards['team'].pk}"
    call = {"jsonrpc": "2.0", "method": "subscribe", "params": {"group": group}, "id": 1}
    await ws.send_to(text_data=json.dumps(call))
    assert (await reply(ws, timeout=30))["result"]["group"] == group
    await database_sync_to_async(boards["team"].members.remove)(people["bob"])
    await dispatch.aflush()
    assert await reply(ws, timeout=30) == {
        "jsonrpc": "2.0",
        "method": "unsubscribed",
        "params": {"group": group, "reason": "forbidden"},
    }
    await ws.send_to(text_data=json.dumps({**call, "id": 2}))
    refused = await reply(ws, timeout=30)
    assert (refused["id"], refused["error"]["data"]) == (2, {"reason": "forbidden"})
    await ws.disconnect()


def test_only_updates_that_move_an_object_recheck_its_other_groups(card: Card) -> None:
    from rohrpost_signals.core.payload import moved_groups
    from rohrpost_signals.core.watching import watched_models

    watched = watched_models.get(Card)
    assert watched is not None
    assert moved_groups(card, watched, ["title", "status"]) == ()
    assert moved_groups(card, watched, None) == ()
    assert moved_groups(card, watched, ["board", "title"]) == (f"card-{card.pk}",)


@pytest.mark.usefixtures("library_default_policy")
async def test_a_routine_renewal_does_not_recheck(
    monkeypatch: pytest.MonkeyPatch, user: User
) -> None:
    from rohrpost_signals.core.lifetime import _AuthorizedSubscriptions
    from tests.ws import connect

    asked: list[str] = []

    async def ask(self: Any, why: str) -> None:
        asked.append(why)

    monkeypatch.setattr(_AuthorizedSubscriptions, "_ask_for_review", ask)
    ws = await connect("async", user)
    keeper = membership.keeper_for(get_channel_layer())
    await keeper.rejoin_all()  # group_expiry renewal: nothing changed
    assert asked == []
    await keeper.rejoin_all(lost=True)  # Redis lost its data
    assert asked == ["rejoin"]
    await ws.disconnect()

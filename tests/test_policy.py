"""The default policy: Django's permissions, per-object groups, a model's own rule, codes."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Permission, User
from django.test import override_settings

from rohrpost_signals.core import authorization
from rohrpost_signals.core.policy import decide, default_policy
from shop.models import Announcement, Customer, Order, Product

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("library_default_policy")]

SHOP = {
    "shop.Order": {"groups": ["order-{pk}", "customer-{customer_id}-orders"]},
    "shop.Product": {},
}


@pytest.fixture
def order() -> Order:
    return Order.objects.create(customer=Customer.objects.create(name="Ada", email="ada@x.org"))


def fresh(user: User) -> User:
    """The user loaded again: Django caches permissions on the instance."""
    return User.objects.get(pk=user.pk)


def grant(user: User, codename: str) -> User:
    user.user_permissions.add(Permission.objects.get(codename=codename))
    return fresh(user)


def test_the_model_permission_covers_every_object(order: Order) -> None:
    bob = User.objects.create_user("bob")
    group = f"order-{order.pk}"
    assert decide(bob, group, {}) == "forbidden"
    bob = grant(bob, "view_order")
    assert decide(bob, group, {}) is None
    assert default_policy(bob, f"customer-{order.customer_id}-orders", {}) is True
    # Another model's permission is not this one's.
    product = Product.objects.create(name="p")
    assert decide(bob, f"product-{product.pk}", {}) == "forbidden"


@override_settings(
    AUTHENTICATION_BACKENDS=[
        "django.contrib.auth.backends.ModelBackend",
        "tests.backends.OrderCustomerBackend",
    ]
)
def test_an_object_permission_from_an_auth_backend(order: Order) -> None:
    ada = User.objects.create_user("ada", email="ada@x.org")
    bob = User.objects.create_user("bob", email="bob@x.org")
    assert decide(ada, f"order-{order.pk}", {}) is None
    assert decide(bob, f"order-{order.pk}", {}) == "forbidden"
    # A collection group has no object to ask about: the model permission decides.
    assert decide(ada, f"customer-{order.customer_id}-orders", {}) == "forbidden"


def test_a_per_object_group_needs_the_object(order: Order) -> None:
    bob = grant(User.objects.create_user("bob"), "view_order")
    missing = f"order-{order.pk + 1000}"
    assert decide(bob, missing, {}) == "forbidden"
    order_pk = order.pk
    order.delete()
    assert decide(bob, f"order-{order_pk}", {}) == "forbidden"


def test_superusers_pass(order: Order) -> None:
    root = User.objects.create_superuser("root")
    assert decide(root, f"order-{order.pk}", {}) is None
    assert decide(root, "product-12345", {}) is None  # no object lookup either
    # ... but a name no model produces is still refused, and so is an inactive one.
    assert decide(root, "no-such-group", {}) == "unknown-group"
    root.is_active = False
    assert decide(root, f"order-{order.pk}", {}) == "unauthenticated"


def test_anonymous_and_inactive_users_are_unauthenticated(order: Order) -> None:
    bob = grant(User.objects.create_user("bob"), "view_order")
    bob.is_active = False
    for user in (None, AnonymousUser(), bob):
        assert decide(user, f"order-{order.pk}", {}) == "unauthenticated"


def test_static_and_template_groups(order: Order) -> None:
    bob = grant(User.objects.create_user("bob"), "view_announcement")
    Announcement.objects.create(text="hi")
    assert decide(bob, "announcements", {}) is None  # a collection: the model permission
    assert decide(bob, "articles-news", {}) == "unknown-group"  # get_group_name(): unknowable


def test_a_models_own_policy(settings: Any, order: Order) -> None:
    calls = []

    def only_their_customer(user: Any, obj: Any, group: str, scope: dict[str, Any]) -> bool:
        calls.append((obj, group))
        return obj is not None and obj.customer.email == user.email

    settings.ROHRPOST = {
        **settings.ROHRPOST,
        "MODELS": {**SHOP, "shop.Order": {**SHOP["shop.Order"], "policy": only_their_customer}},
    }
    ada = User.objects.create_user("ada", email="ada@x.org")
    bob = grant(User.objects.create_user("bob", email="bob@x.org"), "view_order")
    assert decide(ada, f"order-{order.pk}", {}) is None  # no permission needed
    assert decide(bob, f"order-{order.pk}", {}) == "forbidden"  # the permission is not asked
    assert decide(ada, f"customer-{order.customer_id}-orders", {}) == "forbidden"
    assert calls[0] == (order, f"order-{order.pk}")
    assert calls[-1] == (None, f"customer-{order.customer_id}-orders")
    # A missing object is refused before the model's policy is asked.
    assert decide(ada, f"order-{order.pk + 1000}", {}) == "forbidden"
    assert len(calls) == 3


def test_a_model_policy_by_dotted_path(settings: Any, order: Order) -> None:
    settings.ROHRPOST = {
        **settings.ROHRPOST,
        "MODELS": {**SHOP, "shop.Order": {"policy": "tests.test_policy.nobody"}},
    }
    root_like = grant(User.objects.create_user("bob"), "view_order")
    assert decide(root_like, f"order-{order.pk}", {}) == "forbidden"


def nobody(user: Any, obj: Any, group: str, scope: dict[str, Any]) -> bool:
    return False


def test_the_librarys_own_groups_are_never_granted() -> None:
    root = User.objects.create_superuser("root")
    for group in (authorization.ALL_GROUP, authorization.user_group(root)):
        assert authorization.check(root, group, {}) == "forbidden"


def test_a_custom_policys_false_gets_the_likeliest_code(settings: Any, order: Order) -> None:
    settings.ROHRPOST = {**settings.ROHRPOST, "SUBSCRIBE_POLICY": "tests.test_policy.refuse"}
    bob = User.objects.create_user("bob")
    assert authorization.check(AnonymousUser(), f"order-{order.pk}", {}) == "unauthenticated"
    assert authorization.check(bob, "no-such-group", {}) == "unknown-group"
    assert authorization.check(bob, f"order-{order.pk}", {}) == "forbidden"


def refuse(user: Any, group: str, scope: dict[str, Any]) -> bool:
    return False


def test_user_groups_are_valid_channels_group_names() -> None:
    from rohrpost_signals.core.groups import is_valid_group_name

    for pk in (5, "0b0f8c2e-6c55-4a8e-9d7b-1f1f1f1f1f1f", "weird key/with spaces"):
        assert is_valid_group_name(authorization.user_group(pk)), pk


def test_refusals_are_logged_with_a_limit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = [100.0]
    monkeypatch.setattr(authorization.time, "monotonic", lambda: now[0])
    log = authorization.RefusalLog(burst=3, window=10)
    bob = User.objects.create_user("bob")
    with caplog.at_level(logging.INFO, "rohrpost_signals.authorization"):
        for n in range(5):
            log(bob, f"order-{n}", "forbidden")
        now[0] += 11
        log(None, "order-9", "unauthenticated")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        f"Refused subscribe: user={bob.pk} group='order-0' reason=forbidden",
        f"Refused subscribe: user={bob.pk} group='order-1' reason=forbidden",
        f"Refused subscribe: user={bob.pk} group='order-2' reason=forbidden",
        "2 more refusals were not logged.",
        "Refused subscribe: user=None group='order-9' reason=unauthenticated",
    ]


def test_a_recheck_loads_the_objects_of_one_model_in_one_query(
    django_assert_max_num_queries: Any,
) -> None:
    from rohrpost_signals.core.targets import preloaded

    customer = Customer.objects.create(name="c")
    orders = [Order.objects.create(customer=customer) for _ in range(5)]
    groups = [f"order-{o.pk}" for o in orders] + [f"order-{orders[-1].pk + 1000}"]
    bob = grant(User.objects.create_user("bob"), "view_order")
    bob.has_perm("shop.view_order")  # load the permission cache first
    with django_assert_max_num_queries(2), preloaded(groups):  # the __in query, the missing one
        codes = [decide(bob, group, {}) for group in groups]
    assert codes == [None] * 5 + ["forbidden"]

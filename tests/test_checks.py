from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from rohrpost_signals import checks


def check_ids(rohrpost: Any, **extra: Any) -> list[str]:
    with override_settings(ROHRPOST=rohrpost, **extra):
        return [message.id for message in checks.check_settings()]


def test_valid_settings_pass() -> None:
    assert check_ids({"MODELS": {"shop.Order": {"fields": ["status"]}}}) == []


def test_checks_are_registered_with_django() -> None:
    with (
        override_settings(ROHRPOST={"MODELS": {"shop.Nope": {}}}),
        pytest.raises(SystemCheckError, match=r"rohrpost_signals\.E004"),
    ):
        call_command("check")
    with override_settings(ROHRPOST={"MODELS": {"shop.Nope": {}}}):
        assert "rohrpost_signals.E004" in [m.id for m in run_checks()]


@pytest.mark.parametrize(
    ("rohrpost", "expected"),
    [
        ([], checks.E001),
        ({"MODLES": {}}, checks.E002),
        ({"MODELS": ["shop.Order"]}, checks.E003),
        ({"MODELS": {"shop.Order": None}}, checks.E003),
        ({"MODELS": {"shop.Nope": {}}}, checks.E004),
        ({"MODELS": {"not-a-label": {}}}, checks.E004),
        ({"MODELS": {"shop.Order": {"feilds": []}}}, checks.E005),
        ({"MODELS": {"shop.Order": {"fields": ["nope"]}}}, checks.E006),
        ({"MODELS": {"shop.Order": {"exclude": ["nope"]}}}, checks.E006),
        ({"MODELS": {"shop.Order": {"fields": "status"}}}, checks.E006),
        ({"MODELS": {"shop.Order": {"fields": ["secret"], "exclude": ["secret"]}}}, checks.E007),
        ({"MODELS": {"shop.Order": {"serializer": "shop.nope.func"}}}, checks.E008),
        ({"MODELS": {"shop.Order": {"serializer": "shop.models.Order.objects"}}}, checks.E008),
        ({"SUBSCRIBE_POLICY": "nope.policy"}, checks.E008),
        ({"MODELS": {"shop.Order": {"policy": "shop.nope.can_view"}}}, checks.E008),
        ({"REAUTHORIZE_INTERVAL": -1}, checks.E040),
        ({"REAUTHORIZE_INTERVAL": "60"}, checks.E040),
        ({"REAUTHORIZE_INTERVAL": float("nan")}, checks.E040),
        ({"SUBSCRIBE_POLICY": 42}, checks.E008),
        ({"MODELS": {"shop.Order": {"groups": ["order-{nope}"]}}}, checks.E009),
        ({"MODELS": {"shop.Order": {"groups": ["order-{"]}}}, checks.E009),
        ({"MODELS": {"shop.Order": {"groups": ["order-{}"]}}}, checks.E009),
        ({"MODELS": {"shop.Order": {"groups": []}}}, checks.E009),
        ({"MODELS": {"shop.Order": {"events": ["created"]}}}, checks.E010),
        ({"MODELS": {"shop.Order": {"events": "create"}}}, checks.E010),
        ({"CHANNEL_LAYER": "nope"}, checks.E011),
        ({"MAX_MESSAGE_BYTES": 0}, checks.E012),
        ({"MAX_SUBSCRIPTIONS": "10"}, checks.E012),
        ({"MAX_PENDING_MESSAGES": True}, checks.E012),
    ],
)
def test_each_bad_value_has_its_check(rohrpost: Any, expected: str) -> None:
    assert expected in check_ids(rohrpost)


def test_a_model_policy_and_a_reauthorize_interval_pass_when_valid() -> None:
    rohrpost = {
        "MODELS": {"shop.Order": {"policy": "tests.test_policy.nobody"}},
        "REAUTHORIZE_INTERVAL": 0,
    }
    assert check_ids(rohrpost) == []
    assert check_ids({"REAUTHORIZE_INTERVAL": 2.5}) == []


def test_group_template_may_name_attnames_properties_and_pk() -> None:
    groups = ["order-{pk}", "customer-{customer_id}-orders", "c-{customer.id}", "s-{status}"]
    assert check_ids({"MODELS": {"shop.Order": {"groups": groups}}}) == []


def test_check_ids_are_unique() -> None:
    ids = [value for name, value in vars(checks).items() if name[:1] in "EW" and name[1:].isdigit()]
    assert len(ids) == len(set(ids)) > 10

"""Who may subscribe to which group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.module_loading import import_string

from .conf import conf
from .watching import registry

Policy = Callable[[Any, str, dict[str, Any]], bool]


def default_policy(user: Any, group: str, scope: dict[str, Any]) -> bool:
    """Authenticated users, and only groups that a watched model can produce.

    Object-level rules ("only the order's customer") need a policy of your
    own; see the authorization docs.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return registry.can_produce(group)


def get_policy() -> Policy:
    value = conf.SUBSCRIBE_POLICY
    policy: Policy = import_string(value) if isinstance(value, str) else value
    return policy

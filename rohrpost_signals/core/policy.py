"""Who may subscribe to which group: the default policy, built on Django's permissions."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_permission_codename
from django.utils.module_loading import import_string

from .. import exceptions as codes
from ..conf import conf
from .targets import Target, targets_of

Policy = Callable[[Any, str, dict[str, Any]], bool]
#: ``ROHRPOST["MODELS"][label]["policy"]``: ``(user, obj or None, group, scope) -> bool``.
ModelPolicy = Callable[[Any, Any, str, dict[str, Any]], bool]


def default_policy(user: Any, group: str, scope: dict[str, Any]) -> bool:
    """The model's ``view`` permission, on the object a per-object group names.

    Anonymous and inactive users and names no watched model produces are
    refused; superusers pass; a group naming one object needs the object.
    ``decide()`` gives the refusal code instead of ``False``.
    """
    return decide(user, group, scope) is None


def decide(user: Any, group: str, scope: dict[str, Any]) -> str | None:
    """None if :func:`default_policy` allows ``group``, else the refusal code."""
    if not is_authenticated(user):
        return codes.UNAUTHENTICATED
    found = targets_of(group)
    if not found:
        return codes.UNKNOWN_GROUP
    if getattr(user, "is_superuser", False):
        return None
    # Every model that sends to the group must agree: each one's messages reach it.
    for target in found:
        if not _model_allows(user, target, group, scope):
            return codes.FORBIDDEN
    return None


def is_authenticated(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", True)
    )


def _model_allows(user: Any, target: Target, group: str, scope: dict[str, Any]) -> bool:
    obj = target.get_object()
    if target.lookup is not None and obj is None:
        return False  # no such object (yet): nothing to follow, nothing to reveal
    policy = model_policy(target.watched.label)
    if policy is not None:
        return bool(policy(user, obj, group, scope))
    opts = target.watched.model._meta
    perm = f"{opts.app_label}.{get_permission_codename('view', opts)}"
    # A model-wide permission covers every object; object permission backends
    # (django-guardian, django-rules) answer for the one object.
    return bool(user.has_perm(perm) or (obj is not None and user.has_perm(perm, obj)))


def model_policy(label: str) -> ModelPolicy | None:
    """The ``policy`` a ``MODELS`` entry names, or None."""
    options = conf.MODELS.get(label)
    value = options.get("policy") if isinstance(options, dict) else None
    if value is None:
        return None
    policy: ModelPolicy = _import(value) if isinstance(value, str) else value
    return policy


@functools.lru_cache(maxsize=64)
def _import(path: str) -> Any:
    return import_string(path)


def get_policy() -> Policy:
    value = conf.SUBSCRIBE_POLICY
    policy: Policy = _import(value) if isinstance(value, str) else value
    return policy

"""Authorization for the whole life of a subscription, for any wire protocol.

A socket asks :func:`refusal` when it subscribes. Afterwards a
``rohrpost.reauthorize`` event (a Channels event, never sent to the browser)
makes it :func:`review` its subscriptions: the user is loaded again from the
session (or token), and the policy asked again for each group. The events
come from:

* :func:`reauthorize`, which projects call after changing who may see what;
* :mod:`rohrpost_signals.core.sessions`: logout, a deleted session, a saved or
  deleted user;
* an update that moves an object (``changes``): the object's other groups;
* the socket itself, every ``REAUTHORIZE_INTERVAL`` and after a layer outage.

They travel through the channel layer to control groups every socket joins
(:func:`user_group`, :data:`ALL_GROUP`), so they reach every worker. A
protocol's consumer applies the outcome: it leaves the refused groups and
tells the client why (rohrpost: an ``unsubscribed`` frame).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import exceptions as codes
from ..conf import conf
from . import dispatch
from .encoding import encode
from .groups import is_valid_group_name
from .policy import decide, default_policy, get_policy, is_authenticated
from .watching import watched_models

logger = logging.getLogger("rohrpost_signals.authorization")

#: The Channels event type that makes sockets re-run the policy.
REAUTHORIZE_EVENT = "rohrpost.reauthorize"
#: Groups whose names start with this are the library's own; clients cannot join them.
RESERVED_PREFIX = "rohrpost-signals."
#: Every socket joins it, so that ``reauthorize()`` reaches all of them.
ALL_GROUP = RESERVED_PREFIX + "all"
#: ``unsubscribed`` reason when the socket's login ended (logout, expiry, password, inactive).
LOGGED_OUT = "logged-out"


def user_group(user_or_pk: Any) -> str:
    """The control group of one user's sockets (a valid Channels group name)."""
    pk = getattr(user_or_pk, "pk", user_or_pk)
    name = f"{RESERVED_PREFIX}user.{pk}"
    if is_valid_group_name(name):
        return name
    # A primary key with characters Channels refuses: a digest of it instead.
    return f"{RESERVED_PREFIX}user.h{hashlib.sha256(str(pk).encode()).hexdigest()[:40]}"


def is_reserved(group: str) -> bool:
    return group.startswith(RESERVED_PREFIX)


# --- the subscribe check --------------------------------------------------------


def check(user: Any, group: str, scope: dict[str, Any]) -> str | None:
    """None if ``SUBSCRIBE_POLICY`` lets ``user`` follow ``group``, else the refusal code."""
    if is_reserved(group):
        return codes.FORBIDDEN
    policy = get_policy()
    if policy is default_policy:
        return decide(user, group, scope)
    return None if ask(policy, user, group, scope) else explain(user, group)


def ask(policy: Callable[..., Any], *args: Any) -> bool:
    """A policy's answer; one that raises is logged and counts as a refusal."""
    try:
        return bool(policy(*args))
    except Exception:
        logger.exception("Subscribe policy %r failed; refusing.", policy)
        return False


def explain(user: Any, group: str) -> str:
    """The code for a policy's plain ``False``: the likeliest reason first."""
    if not is_authenticated(user):
        return codes.UNAUTHENTICATED
    if not watched_models.can_produce(group):
        return codes.UNKNOWN_GROUP
    return codes.FORBIDDEN


# --- logging refusals, rate-limited ----------------------------------------------


class RefusalLog:
    """INFO lines for refusals: at most ``burst`` per ``window`` seconds, then a count."""

    def __init__(self, burst: int = 20, window: float = 10.0) -> None:
        self.burst = burst
        self.window = window
        self._lock = threading.Lock()
        self._window_start = 0.0
        self._logged = 0
        self._suppressed = 0

    def reset(self) -> None:
        """Start a fresh window (tests)."""
        with self._lock:
            self._window_start, self._logged, self._suppressed = 0.0, 0, 0

    def __call__(self, user: Any, group: str, reason: str, what: str = "subscribe") -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.window:
                suppressed, self._suppressed = self._suppressed, 0
                self._window_start, self._logged = now, 0
                if suppressed:
                    logger.info("%d more refusals were not logged.", suppressed)
            if self._logged >= self.burst:
                self._suppressed += 1
                return
            self._logged += 1
        user_id = getattr(user, "pk", None) if is_authenticated(user) else None
        logger.info("Refused %s: user=%s group=%r reason=%s", what, user_id, group, reason)


log_refusal = RefusalLog()


# --- re-checking subscriptions ---------------------------------------------------


@dataclass
class Review:
    """What a socket must do after a re-check."""

    user: Any
    #: Groups to leave, each with the ``unsubscribed`` reason.
    revoked: dict[str, str] = field(default_factory=dict)
    logged_out: bool = False


# --- telling sockets to re-check -------------------------------------------------


def _control(group: str, fields: dict[str, Any], origin: str) -> dispatch.Outgoing:
    return dispatch.Outgoing(
        conf.CHANNEL_LAYER, group, encode(fields), origin, event_type=REAUTHORIZE_EVENT
    )


def reauthorize(user: Any = None, group: str | None = None) -> None:
    """Re-run the policy for matching subscriptions, on every worker.

    ``user`` (a user or its primary key) limits it to that user's sockets,
    ``group`` to subscriptions of that group; with neither, every
    subscription is checked again. Subscriptions now refused end with an
    ``unsubscribed`` message. Returns at once; the check runs in the workers.
    """
    if group is not None and not is_valid_group_name(group):
        raise ValueError(f"{group!r} is not a valid Channels group name.")
    fields = {} if group is None else {"group": group}
    if user is not None:
        target = user_group(user)
    elif group is not None:
        target = group
    else:
        target = ALL_GROUP
    dispatch.submit(_control(target, fields, "reauthorize()"))


def recheck_group_before_update(group: str, origin: str) -> None:
    """Queue a re-check of ``group``'s subscribers ahead of the update that follows it."""
    dispatch.submit(_control(group, {"group": group}, origin))


def end_session(user_pk: Any, fingerprint: str) -> None:
    """The sockets of the session with ``fingerprint`` lost their login."""
    dispatch.submit(_control(user_group(user_pk), {"session": fingerprint}, "logout"))

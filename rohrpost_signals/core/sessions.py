"""Sockets bound to their login: who a socket's user is *now*, and Django's signals.

``scope["user"]`` is fixed when the socket connects. :func:`current_user`
asks again: the session must still exist and still name the user, its auth
hash must still match (a password change ends other sessions), and the
backend must still return the user (``is_active=False`` ends them too). A
token-authenticated socket asks its token lookup again.

The receivers below tell the sockets concerned, through the channel layer,
as soon as Django sees the change: ``user_logged_out``, a deleted session
row (``flush()``, the database and cached_db engines), a saved or deleted
user. Anything else (a session that simply expired, the cache engine) is
noticed by the periodic check, ``REAUTHORIZE_INTERVAL``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
    load_backend,
    user_logged_out,
)
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils.crypto import constant_time_compare, salted_hmac

from . import authorization
from .authorization import LOGGED_OUT, Review, log_refusal
from .policy import is_authenticated
from .targets import preloaded

logger = logging.getLogger("rohrpost_signals.authorization")

#: Key of ``scope`` where token middleware keeps what re-validates the socket.
CREDENTIAL_KEY = "rohrpost_signals.credential"
#: Key of ``scope`` naming the subprotocol to accept (token middleware: the one
#: the client offered beside its token).
ACCEPTED_SUBPROTOCOL_KEY = "rohrpost_signals.subprotocol"


def fingerprint(session_key: str) -> str:
    """A keyed digest of a session key: sent through the layer instead of the key."""
    return salted_hmac("rohrpost_signals.session", session_key).hexdigest()[:32]


def session_key_of(scope: dict[str, Any]) -> str | None:
    session = scope.get("session")
    if session is None:
        return None
    try:
        key = session.session_key
    except Exception:  # an unresolved lazy object
        return None
    return key if isinstance(key, str) and key else None


def current_user(scope: dict[str, Any], ended_session: str | None = None) -> Any:
    """The socket's user as its session or token says now; AnonymousUser if it ended.

    ``ended_session`` is the fingerprint of a session that was just logged
    out: the socket of that session has lost its login, whatever the session
    store says yet (``logout()`` tells us before it flushes the session).
    """
    user = scope.get("user")
    if user is None or not is_authenticated(user):
        return user if user is not None else AnonymousUser()
    key = session_key_of(scope)
    if key is not None and ended_session is not None:
        ended = constant_time_compare(fingerprint(key), ended_session)
        if ended:
            return AnonymousUser()
    credential = scope.get(CREDENTIAL_KEY)
    if credential is not None:
        fresh = credential.current_user()
    elif key is not None:
        # After a password change even this browser's socket ends: Django gave
        # its session a new key (update_session_auth_hash), the old one is gone.
        fresh = _session_user(key)
    else:
        fresh = _reload(user)
    if fresh is None or not is_authenticated(fresh) or fresh.pk != user.pk:
        return AnonymousUser()
    return fresh


def _session_user(session_key: str) -> Any:
    """Like ``django.contrib.auth.get_user``, but never flushes a session.

    A socket must not log the browser out: flushing is the HTTP request's job.
    """
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore(session_key)
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except KeyError:
        return None  # the session is gone, expired or logged out
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not hasattr(user, "get_session_auth_hash"):
        return user
    stored = session.get(HASH_SESSION_KEY)
    if not stored:
        return None
    if constant_time_compare(stored, user.get_session_auth_hash()):
        return user
    fallbacks = getattr(user, "get_session_auth_fallback_hash", None)
    if fallbacks is not None and any(constant_time_compare(stored, h) for h in fallbacks()):
        return user
    return None  # the password changed since this session logged in


def _reload(user: Any) -> Any:
    """No session or token (a test, custom middleware): the user row as it is now."""
    model = type(user)
    if not hasattr(model, "_default_manager"):
        return user
    fresh = model._default_manager.filter(pk=user.pk).first()
    if fresh is None or not getattr(fresh, "is_active", True):
        return None
    return fresh


# --- Django's signals -------------------------------------------------------------


def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is None or not key:
        return
    # Sent before logout() flushes the session: the fingerprint says which socket.
    authorization.end_session(user.pk, fingerprint(key))


def on_user_saved(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every login saves last_login; nothing a socket depends on
    _after_commit(kwargs.get("using"), authorization.reauthorize, instance.pk)


def on_user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    _after_commit(kwargs.get("using"), authorization.reauthorize, instance.pk)


def on_permissions_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """``user.groups``, ``user.user_permissions`` or ``group.permissions`` changed."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    user_model = get_user_model()
    users: list[Any] | None
    if isinstance(instance, user_model):
        users = [instance.pk]
    elif _is_group_permissions(sender):
        groups = pk_set if reverse else [instance.pk]
        if groups is None or not hasattr(user_model, "groups"):
            users = None
        else:
            users = list(
                user_model._default_manager.filter(groups__pk__in=groups).values_list(
                    "pk", flat=True
                )
            )
    else:  # group.user_set or permission.user_set: the pks are users
        users = list(pk_set) if pk_set is not None else None
    using = kwargs.get("using")
    if users is None:  # cleared from the other side: who had it is gone
        _after_commit(using, authorization.reauthorize)
    for pk in users or ():
        _after_commit(using, authorization.reauthorize, pk)


def _is_group_permissions(sender: Any) -> bool:
    from django.contrib.auth.models import Group

    return sender is Group.permissions.through


def on_session_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    try:
        user_pk = instance.get_decoded().get(SESSION_KEY)
    except Exception:  # undecodable session data: nobody to tell
        return
    if user_pk is not None:
        _after_commit(
            kwargs.get("using"),
            authorization.end_session,
            user_pk,
            fingerprint(instance.session_key),
        )


def _after_commit(using: str | None, func: Any, *args: Any) -> None:
    # The sockets re-read the database: they must see the committed change.
    try:
        transaction.on_commit(lambda: func(*args), using=using)
    except Exception:
        logger.exception("Could not tell the sockets to re-check (%s).", func)


def connect_signals() -> None:
    """Connect the receivers (the app's ``ready()``)."""
    user_logged_out.connect(on_logged_out, dispatch_uid="rohrpost_signals.logged_out")
    user_model = get_user_model()
    post_save.connect(on_user_saved, sender=user_model, dispatch_uid="rohrpost_signals.user_saved")
    post_delete.connect(
        on_user_deleted, sender=user_model, dispatch_uid="rohrpost_signals.user_deleted"
    )
    for relation in ("groups", "user_permissions"):
        through = getattr(getattr(user_model, relation, None), "through", None)
        if through is not None:
            m2m_changed.connect(
                on_permissions_changed,
                sender=through,
                dispatch_uid=f"rohrpost_signals.{relation}_changed",
            )
    if "django.contrib.auth" in settings.INSTALLED_APPS:
        from django.contrib.auth.models import Group

        m2m_changed.connect(
            on_permissions_changed,
            sender=Group.permissions.through,
            dispatch_uid="rohrpost_signals.group_permissions_changed",
        )
    if "django.contrib.sessions" in settings.INSTALLED_APPS:
        from django.contrib.sessions.models import Session

        post_delete.connect(
            on_session_deleted, sender=Session, dispatch_uid="rohrpost_signals.session_deleted"
        )


def review(
    scope: dict[str, Any],
    subscriptions: set[str],
    event: dict[str, Any],
    refuse: Callable[[str], str | None],
) -> Review:
    """Re-load the socket's user and re-run the policy (sync; may query the database).

    ``refuse(group)`` is the socket's own check (its ``has_permission``);
    it sees ``scope["user"]`` already replaced by the fresh user.
    """
    before = scope.get("user")
    user = current_user(scope, ended_session=event.get("session"))
    scope["user"] = user
    result = Review(user=user)
    if is_authenticated(before) and not is_authenticated(user):
        result.logged_out = True
        result.revoked = dict.fromkeys(subscriptions, LOGGED_OUT)
        for group in subscriptions:
            log_refusal(before, group, LOGGED_OUT, "subscription")
        return result
    only = event.get("group")
    groups = [only] if only is not None else sorted(subscriptions)
    with preloaded(groups):  # one query per model instead of one per group
        for group in groups:
            if group not in subscriptions:
                continue
            code = refuse(group)
            if code is not None:
                result.revoked[group] = code
                log_refusal(user, group, code, "subscription")
    return result

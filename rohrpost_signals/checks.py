"""System checks for the ``ROHRPOST`` setting: bad values fail at start-up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks import Warning as CheckWarning
from django.db import models
from django.utils.module_loading import import_string

from . import _compat
from .conf import DEFAULTS, EVENTS, MODEL_OPTIONS, SETTING_NAME
from .core.framelimit import recommended_server_limit, runs_checkless_server, server_frame_limit
from .core.groups import template_fields

logger = logging.getLogger("rohrpost_signals")

E001 = "rohrpost_signals.E001"  # ROHRPOST is not a dict
E002 = "rohrpost_signals.E002"  # unknown top-level key
E003 = "rohrpost_signals.E003"  # MODELS not a dict of dicts
E004 = "rohrpost_signals.E004"  # unknown model label
E005 = "rohrpost_signals.E005"  # unknown model option
E006 = "rohrpost_signals.E006"  # unknown field in fields/exclude
E007 = "rohrpost_signals.E007"  # a field both listed in fields and excluded
E008 = "rohrpost_signals.E008"  # bad dotted path (serializer, policy)
E009 = "rohrpost_signals.E009"  # bad group template
E010 = "rohrpost_signals.E010"  # unknown event
E011 = "rohrpost_signals.E011"  # CHANNEL_LAYER alias not in CHANNEL_LAYERS
E012 = "rohrpost_signals.E012"  # a limit that is not a positive integer
W001 = "rohrpost_signals.W001"  # channels-redis capacity too small: bursts are dropped
W002 = "rohrpost_signals.W002"  # channels-redis group_expiry too short: memberships lapse
E050 = "rohrpost_signals.E050"  # a connection budget that is not a positive number
E051 = "rohrpost_signals.E051"  # MAX_OUTGOING_BYTES too small for the replies a socket may get
W050 = "rohrpost_signals.W050"  # the ASGI server accepts frames far larger than MAX_MESSAGE_BYTES
E090 = "rohrpost_signals.E090"  # a dependency's private API changed shape (see _compat)
E040 = "rohrpost_signals.E040"  # REAUTHORIZE_INTERVAL is not a number >= 0

_LIMITS = ("MAX_MESSAGE_BYTES", "MAX_SUBSCRIPTIONS", "MAX_PENDING_MESSAGES", "HISTORY_MAX_AGE")
_BUDGETS = (
    "HISTORY_MAX_BYTES",
    "MAX_REQUESTS_PER_SECOND",
    "MAX_REQUEST_BURST",
    "MAX_REPLAY_BYTES_PER_MINUTE",
    "MAX_OUTGOING_BYTES",
    "SUBSCRIBE_TIMEOUT",
    "LAYER_OUTAGE_TIMEOUT",
)
# Budgets that may be fractions; the others count whole requests or bytes.
_FRACTIONAL = ("MAX_REQUESTS_PER_SECOND", "SUBSCRIBE_TIMEOUT", "LAYER_OUTAGE_TIMEOUT")


def _error(msg: str, id: str, hint: str | None = None) -> Error:
    return Error(msg, hint=hint, id=id)


@register(Tags.compatibility)
def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    raw = getattr(settings, SETTING_NAME, {})
    if not isinstance(raw, dict):
        return [_error(f"settings.{SETTING_NAME} must be a dict, not {type(raw).__name__}.", E001)]
    errors: list[CheckMessage] = []
    for key in raw:
        if key not in DEFAULTS:
            errors.append(
                _error(
                    f"Unknown key {key!r} in settings.{SETTING_NAME}.",
                    E002,
                    hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                )
            )
    errors.extend(_check_models(raw.get("MODELS", {})))
    policy = raw.get("SUBSCRIBE_POLICY")
    if policy is not None:
        errors.extend(_check_callable(policy, "ROHRPOST['SUBSCRIBE_POLICY']"))
    errors.extend(_check_layer(raw.get("CHANNEL_LAYER", DEFAULTS["CHANNEL_LAYER"])))
    history = raw.get("HISTORY_MAX_MESSAGES", DEFAULTS["HISTORY_MAX_MESSAGES"])
    if isinstance(history, bool) or not isinstance(history, int) or history < 0:
        errors.append(
            _error(
                f"ROHRPOST['HISTORY_MAX_MESSAGES'] must be an integer >= 0 (0 turns "
                f"sequencing off), not {history!r}.",
                E012,
            )
        )
    interval = raw.get("REAUTHORIZE_INTERVAL", DEFAULTS["REAUTHORIZE_INTERVAL"])
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval >= 0:
        errors.append(
            _error(
                f"ROHRPOST['REAUTHORIZE_INTERVAL'] must be a number of seconds >= 0 (0 turns "
                f"the periodic check off), not {interval!r}.",
                E040,
            )
        )
    for key in _LIMITS:
        value = raw.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(
                _error(f"ROHRPOST[{key!r}] must be a positive integer, not {value!r}.", E012)
            )
    errors.extend(_check_budgets(raw))
    return errors


def _check_budgets(raw: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key in _BUDGETS:
        value = raw.get(key, DEFAULTS[key])
        kinds = (int, float) if key in _FRACTIONAL else (int,)
        if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
            kind = "number" if key in _FRACTIONAL else "integer"
            errors.append(
                _error(f"ROHRPOST[{key!r}] must be a positive {kind}, not {value!r}.", E050)
            )
    outgoing = raw.get("MAX_OUTGOING_BYTES", DEFAULTS["MAX_OUTGOING_BYTES"])
    incoming = raw.get("MAX_MESSAGE_BYTES", DEFAULTS["MAX_MESSAGE_BYTES"])
    numbers = all(type(v) is int for v in (outgoing, incoming))  # not bool
    if numbers and 0 < outgoing < 4 * incoming:
        errors.append(
            _error(
                f"ROHRPOST['MAX_OUTGOING_BYTES'] ({outgoing}) must be at least four times "
                f"ROHRPOST['MAX_MESSAGE_BYTES'] ({incoming}): a reply may echo a whole "
                "request, and a socket over the budget is closed.",
                E051,
            )
        )
    return errors


@register(Tags.security)
def check_server_frame_limit(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn when the ASGI server buffers frames far larger than the library accepts."""
    found = server_frame_limit()
    if found is None:
        return []
    server, limit = found
    recommended = recommended_server_limit()
    if limit and limit <= recommended:
        return []
    shown = "no limit" if not limit else f"a limit of {limit} bytes"
    return [
        CheckWarning(
            f"{server} accepts WebSocket messages up to {shown}; rohrpost_signals refuses "
            f"frames over ROHRPOST['MAX_MESSAGE_BYTES'], but only after the server has "
            "buffered all of them.",
            hint=f"Limit the server to {recommended} bytes (see the deployment docs).",
            id=W050,
        )
    ]


def _check_callable(value: Any, where: str) -> list[CheckMessage]:
    if callable(value):
        return []
    if not isinstance(value, str):
        return [_error(f"{where} must be a dotted path to a callable, not {value!r}.", E008)]
    try:
        target = import_string(value)
    except ImportError as exc:
        return [_error(f"{where} {value!r} cannot be imported: {exc}", E008)]
    if not callable(target):
        return [_error(f"{where} {value!r} is not callable.", E008)]
    return []


def _check_layer(alias: Any) -> list[CheckMessage]:
    layers = getattr(settings, "CHANNEL_LAYERS", {}) or {}
    if not isinstance(alias, str) or alias not in layers:
        return [
            _error(
                f"ROHRPOST['CHANNEL_LAYER'] is {alias!r}, which is not an alias in "
                "settings.CHANNEL_LAYERS.",
                E011,
                hint="Add the layer to CHANNEL_LAYERS or name an existing alias.",
            )
        ]
    return []


def _check_models(value: Any) -> list[CheckMessage]:
    if not isinstance(value, dict):
        return [_error("ROHRPOST['MODELS'] must be a dict of 'app_label.Model' -> options.", E003)]
    errors: list[CheckMessage] = []
    for label, options in value.items():
        where = f"ROHRPOST['MODELS'][{label!r}]"
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError, TypeError):
            errors.append(
                _error(
                    f"{where}: no installed model is called {label!r}.",
                    E004,
                    hint="Use 'app_label.ModelName' of a model in INSTALLED_APPS.",
                )
            )
            continue
        if not isinstance(options, dict):
            errors.append(_error(f"{where} must be a dict of options ({{}} for defaults).", E003))
            continue
        errors.extend(_check_model_options(model, options, where))
    return errors


def _check_model_options(
    model: type[models.Model], options: dict[str, Any], where: str
) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for key in options:
        if key not in MODEL_OPTIONS:
            errors.append(
                _error(
                    f"{where}: unknown option {key!r}.",
                    E005,
                    hint=f"Known options: {', '.join(sorted(MODEL_OPTIONS))}.",
                )
            )
    concrete = {f.name for f in model._meta.concrete_fields}
    concrete |= {f.attname for f in model._meta.concrete_fields}
    lists: dict[str, list[str]] = {}
    for key in ("fields", "exclude"):
        if key not in options:
            continue
        names = options[key]
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            errors.append(_error(f"{where}[{key!r}] must be a list of field names.", E006))
            continue
        lists[key] = list(names)
        for name in names:
            if name not in concrete:
                errors.append(
                    _error(
                        f"{where}[{key!r}]: {model._meta.label} has no concrete field {name!r}.",
                        E006,
                    )
                )
    for name in set(lists.get("fields", ())) & set(lists.get("exclude", ())):
        errors.append(
            _error(f"{where}: field {name!r} is both in 'fields' and in 'exclude'.", E007)
        )
    for key in ("serializer", "policy"):
        if key in options:
            errors.extend(_check_callable(options[key], f"{where}[{key!r}]"))
    if "groups" in options:
        errors.extend(_check_groups(model, options["groups"], where))
    if "events" in options:
        events = options["events"]
        if not isinstance(events, (list, tuple)):
            errors.append(_error(f"{where}['events'] must be a list.", E010))
        else:
            for event in events:
                if event not in EVENTS:
                    errors.append(
                        _error(
                            f"{where}['events']: unknown event {event!r}.",
                            E010,
                            hint=f"Events are {', '.join(EVENTS)}.",
                        )
                    )
    return errors


def _check_groups(model: type[models.Model], templates: Any, where: str) -> list[CheckMessage]:
    if isinstance(templates, str):
        templates = [templates]
    if not isinstance(templates, (list, tuple)) or not templates:
        return [_error(f"{where}['groups'] must be a non-empty list of templates.", E009)]
    errors: list[CheckMessage] = []
    for template in templates:
        if not isinstance(template, str):
            errors.append(_error(f"{where}['groups']: {template!r} is not a string.", E009))
            continue
        try:
            roots = template_fields(template)
        except ValueError as exc:
            errors.append(
                _error(f"{where}['groups']: template {template!r} is malformed: {exc}.", E009)
            )
            continue
        for root in roots:
            if root != "pk" and not hasattr(model, root):
                errors.append(
                    _error(
                        f"{where}['groups']: template {template!r} names {root!r}, "
                        f"which {model._meta.label} does not have.",
                        E009,
                    )
                )
    return errors


# channels-redis defaults, and what the deployment docs recommend instead.
_REDIS_CORE = "channels_redis.core.RedisChannelLayer"
_REDIS_CORE_DEFAULTS = {"capacity": 100, "group_expiry": 86400}
MIN_CAPACITY = 1000
MIN_GROUP_EXPIRY = 60


@register(Tags.compatibility)
def check_layer_settings(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Warn about a RedisChannelLayer configured so that it drops messages under load."""
    raw = getattr(settings, SETTING_NAME, {})
    alias = raw.get("CHANNEL_LAYER", DEFAULTS["CHANNEL_LAYER"]) if isinstance(raw, dict) else None
    layers = getattr(settings, "CHANNEL_LAYERS", {}) or {}
    layer = layers.get(alias) if isinstance(alias, str) else None
    if not isinstance(layer, dict) or layer.get("BACKEND") != _REDIS_CORE:
        return []
    config = {**_REDIS_CORE_DEFAULTS, **(layer.get("CONFIG") or {})}
    where = f"CHANNEL_LAYERS[{alias!r}]['CONFIG']"
    warnings: list[CheckMessage] = []
    capacity = config["capacity"]
    if isinstance(capacity, int) and capacity < MIN_CAPACITY:
        warnings.append(
            CheckWarning(
                f"{where}: capacity {capacity} is per worker process, shared by all of its "
                "sockets; a burst of more messages than that is dropped.",
                hint=f"Set 'capacity' to {MIN_CAPACITY * 10} or more (see the deployment docs).",
                id=W001,
            )
        )
    group_expiry = config["group_expiry"]
    if isinstance(group_expiry, (int, float)) and group_expiry < MIN_GROUP_EXPIRY:
        warnings.append(
            CheckWarning(
                f"{where}: group_expiry {group_expiry} s drops group memberships faster than "
                "worker processes renew them reliably.",
                hint=f"Use a group_expiry of at least {MIN_GROUP_EXPIRY} seconds; "
                "rohrpost_signals renews the memberships of open sockets.",
                id=W002,
            )
        )
    return warnings


@register(Tags.compatibility)
def check_dependencies(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Fail at start-up, not at run time, when a dependency's private API changed."""
    return [
        _error(
            _compat.describe(distribution, problem),
            E090,
            hint="rohrpost_signals relies on this (rohrpost_signals/_compat.py): install the "
            "previous version of that package, or a rohrpost_signals release that supports it.",
        )
        for distribution, problem in _compat.shape_problems()
    ]


def warn_if_server_limit_too_large() -> None:
    """Log W050 where no system checks run: under the uvicorn and daphne commands."""
    if not runs_checkless_server():
        return
    for message in check_server_frame_limit():
        logger.warning("%s (%s) %s", message.msg, message.id, message.hint)

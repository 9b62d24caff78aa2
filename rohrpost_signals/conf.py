"""Lazy access to the ``ROHRPOST`` setting.

Values are read from ``django.conf.settings`` on every access, so
``override_settings`` works in tests. Validation lives in :mod:`checks`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

SETTING_NAME = "ROHRPOST"

DEFAULTS: dict[str, Any] = {
    "MODELS": {},
    "SUBSCRIBE_POLICY": "rohrpost_signals.policy.default_policy",
    "REAUTHORIZE_INTERVAL": 300,
    "CHANNEL_LAYER": "default",
    "MAX_MESSAGE_BYTES": 65536,
    "MAX_SUBSCRIPTIONS": 100,
    "MAX_PENDING_MESSAGES": 10000,
    "HISTORY_MAX_MESSAGES": 1000,
    "HISTORY_MAX_AGE": 600,
    "HISTORY_MAX_BYTES": 64 * 1024 * 1024,
    "MAX_REQUESTS_PER_SECOND": 20,
    "MAX_REQUEST_BURST": 200,
    "MAX_REPLAY_BYTES_PER_MINUTE": 4 * 1024 * 1024,
    "MAX_OUTGOING_BYTES": 8 * 1024 * 1024,
    "SUBSCRIBE_TIMEOUT": 5,
    "LAYER_OUTAGE_TIMEOUT": 600,
}

#: Option keys accepted for each entry of ``ROHRPOST["MODELS"]``.
MODEL_OPTIONS = frozenset({"fields", "exclude", "groups", "events", "serializer", "policy"})

#: Event names a model may send.
EVENTS = ("create", "update", "delete")


class RohrpostSettings:
    """Read-through view of ``settings.ROHRPOST`` with defaults."""

    @property
    def raw(self) -> dict[str, Any]:
        value = getattr(django_settings, SETTING_NAME, {})
        return value if isinstance(value, dict) else {}

    def get(self, key: str) -> Any:
        return self.raw.get(key, DEFAULTS[key])

    @property
    def MODELS(self) -> dict[str, dict[str, Any]]:
        value = self.get("MODELS")
        return value if isinstance(value, dict) else {}

    @property
    def SUBSCRIBE_POLICY(self) -> Any:
        return self.get("SUBSCRIBE_POLICY")

    @property
    def REAUTHORIZE_INTERVAL(self) -> float:
        """Seconds between two policy checks of a socket's subscriptions; 0: only on events."""
        return float(self.get("REAUTHORIZE_INTERVAL"))

    @property
    def CHANNEL_LAYER(self) -> str:
        return str(self.get("CHANNEL_LAYER"))

    @property
    def MAX_MESSAGE_BYTES(self) -> int:
        return int(self.get("MAX_MESSAGE_BYTES"))

    @property
    def MAX_SUBSCRIPTIONS(self) -> int:
        return int(self.get("MAX_SUBSCRIPTIONS"))

    @property
    def MAX_PENDING_MESSAGES(self) -> int:
        return int(self.get("MAX_PENDING_MESSAGES"))

    @property
    def HISTORY_MAX_MESSAGES(self) -> int:
        """Messages kept per group for resuming; 0 turns sequencing off."""
        return int(self.get("HISTORY_MAX_MESSAGES"))

    @property
    def HISTORY_MAX_AGE(self) -> int:
        """Seconds a message stays in a group's history."""
        return int(self.get("HISTORY_MAX_AGE"))

    @property
    def HISTORY_MAX_BYTES(self) -> int:
        """Bytes the in-memory history keeps over all groups; the oldest group goes first."""
        return int(self.get("HISTORY_MAX_BYTES"))

    @property
    def MAX_REQUESTS_PER_SECOND(self) -> float:
        """Requests a socket may send per second, on average."""
        return float(self.get("MAX_REQUESTS_PER_SECOND"))

    @property
    def MAX_REQUEST_BURST(self) -> int:
        """Requests a socket may send at once before the rate applies."""
        return int(self.get("MAX_REQUEST_BURST"))

    @property
    def MAX_REPLAY_BYTES_PER_MINUTE(self) -> int:
        """Bytes of missed messages replayed to one socket per minute."""
        return int(self.get("MAX_REPLAY_BYTES_PER_MINUTE"))

    @property
    def MAX_OUTGOING_BYTES(self) -> int:
        """Bytes a socket may be behind in reading before it is closed."""
        return int(self.get("MAX_OUTGOING_BYTES"))

    @property
    def SUBSCRIBE_TIMEOUT(self) -> float:
        """Seconds a subscribe waits for the channel layer and the history."""
        return float(self.get("SUBSCRIBE_TIMEOUT"))

    @property
    def LAYER_OUTAGE_TIMEOUT(self) -> float:
        """Seconds sockets wait for a failing channel layer before they are closed."""
        return float(self.get("LAYER_OUTAGE_TIMEOUT"))


conf = RohrpostSettings()

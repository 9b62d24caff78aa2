from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.signals import setting_changed


class RohrpostSignalsConfig(AppConfig):
    name = "rohrpost_signals"
    verbose_name = "rohrpost signals"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .checks import warn_if_server_limit_too_large
        from .compatchecks import register as register_compat_checks
        from .core.layerlog import install as count_layer_drops
        from .core.receivers import reconnect
        from .core.sessions import connect_signals as end_sockets_on_logout
        from .core.watching import watched_models
        from .protocols.rohrpost import handlers  # noqa: F401 - registers the built-in handlers

        watched_models.on_rebuild(reconnect)
        watched_models.rebuild()
        register_compat_checks()
        count_layer_drops()
        warn_if_server_limit_too_large()
        end_sockets_on_logout()
        setting_changed.connect(_rebuild_on_change, dispatch_uid="rohrpost_signals.settings")


def _rebuild_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROHRPOST":
        from .core.watching import watched_models

        watched_models.rebuild()

"""Push Django model changes to browsers over Django Channels (rohrpost protocol)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["reauthorize"]

if TYPE_CHECKING:
    from .core.authorization import reauthorize


def __getattr__(name: str) -> Any:
    # Imported on first use: importing the package must not import Django models.
    if name == "reauthorize":
        from .core.authorization import reauthorize

        return reauthorize
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

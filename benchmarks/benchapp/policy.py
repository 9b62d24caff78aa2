"""Subscribe policy for the benchmark server: every client may join every group."""

from __future__ import annotations

from typing import Any


def allow_all(user: Any, group: str, scope: dict[str, Any]) -> bool:
    return True

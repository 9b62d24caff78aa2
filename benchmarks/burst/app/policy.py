from typing import Any


def allow_all(user: Any, group: str, scope: Any) -> bool:
    """Burst clients are anonymous; the policy is not what is measured."""
    return True

"""Who may subscribe to which group: the default policy, built on Django's permissions.

The code lives in ``rohrpost_signals.core.policy``.
"""

from .core.policy import default_policy

__all__ = ["default_policy"]

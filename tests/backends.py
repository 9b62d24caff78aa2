"""An object-permission backend, as django-guardian or django-rules would add."""

from __future__ import annotations

from typing import Any


class OrderCustomerBackend:
    """``shop.view_order`` on an order whose customer has the user's e-mail address."""

    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if perm != "shop.view_order" or obj is None or not user_obj.is_active:
            return False
        return bool(obj.customer.email) and obj.customer.email == user_obj.email

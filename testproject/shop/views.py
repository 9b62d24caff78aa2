"""A web write path for the scale-out integration tests."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from .models import Order


class _RollBack(Exception):
    pass


@require_POST
def set_order_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Save ``status`` on order ``pk``; with ``fail=1`` the transaction rolls back after it."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "log in first"}, status=403)
    try:
        with transaction.atomic():
            order = get_object_or_404(Order.objects.select_for_update(), pk=pk)
            order.status = request.POST["status"]
            order.save(update_fields=["status"])
            if request.POST.get("fail") == "1":
                # As if a later step of the same request failed: the save is undone.
                raise _RollBack
    except _RollBack:
        return JsonResponse({"saved": False, "rolled_back": True}, status=409)
    return JsonResponse({"saved": True, "status": order.status})

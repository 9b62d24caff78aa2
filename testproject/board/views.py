"""The demo's pages and the small JSON/form endpoints its script uses.

Writes (add, move, delete) answer without the new state on purpose: the page
learns about its own changes the same way it learns about everyone else's,
from the ``subscription-update`` that the save sends.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from rohrpost_signals.conf import conf

from .models import Board, Card
from .realtime import card_data


def _boards(request: HttpRequest) -> QuerySet[Board]:
    cards = Card.objects.select_related("assignee")
    return Board.objects.filter(members=request.user).prefetch_related(Prefetch("cards", cards))


def _cards(request: HttpRequest) -> QuerySet[Card]:
    return Card.objects.filter(board__members=request.user).select_related("assignee")


def board_state(board: Board) -> dict[str, Any]:
    return {
        "id": board.pk,
        "name": board.name,
        "cards": [card_data(card, None, "create") for card in board.cards.all()],
    }


def _layer_spans_processes() -> bool:
    """Whether a save in another process (``manage.py shell``) reaches this page."""
    backend = settings.CHANNEL_LAYERS.get(conf.CHANNEL_LAYER, {}).get("BACKEND", "")
    return "InMemoryChannelLayer" not in backend


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    state = {
        "boards": [board_state(board) for board in _boards(request)],
        "statuses": Card.Status.choices,
    }
    context = {"state": state, "shell_reaches_page": _layer_spans_processes()}
    return render(request, "board/index.html", context)


@login_required
@require_GET
def board_json(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(board_state(get_object_or_404(_boards(request), pk=pk)))


@login_required
@require_GET
def card_detail(request: HttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(_cards(request).select_related("board"), pk=pk)
    state = {"card": card_data(card, None, "create"), "statuses": Card.Status.choices}
    return render(request, "board/card.html", {"card": card, "state": state})


@login_required
@require_GET
def card_json(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(card_data(get_object_or_404(_cards(request), pk=pk), None, "create"))


@login_required
@require_POST
def card_create(request: HttpRequest, pk: int) -> HttpResponse:
    board = get_object_or_404(Board.objects.filter(members=request.user), pk=pk)
    title = request.POST.get("title", "").strip()
    if not title or len(title) > 200:
        return HttpResponseBadRequest("A card needs a title of at most 200 characters.")
    card = Card.objects.create(board=board, title=title, assignee=request.user)
    return JsonResponse({"id": card.pk}, status=201)


@login_required
@require_POST
def card_move(request: HttpRequest, pk: int) -> HttpResponse:
    card = get_object_or_404(_cards(request), pk=pk)
    status = request.POST.get("status", "")
    if status not in Card.Status.values:
        return HttpResponseBadRequest(f"Unknown status {status!r}.")
    card.status = status
    card.save(update_fields=["status", "updated_at"])
    return HttpResponse(status=204)


@login_required
@require_POST
def card_delete(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(_cards(request), pk=pk).delete()
    return HttpResponse(status=204)

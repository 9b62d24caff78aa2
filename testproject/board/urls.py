from django.urls import path

from . import views

app_name = "board"

urlpatterns = [
    path("", views.index, name="index"),
    path("boards/<int:pk>.json", views.board_json, name="board-json"),
    path("boards/<int:pk>/cards/", views.card_create, name="card-create"),
    path("cards/<int:pk>/", views.card_detail, name="card"),
    path("cards/<int:pk>.json", views.card_json, name="card-json"),
    path("cards/<int:pk>/move/", views.card_move, name="card-move"),
    path("cards/<int:pk>/delete/", views.card_delete, name="card-delete"),
]

from django.contrib import admin

from .models import Board, Card


class CardInline(admin.TabularInline):
    model = Card
    fields = ["title", "status", "assignee"]
    extra = 0


@admin.register(Board)
class BoardAdmin(admin.ModelAdmin):
    list_display = ["name"]
    filter_horizontal = ["members"]
    inlines = [CardInline]


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = ["title", "board", "status", "assignee", "updated_at"]
    list_filter = ["board", "status"]
    list_editable = ["status"]
    search_fields = ["title"]
    fields = ["board", "title", "status", "assignee"]

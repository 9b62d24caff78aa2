from django.apps import AppConfig


class BoardConfig(AppConfig):
    name = "board"
    verbose_name = "Task board (demo)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed

        from .models import Board
        from .realtime import members_changed

        m2m_changed.connect(
            members_changed, sender=Board.members.through, dispatch_uid="board.members_changed"
        )

from django.apps import AppConfig


class BurstAppConfig(AppConfig):
    name = "benchmarks.burst.app"
    label = "burstapp"
    default_auto_field = "django.db.models.BigAutoField"

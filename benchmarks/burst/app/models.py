from django.db import models


class Item(models.Model):
    """Watched as ``item-{pk}`` and ``items`` (settings.ROHRPOST)."""

    name = models.CharField(max_length=50, default="")
    counter = models.IntegerField(default=0)

    class Meta:
        app_label = "burstapp"

    def __str__(self) -> str:
        return self.name

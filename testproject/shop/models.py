"""Models the test suite watches, one per rule it checks."""

import uuid

from django.db import models
from model_utils import FieldTracker

from rohrpost_signals.mixins import NotifyOnChange, NotifyOnCreate, NotifyOnDelete


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    status = models.CharField(max_length=20, default="new")
    total = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    note = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100, blank=True)
    placed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Order {self.pk}"


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    code = models.UUIDField(default=uuid.uuid4)

    def __str__(self) -> str:
        return self.name


class Article(NotifyOnChange, models.Model):
    """Opted in by mixin, with every model hook."""

    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    channel = models.CharField(max_length=50, default="news")

    def __str__(self) -> str:
        return self.title

    def get_group_name(self, message_type):
        return f"articles-{self.channel}"

    def get_push_notification_data(self, updated_fields, message_type):
        return {"id": self.pk, "title": self.title, "hook": message_type}


class Announcement(NotifyOnCreate, NotifyOnDelete, models.Model):
    """Opted in by mixins for create and delete only, with a static group."""

    group_name = "announcements"
    text = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.text


class Ticket(models.Model):
    """Brings its own FieldTracker, which the app reuses."""

    subject = models.CharField(max_length=100)
    state = models.CharField(max_length=20, default="open")
    tracker = FieldTracker()

    def __str__(self) -> str:
        return self.subject

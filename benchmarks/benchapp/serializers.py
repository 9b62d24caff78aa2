"""A Django REST framework serializer giving the same object as the ``fields`` list."""

from __future__ import annotations

from rest_framework import serializers

from .models import SignalsItem


class SignalsItemSerializer(serializers.ModelSerializer):  # type: ignore[misc]
    class Meta:
        model = SignalsItem
        fields = ["id", "name", "counter"]

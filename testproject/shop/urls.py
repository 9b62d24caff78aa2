from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("orders/<int:pk>/status/", views.set_order_status, name="order-status"),
]

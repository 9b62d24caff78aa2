from django.urls import path

from .app import views

urlpatterns = [
    path("burst/setup/", views.setup_items),
    path("burst/run/", views.run_burst),
]

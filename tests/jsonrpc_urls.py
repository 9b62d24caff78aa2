"""URLs of the JSON-RPC HTTP tests: the view with Django's CSRF rules, and exempted."""

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from rohrpost_signals.jsonrpc import JsonRpcView

urlpatterns = [
    path("rpc/", JsonRpcView.as_view()),
    path("rpc/open/", csrf_exempt(JsonRpcView.as_view())),
]

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from rohrpost_signals.jsonrpc import JsonRpcView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("board.urls")),
    path("shop/", include("shop.urls")),
    # JSON-RPC over HTTP, with the session user and Django's CSRF check.
    path("rpc/", JsonRpcView.as_view()),
    # Lets a bare ASGI server (daphne or uvicorn, as the browser tests run it)
    # serve the demo's static files; empty unless DEBUG is on.
    *staticfiles_urlpatterns(),
]

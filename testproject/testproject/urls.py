from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("board.urls")),
    path("shop/", include("shop.urls")),
    # Lets a bare ASGI server (daphne or uvicorn, as the browser tests run it)
    # serve the demo's static files; empty unless DEBUG is on.
    *staticfiles_urlpatterns(),
]

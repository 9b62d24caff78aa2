"""Django settings for running rohrpost 4.1.0's test suite against rohrpost_signals."""

SECRET_KEY = "rohrpost-compat-harness"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "channels",
    "rohrpost_signals",
    "compatapp",
    "compattouched",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
ROHRPOST: dict[str, object] = {}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

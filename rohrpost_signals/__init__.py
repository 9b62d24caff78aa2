"""Push Django model changes to browsers over Django Channels (rohrpost protocol)."""

__version__ = "0.1.0"

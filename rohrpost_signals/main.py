"""Handle one rohrpost frame on any consumer: the counterpart of ``rohrpost.main``.

Both of this app's consumers answer every frame through these functions, and
so can a project's own consumer::

    class MyConsumer(WebsocketConsumer):
        def receive(self, text_data=None, bytes_data=None):
            handle_rohrpost_message(consumer=self, text_data=text_data)

The code lives in ``rohrpost_signals.protocols.rohrpost.main``.
"""

from .protocols.rohrpost.main import ahandle_rohrpost_message, handle_rohrpost_message

__all__ = ["ahandle_rohrpost_message", "handle_rohrpost_message"]

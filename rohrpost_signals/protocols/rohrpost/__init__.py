"""The rohrpost wire protocol: frames, handlers, consumers and sending helpers.

Its public names are imported from the documented paths
(``rohrpost_signals.consumers``, ``.registry``, ``.message``, ``.main``,
``.handlers``); this package imports nothing on its own, so importing one of
its modules does not import the consumers.
"""

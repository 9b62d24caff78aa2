"""The two-worker burst: every layer config, the library against the bare-Channels floor.

``run.py`` starts the servers (``asgi.py``, settings from ``settings.py``), a
writer process (``writer.py``), and raw WebSocket clients (``clients.py``)
that have no repair logic of their own; it returns what each client got.
Used by ``python -m benchmarks --only burst`` and by the integration tests
(``tests/integration/test_delivery.py``). Needs only the test dependencies.
"""

"""The protocol-independent engine: watch -> record -> encode -> deliver.

Also subscriptions, policy, authorization, limits and history. Nothing in
this package imports :mod:`rohrpost_signals.protocols` (tests/test_layout.py
holds that); docs/architecture.rst shows which module owns each step.
"""

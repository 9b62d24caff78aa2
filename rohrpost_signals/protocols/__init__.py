"""The wire protocols, each a thin layer over :mod:`rohrpost_signals.core`.

One subpackage per protocol; none imports another.
"""

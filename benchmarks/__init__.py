"""Side-by-side benchmarks: rohrpost_signals, rohrpost 4 and DCRF against the bare channel layer.

Run ``python -m benchmarks --quick`` (smoke run, under a minute) or
``python -m benchmarks`` (the full run) from the repository root.
"""

"""The benchmark-only Django app: one small model in four variants."""

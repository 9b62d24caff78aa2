"""``python -m benchmarks.burst.writer COUNT``: make COUNT items, then burst on command.

Prints ``{"pks": [...]}``, then for each line ``{"variant", "updates", "first"}``
it reads, prints ``{"saved": [ns, ...]}`` once every message was handed to the layer.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.burst.settings")
    import django

    django.setup()
    from .app import burst

    pks = burst.setup(int(sys.argv[1]))
    print(json.dumps({"pks": pks}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        saved = burst.run(command["variant"], pks, command["updates"], None, command["first"])
        print(json.dumps({"saved": saved}), flush=True)


if __name__ == "__main__":
    main()

"""Writer for the exit check: save N times, then exit normally without flushing.

``python -m benchmarks.exitcheck CHANNEL N`` (Redis layer). The channel joins
the watched object's group first; the parent counts what reached it.
"""

from __future__ import annotations

import sys

from asgiref.sync import async_to_sync

from . import djangoenv


def main() -> None:
    channel, count = sys.argv[1], int(sys.argv[2])
    djangoenv.setup()
    from channels.layers import get_channel_layer

    from .benchapp.models import SignalsItem

    obj = SignalsItem.objects.create(name="exit")
    group = f"signalsitem-{obj.pk}"
    async_to_sync(get_channel_layer().group_add)(group, channel)
    print(group, flush=True)  # the parent leaves the group when it has counted
    for value in range(1, count + 1):
        obj.counter = value
        obj.save()
    # No dispatch.flush() here: the library must deliver what is queued at exit.


if __name__ == "__main__":
    main()

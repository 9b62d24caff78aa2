"""The in-memory layer's writer: one process only, so the burst runs inside the server."""

from __future__ import annotations

import asyncio
import json

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse

from . import burst


async def setup_items(request: HttpRequest) -> JsonResponse:
    pks = await sync_to_async(burst.setup)(int(request.GET["count"]))
    return JsonResponse({"pks": pks})


async def run_burst(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body)
    loop = asyncio.get_running_loop()
    saved = await sync_to_async(burst.run, thread_sensitive=False)(
        body["variant"], body["pks"], body["updates"], loop, body.get("first", 0)
    )
    return JsonResponse({"saved": saved})

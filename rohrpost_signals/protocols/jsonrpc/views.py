"""The HTTP transport: one JSON-RPC request or batch per POST."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.views import View

from ... import exceptions as codes
from ...conf import conf
from .calls import RpcContext, context_for, reply_to, run
from .errors import PARSE_ERROR, RpcError
from .frames import V2, Call, Invalid, encode_reply, error_reply, join_batch, parse

__all__ = ["JsonRpcView"]

_JSON = "application/json"


class JsonRpcView(View):
    """``path("rpc/", JsonRpcView.as_view())``: JSON-RPC over HTTP POST.

    Django's middleware applies as to any view: the session and
    authentication middleware set ``request.user`` (``context.user``), and
    ``CsrfViewMiddleware`` refuses a POST without a CSRF token. For clients
    that have no token (other servers, scripts) wrap the view:
    ``csrf_exempt(JsonRpcView.as_view())``. Any method but POST gets 405.
    """

    http_method_names = ["post"]
    #: Encodes results; DjangoJSONEncoder handles dates, decimals, UUIDs.
    json_encoder_class: type[json.JSONEncoder] = DjangoJSONEncoder

    def rpc_context(self, call: Call) -> RpcContext:
        """The ``context`` a method called through this view receives."""
        request = self.request
        return context_for(call, "http", user=getattr(request, "user", None), request=request)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.content_type != _JSON:
            return HttpResponse(
                f"JSON-RPC requests are sent as {_JSON}.", status=415, content_type="text/plain"
            )
        try:
            try:
                text = request.body.decode(request.encoding or "utf-8")
            except UnicodeDecodeError:
                raise RpcError.standard(PARSE_ERROR, {"reason": codes.BAD_JSON}) from None
            parsed = parse(text, conf.MAX_MESSAGE_BYTES)
        except RpcError as error:
            status = 413 if error.data.get("reason") == codes.TOO_LARGE else 200
            return self._json(
                encode_reply(error_reply(V2, None, error), self.json_encoder_class), status
            )
        replies = [self._answer(item) for item in parsed.items]
        texts = [encode_reply(r, self.json_encoder_class) for r in replies if r is not None]
        body = join_batch(texts) if parsed.batch else (texts[0] if texts else None)
        if body is None:
            return HttpResponse(status=204)  # only notifications: nothing to say
        return self._json(body)

    def _answer(self, item: Call | Invalid) -> dict[str, Any] | None:
        if isinstance(item, Invalid):
            return error_reply(item.version, item.id, item.error)
        if item.method == "ping":  # the one built-in that needs no socket
            return reply_to(item, "pong")
        return run(item, self.rpc_context(item))

    @staticmethod
    def _json(body: str, status: int = 200) -> HttpResponse:
        return HttpResponse(body, status=status, content_type=_JSON)

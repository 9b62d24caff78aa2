"""JSON-RPC error codes, :class:`RpcError`, and the mapping from the package's stable codes."""

from __future__ import annotations

from typing import Any

from ... import exceptions as codes
from ...exceptions import RohrpostSignalsError

# The codes the JSON-RPC 2.0 specification defines.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: A method raised an exception: the first of the implementation-defined server errors.
SERVER_ERROR = -32000

MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
    SERVER_ERROR: "Server error",
}

# The package's stable error codes (``exceptions.ERROR_CODES``) as JSON-RPC
# codes; the stable code itself travels in ``error.data.reason``. A code
# missing here (added later) is a plain server error, still with its reason.
_BY_REASON = {
    codes.BAD_JSON: PARSE_ERROR,
    codes.BINARY_FRAME: PARSE_ERROR,
    codes.BAD_REQUEST: INVALID_REQUEST,
    codes.BAD_ID: INVALID_REQUEST,
    codes.TOO_LARGE: INVALID_REQUEST,
    codes.UNKNOWN_TYPE: METHOD_NOT_FOUND,
    codes.INTERNAL_ERROR: INTERNAL_ERROR,
    codes.UNAUTHENTICATED: -32001,
    codes.FORBIDDEN: -32002,
    codes.UNKNOWN_GROUP: -32003,
    codes.TOO_MANY_SUBSCRIPTIONS: -32004,
    codes.RATE_LIMITED: -32005,
    codes.REPLAY_BUDGET: -32006,
    codes.TIMEOUT: -32007,
    codes.UNAVAILABLE: -32008,
}


def code_for_reason(reason: str) -> int:
    """The JSON-RPC error code of one of the package's stable codes."""
    return _BY_REASON.get(reason, SERVER_ERROR)


class RpcError(RohrpostSignalsError):
    """Raise it in a method to answer with this error code, message and data.

    ``code`` is an integer; the specification reserves -32768 to -32000 for
    itself and for server errors, any other number is the application's.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"An RpcError code must be an integer, not {code!r}.")
        self.code = code
        self.message = message
        self.data = data

    @classmethod
    def standard(cls, code: int, data: Any = None) -> RpcError:
        """One of the specification's errors with its usual message."""
        return cls(code, MESSAGES[code], data)

    def as_dict(self) -> dict[str, Any]:
        """The ``error`` member of a reply."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

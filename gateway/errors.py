"""The one error shape of the API: `{"error": code, "message": sentence, "field": path}`, and
`"id"` on a 500 whose log entry (`error_id`) says why."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import orjson

log = logging.getLogger("gateway")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        error_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.error_id = error_id

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.error_id is not None:
            body["id"] = self.error_id
        return body

    def json(self) -> bytes:
        return orjson.dumps(self.body())


def invalid(field: str, message: str, code: str = "invalid_field") -> ApiError:
    return ApiError(400, code, message, field)


def unavailable(retry_after: int = 1) -> ApiError:
    return ApiError(
        503,
        "redis_unavailable",
        "The event store is unavailable; retry shortly.",
        headers={"retry-after": str(retry_after)},
    )


# What a request that failed in a way the gateway did not foresee is answered (its log says why).
INTERNAL_ERROR = ApiError(
    500,
    "internal_error",
    "The gateway failed on this request; its log says why. A write may or may not have been "
    "stored: retry it (events with the same eventId).",
)


def not_stored(error: str, **context: str | int) -> ApiError:
    """INTERNAL_ERROR for one event or order Redis failed to store (`error`, the script's words,
    e.g. WRONGTYPE of a damaged key), logged with a new id that the answer carries: the client's
    500 leads to its log entry, and the other events of its script call are stored as usual."""
    error_id = secrets.token_hex(8)
    log.error("not stored: %s", error, extra={"error_id": error_id, **context})
    return ApiError(500, INTERNAL_ERROR.code, INTERNAL_ERROR.message, error_id=error_id)

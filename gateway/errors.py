"""The one error shape of the API: `{"error": code, "message": sentence, "field": path}`."""

from __future__ import annotations

from typing import Any

import orjson


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
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

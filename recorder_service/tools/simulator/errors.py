"""Daily's error body `{"error": <type>, "info": <text>}` (reference §1)."""

from __future__ import annotations

from typing import TypeVar

import msgspec

T = TypeVar("T")

ERROR_TYPE_BY_STATUS = {
    400: "invalid-request-error",
    401: "authentication-error",
    403: "forbidden-error",
    404: "not-found",
    405: "invalid-request-error",
    429: "rate-limit-error",
}


class DailyErrorBody(msgspec.Struct, frozen=True):
    error: str
    info: str


class DailyError(Exception):
    def __init__(self, status: int, error: str, info: str) -> None:
        super().__init__(f"{status} {error}: {info}")
        self.status = status
        self.body = DailyErrorBody(error=error, info=info)


def error_type_for(status: int) -> str:
    return ERROR_TYPE_BY_STATUS.get(status, "server-error" if status >= 500 else "invalid-request-error")


def invalid_request(info: str) -> DailyError:
    return DailyError(400, "invalid-request-error", info)


def not_found(info: str) -> DailyError:
    return DailyError(404, "not-found", info)


def decode_json(raw: bytes, type_: type[T]) -> T:
    """Decodes a request body the way Daily answers bad ones; an empty body is `{}`."""
    try:
        return msgspec.json.decode(raw.strip() or b"{}", type=type_)
    except msgspec.ValidationError as exc:
        raise invalid_request(str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise DailyError(400, "json-parsing-error", f"request body is not valid JSON: {exc}") from exc

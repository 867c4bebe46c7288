"""The one place that maps error types to status codes and builds error bodies."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException

from recorder_service.errors import (
    CallbackNotFound,
    CloudStartedByClient,
    CoordinationUnavailable,
    DailyError,
    DailyParseError,
    DeletionNotFound,
    InternalApiDisabled,
    InvalidInput,
    InvalidSignature,
    LockWaitTimeout,
    MeetingNotFound,
    MeetingNotRecordable,
    PlaybackTokenMissing,
    PlaybackTokenRejected,
    RateLimited,
    RecorderError,
    RecordingAlreadyActive,
    RecordingNotFound,
    RoomNotHosting,
    StartBudgetExhausted,
    StorageUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    WebhooksNotConfigured,
)

log = logging.getLogger(__name__)
AnyRequest = Request[Any, Any, Any]

_STATUS: list[tuple[type[RecorderError], int]] = [
    (InvalidInput, 400),
    (CloudStartedByClient, 400),
    (Unauthorized, 401),
    (InvalidSignature, 401),
    (PlaybackTokenMissing, 401),
    (PlaybackTokenRejected, 403),
    (MeetingNotFound, 404),
    (RecordingNotFound, 404),
    (CallbackNotFound, 404),
    (DeletionNotFound, 404),
    (MeetingNotRecordable, 409),
    (RoomNotHosting, 409),
    (RecordingAlreadyActive, 409),
    (UnsupportedMediaType, 415),
    (RateLimited, 429),
    (StartBudgetExhausted, 429),
    (DailyError, 502),
    (DailyParseError, 502),
    (InternalApiDisabled, 503),
    (WebhooksNotConfigured, 503),
    (CoordinationUnavailable, 503),
    (StorageUnavailable, 503),
    (LockWaitTimeout, 503),
]


def error_response(
    status_code: int, detail: str, headers: dict[str, str] | None = None
) -> Response[dict[str, object]]:
    return Response(
        {"status_code": status_code, "detail": detail},
        status_code=status_code,
        headers=headers,
        media_type=MediaType.JSON,
    )


def _headers(exc: RecorderError) -> dict[str, str] | None:
    if isinstance(exc, RateLimited) and exc.limit is not None:
        wait = str(max(1, exc.retry_after_s))
        # IETF draft "RateLimit header fields for HTTP", beside the classic Retry-After.
        return {
            "Retry-After": wait,
            "RateLimit-Limit": str(exc.limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": wait,
        }
    if isinstance(exc, RoomNotHosting | RateLimited | StartBudgetExhausted):
        return {"Retry-After": str(max(1, exc.retry_after_s))}
    if isinstance(exc, LockWaitTimeout | CoordinationUnavailable | StorageUnavailable):
        return {"Retry-After": "2"}
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    return None


def _detail(exc: RecorderError) -> str:
    if isinstance(exc, DailyError):
        # Quote Daily's own error/info (never our request or credentials).
        parts = [p for p in (exc.error_type, exc.info) if p]
        return f"{exc} ({': '.join(parts)})" if parts and (exc.info or "") not in str(exc) else str(exc)
    # Other messages are our own fixed texts; driver errors are chained, never quoted.
    return str(exc)


def _mapped_status(exc: BaseException) -> int | None:
    """The status _STATUS gives this exception; None when it names none of its kinds."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return None


def status_for(exc: BaseException) -> int:
    """The status code an exception is answered with (500 for anything unexpected)."""
    mapped = _mapped_status(exc)
    if mapped is not None:
        return mapped
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 500


def handle_recorder_error(request: AnyRequest, exc: RecorderError) -> Response[dict[str, object]]:
    status = _mapped_status(exc)
    if status is None:
        return handle_unexpected(request, exc)
    if status >= 500:
        log.warning("%s %s -> %s: %s", request.method, request.url.path, status, exc)
    return error_response(status, _detail(exc), _headers(exc))


def handle_unexpected(request: AnyRequest, exc: Exception) -> Response[dict[str, object]]:
    if isinstance(exc, HTTPException):
        detail = exc.detail if exc.status_code < 500 else "internal server error"
        body: dict[str, object] = {"status_code": exc.status_code, "detail": detail}
        if exc.status_code < 500 and exc.extra:
            body["extra"] = exc.extra
        return Response(body, status_code=exc.status_code, headers=exc.headers, media_type=MediaType.JSON)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal server error")

"""The service's typed errors. http/errors.py alone maps them to status codes."""

from __future__ import annotations


class RecorderError(Exception):
    """Base of every error the service raises on purpose."""


class InvalidInput(RecorderError):
    """The caller sent something the contract does not allow (400)."""


class MeetingNotFound(RecorderError):
    pass


class RecordingNotFound(RecorderError):
    pass


class MeetingNotRecordable(RecorderError):
    """Recording type is not cloud, or the meeting has ended (409)."""


class CloudStartedByClient(RecorderError):
    pass


class RoomNotHosting(RecorderError):
    """Daily still says the room hosts no call after our retries."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DailyError(RecorderError):
    """Daily failed (5xx, timeout, unexpected 4xx) after bounded retries."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        info: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.info = info


class DailyNotHosting(DailyError):
    """Daily: "does not seem to be hosting a call" (no call registered yet)."""


class DailyActiveStream(DailyError):
    """Daily: "has an active stream": a session with that instanceId already runs."""


class DailyRateLimited(DailyError):
    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class CoordinationUnavailable(RecorderError):
    """Redis is configured but unreachable: starting now could double-start (503)."""


class LockWaitTimeout(RecorderError):
    """Another caller held the lock for longer than we were willing to wait (503)."""


class StorageUnavailable(RecorderError):
    """The database or the S3 store did not answer (503)."""


class InvalidSignature(RecorderError):
    pass


class RateLimited(RecorderError):
    """One client sent more than its share (429, with RateLimit-* headers when `limit` is known)."""

    def __init__(self, retry_after_s: int, *, limit: int | None = None) -> None:
        super().__init__("too many requests")
        self.retry_after_s = retry_after_s
        self.limit = limit


class StartBudgetExhausted(RecorderError):
    """No start call to Daily could be had from the deployment's budget within the caller's wait
    (429); `retry_after_s` is when its turn is expected."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many recordings are starting right now; retry later")
        self.retry_after_s = retry_after_s


class UnsupportedMediaType(RecorderError):
    """A JSON endpoint received a body declared as something else (415)."""


class Unauthorized(RecorderError):
    pass


class InternalApiDisabled(RecorderError):
    pass


class DailyParseError(RecorderError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventParseError(DailyParseError):
    """A webhook body that is not a valid Daily event; the caller keeps it as unparseable."""


class RecordingParseError(DailyParseError):
    """A `GET /recordings[/:id]` response that does not match the documented shape."""


class RecordingAlreadyActive(RecorderError):
    """The unique (meeting, type) active index refused a second running session."""


class CallbackNotFound(RecorderError):
    pass


class WebhooksNotConfigured(RecorderError):
    """RECORDER_DAILY_WEBHOOK_SECRETS is empty: nothing can be verified (503)."""


class VideoOff(MeetingNotRecordable):
    """A cloud start for a meeting registered with store_video: false (409)."""


class PlaybackTokenMissing(RecorderError):
    """Playback needs ?token= (RECORDER_PLAYBACK_AUTH=token) and none was given (401)."""


class PlaybackTokenRejected(RecorderError):
    """The playback token is malformed, expired, too far ahead, or not this meeting's (403).
    One message for every reason, and decided before any lookup: it reveals nothing."""


class DeletionNotFound(RecorderError):
    pass

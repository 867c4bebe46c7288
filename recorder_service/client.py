"""Typed async client for Reflector's backend, and verification of the service's callbacks.

Standalone on purpose: it imports only the standard library, httpx and msgspec, so Reflector can vendor
this one file. Response Structs ignore unknown fields, so a newer service never breaks an older client.

    async with RecorderClient(base_url, api_key, timeout_s=10) as rc:
        m = await rc.register_meeting(meeting_id, room_name=..., recording_type="cloud", start_date=...)
        avail = await rc.availability(meeting_ids)

    event = verify_callback(request.headers, await request.body(), secret)  # on the receiving side

Playback (contract §4): after its own access check, Reflector either asks for a link
(`await rc.cloud_recording_link(meeting_id)`) or mints a playback token itself, with only the
shared RECORDER_PLAYBACK_SECRET: `mint_playback_token(secret, meeting_id, exp)`, or
`rc.playback_url(meeting_id, ttl_s=900)` for a client built with `playback_secret=`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Literal, TypeVar

import httpx
import msgspec

__all__ = [
    "CLOUD_READY",
    "DAILY_EVENT",
    "MAX_AVAILABILITY_IDS",
    "MAX_PLAYBACK_TOKEN_TTL_S",
    "RAW_TRACKS_READY",
    "RECORDING_DELETED",
    "Availability",
    "Callback",
    "CallbackData",
    "CallbackEvent",
    "CallbackState",
    "CallbackTrack",
    "CloudRecordingLink",
    "DailyEventCallback",
    "InvalidCallbackPayload",
    "InvalidCallbackSignature",
    "Meeting",
    "MeetingRecordings",
    "RecorderClient",
    "RecorderClientError",
    "RecorderNotFound",
    "RecorderUnauthorized",
    "RecorderUnavailable",
    "Recording",
    "RecordingDeletedData",
    "RecordingDeletedEvent",
    "Track",
    "mint_playback_token",
    "verify_callback",
]

# The service refuses more per request (contract §5); availability() splits larger batches.
MAX_AVAILABILITY_IDS: Final = 100

RAW_TRACKS_READY: Final = "recording.raw_tracks_ready"
CLOUD_READY: Final = "recording.cloud_ready"
RECORDING_DELETED: Final = "recording.deleted"
DAILY_EVENT: Final = "daily.event"
# The service refuses playback tokens that expire later than this after their minting.
MAX_PLAYBACK_TOKEN_TTL_S: Final = 24 * 3600

RecordingType = Literal["none", "local", "cloud"]
CallbackState = Literal["pending", "delivered", "dead"]


# ---------------------------------------------------------------------------------------------- errors


class RecorderClientError(Exception):
    """The service answered with an error, or could not be reached (`status_code` is then None)."""

    def __init__(self, status_code: int | None, detail: str) -> None:
        super().__init__(f"{status_code}: {detail}" if status_code is not None else detail)
        self.status_code = status_code
        self.detail = detail


class RecorderNotFound(RecorderClientError):
    pass


class RecorderUnauthorized(RecorderClientError):
    pass


class RecorderUnavailable(RecorderClientError):
    """5xx, timeout or connection failure: worth retrying later."""

    def __init__(self, status_code: int | None, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(status_code, detail)
        self.retry_after_s = retry_after_s


class InvalidCallbackSignature(ValueError):
    """A callback was rejected: missing/bad headers, stale timestamp, no matching signature, bad secret."""


class InvalidCallbackPayload(InvalidCallbackSignature):
    # Correctly signed but not a callback event this client understands. A subclass, so
    # `except InvalidCallbackSignature` rejects every bad callback, yet the two can be told apart.
    pass


# ---------------------------------------------------------------------------------------------- responses


class Track(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    s3_key: str
    size: int | None = None


class Recording(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str  # "cloud", "cloud-audio-only" or "raw-tracks"
    status: str  # "starting", "recording", "ready", "failed" or "deleted"
    instance_id: str | None = None
    daily_recording_id: str | None = None
    s3_key: str | None = None
    duration: int | None = None
    tracks: tuple[Track, ...] = ()
    started_at: datetime | None = None
    ready_at: datetime | None = None
    error: str | None = None


class MeetingRecordings(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /v1/meetings/{id}/recordings`."""

    meeting_id: str
    room_name: str
    recording_type: str
    cloud_recording_available: bool
    cloud_recording_duration: int | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    store_video: bool = True
    recordings: tuple[Recording, ...] = ()


class Meeting(MeetingRecordings, frozen=True, kw_only=True):
    """The answer to `PUT /v1/meetings/{id}`: the GET shape, plus whether this call created it (201)."""

    created: bool = False


class Availability(msgspec.Struct, frozen=True, kw_only=True):
    cloud_recording_available: bool
    cloud_recording_duration: int | None = None


class _AvailabilityResponse(msgspec.Struct, frozen=True):
    meetings: dict[str, Availability]


class CloudRecordingLink(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /v1/meetings/{id}/cloud-recording/link`: both URLs work until `expires_at`."""

    url: str  # presigned S3 GET URL (for Reflector's backend, or a zip download)
    playback_url: str  # the service's playback redirect with a playback token (for the browser)
    expires_at: datetime
    duration: int | None = None
    content_type: str = "video/mp4"  # or "audio/mp4"


class _RecordingsDeleted(msgspec.Struct, frozen=True):
    deleted: tuple[str, ...]


class Callback(msgspec.Struct, frozen=True, kw_only=True):
    """One outgoing callback as the admin endpoints show it."""

    id: str | int
    event_type: str
    state: str  # "pending", "delivered" or "dead"
    attempts: int = 0
    meeting_id: str | None = None
    recording_id: str | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    last_status_code: int | None = None
    created_at: datetime | None = None
    delivered_at: datetime | None = None


class _CallbackList(msgspec.Struct, frozen=True):
    callbacks: tuple[Callback, ...]


class _ErrorBody(msgspec.Struct, frozen=True):
    detail: str
    status_code: int | None = None


class _MeetingPut(msgspec.Struct, frozen=True):
    room_name: str
    recording_type: RecordingType
    start_date: datetime
    end_date: datetime | None
    store_video: bool = True


# ---------------------------------------------------------------------------------------------- client

_T = TypeVar("_T")


class RecorderClient:
    """Internal endpoints (contract §5) and the callback admin endpoints, with bearer auth."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 10.0,
        http: httpx.AsyncClient | None = None,
        playback_secret: str | None = None,
        public_base_url: str | None = None,
    ) -> None:
        """`playback_secret` (RECORDER_PLAYBACK_SECRET) lets `playback_url` mint tokens locally;
        `public_base_url` is the service's address as browsers reach it (default: `base_url`)."""
        self._base_url = base_url.rstrip("/")
        self._public_base_url = (public_base_url or base_url).rstrip("/")
        self._playback_secret = playback_secret
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        # Passed on every request, so it also applies to a shared client built with other defaults.
        self._timeout = httpx.Timeout(timeout_s)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=self._timeout)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> RecorderClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- meetings ----------------------------------------------------------------------

    async def register_meeting(
        self,
        meeting_id: str,
        *,
        room_name: str,
        recording_type: RecordingType,
        start_date: datetime,
        end_date: datetime | None = None,
        store_video: bool = True,
    ) -> Meeting:
        """Create or update (idempotent). Naive datetimes are read as UTC by the service.
        `store_video=False`: no cloud recording, and raw tracks keep only their audio."""
        body = msgspec.json.encode(_MeetingPut(room_name, recording_type, start_date, end_date, store_video))
        response = await self._request("PUT", f"/v1/meetings/{_segment(meeting_id)}", content=body)
        meeting = _decode(response, Meeting)
        return msgspec.structs.replace(meeting, created=response.status_code == 201)

    async def get_recordings(self, meeting_id: str) -> MeetingRecordings:
        response = await self._request("GET", f"/v1/meetings/{_segment(meeting_id)}/recordings")
        return _decode(response, MeetingRecordings)

    async def availability(self, meeting_ids: Iterable[str]) -> dict[str, Availability]:
        """Every requested id is in the answer (unknown ones as not available)."""
        unique = list(dict.fromkeys(meeting_ids))
        found: dict[str, Availability] = {}
        for start in range(0, len(unique), MAX_AVAILABILITY_IDS):
            batch = unique[start : start + MAX_AVAILABILITY_IDS]
            params = httpx.QueryParams([("meeting_id", mid) for mid in batch])
            response = await self._request("GET", "/v1/recordings/availability", params=params)
            found.update(_decode(response, _AvailabilityResponse).meetings)
        return found

    # -- playback and deletion ---------------------------------------------------------

    async def cloud_recording_link(
        self, meeting_id: str, recording_id: str | None = None
    ) -> CloudRecordingLink:
        """After Reflector's own access check: a presigned URL and a tokened playback URL of the
        meeting's latest ready cloud recording (or `recording_id`). RecorderNotFound if none."""
        params = httpx.QueryParams({"recording_id": recording_id} if recording_id else {})
        response = await self._request(
            "GET", f"/v1/meetings/{_segment(meeting_id)}/cloud-recording/link", params=params
        )
        return _decode(response, CloudRecordingLink)

    def mint_playback_token(self, meeting_id: str, exp: int) -> str:
        """A playback token for `meeting_id` expiring at `exp` (Unix seconds), minted locally."""
        if self._playback_secret is None:
            raise ValueError("RecorderClient was built without playback_secret")
        return mint_playback_token(self._playback_secret, meeting_id, exp)

    def playback_url(
        self, meeting_id: str, ttl_s: int = 900, *, recording_id: str | None = None, now: float | None = None
    ) -> str:
        """The service's playback redirect for `meeting_id` with a token valid `ttl_s` seconds
        (at most 24 h), for a `<video>`/`<audio>` element. No request is made."""
        if not 0 < ttl_s <= MAX_PLAYBACK_TOKEN_TTL_S:
            raise ValueError(f"ttl_s must be between 1 and {MAX_PLAYBACK_TOKEN_TTL_S} seconds")
        exp = int(time.time() if now is None else now) + ttl_s
        query = {"token": self.mint_playback_token(meeting_id, exp)}
        if recording_id is not None:
            query["recording_id"] = recording_id
        path = f"/v1/meetings/{_segment(meeting_id)}/cloud-recording"
        return f"{self._public_base_url}{path}?{urllib.parse.urlencode(query)}"

    async def delete_recordings(
        self,
        meeting_id: str,
        *,
        type: Literal["cloud", "raw-tracks"] | None = None,
        recording_id: str | None = None,
    ) -> list[str]:
        """Deletes the meeting's recordings (all, one type, or one): they are never available
        again at once, their files go in the background, and a recording.deleted callback
        follows each. Returns the ids of the recordings matched (deleted earlier ones too)."""
        wanted = {"type": type, "recording_id": recording_id}
        params = httpx.QueryParams({k: v for k, v in wanted.items() if v is not None})
        response = await self._request(
            "DELETE", f"/v1/meetings/{_segment(meeting_id)}/recordings", params=params
        )
        return list(_decode(response, _RecordingsDeleted).deleted)

    # -- callbacks (admin) -------------------------------------------------------------

    async def list_callbacks(
        self, state: CallbackState | None = None, *, limit: int | None = None
    ) -> list[Callback]:
        wanted = {"state": state, "limit": limit}
        params = httpx.QueryParams({k: v for k, v in wanted.items() if v is not None})
        response = await self._request("GET", "/v1/callbacks", params=params)
        return list(_decode(response, _CallbackList).callbacks)

    async def retry_callback(self, callback_id: str | int) -> Callback:
        response = await self._request("POST", f"/v1/callbacks/{_segment(str(callback_id))}/retry")
        return _decode(response, Callback)

    # -- transport ---------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: httpx.QueryParams | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                method,
                self._base_url + path,
                params=params,
                content=content,
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TransportError as exc:  # connect/read/write errors and timeouts
            raise RecorderUnavailable(None, f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response


def _segment(value: str) -> str:
    # Meeting ids are [A-Za-z0-9._:-]; quote anything else so it reaches the service's 400, not another path.
    return urllib.parse.quote(value, safe="")


def _decode(response: httpx.Response, type_: type[_T]) -> _T:
    try:
        return msgspec.json.decode(response.content, type=type_)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise RecorderClientError(response.status_code, f"unexpected response body: {exc}") from exc


def _error_of(response: httpx.Response) -> RecorderClientError:
    status = response.status_code
    try:
        detail = msgspec.json.decode(response.content, type=_ErrorBody).detail
    except msgspec.DecodeError:
        detail = response.text[:200] or response.reason_phrase
    if status == 401:
        return RecorderUnauthorized(status, detail)
    if status == 404:
        return RecorderNotFound(status, detail)
    if status >= 500:
        return RecorderUnavailable(status, detail, _retry_after_s(response))
    return RecorderClientError(status, detail)


def _retry_after_s(response: httpx.Response) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


# ---------------------------------------------------------------------------------------------- playback tokens


def mint_playback_token(secret: str, meeting_id: str, exp: int) -> str:
    """`<exp>.<sig>`: sig is the unpadded base64url HMAC-SHA256, keyed by the UTF-8 bytes of
    the secret (RECORDER_PLAYBACK_SECRET), of `"<meeting_id>.<exp>"` (contract §4). The service
    refuses tokens expiring more than 24 h ahead, so mint them just before use."""
    if exp < 0:
        raise ValueError("exp must be Unix seconds")
    digest = hmac.new(secret.encode(), f"{meeting_id}.{exp}".encode(), hashlib.sha256).digest()
    return f"{exp}." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# ---------------------------------------------------------------------------------------------- callbacks


class CallbackTrack(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    s3_key: str
    size: int | None = None


class CallbackData(msgspec.Struct, frozen=True, kw_only=True):
    """Both event types' `data` in one Struct: raw-tracks fill the track fields, cloud fills `s3_key`."""

    meeting_id: str
    room_name: str
    recording_id: str  # Daily's recording id
    bucket: str
    start_ts: int
    duration: int | None = None
    # recording.raw_tracks_ready: audio track keys in Daily's order, and every track.
    track_keys: tuple[str, ...] = ()
    tracks: tuple[CallbackTrack, ...] = ()
    # recording.cloud_ready
    s3_key: str | None = None


class CallbackEvent(msgspec.Struct, frozen=True, kw_only=True):
    type: str  # RAW_TRACKS_READY or CLOUD_READY
    timestamp: datetime
    data: CallbackData


class RecordingDeletedData(msgspec.Struct, frozen=True, kw_only=True):
    meeting_id: str
    recording_id: str  # Daily's recording id
    type: str  # "cloud" or "raw-tracks"
    reason: str  # "request", "retention" or "store_video_off"


class RecordingDeletedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """RECORDING_DELETED: every object of the recording is gone from the bucket."""

    type: str
    timestamp: datetime
    data: RecordingDeletedData


class DailyEventCallback(msgspec.Struct, frozen=True, kw_only=True):
    """DAILY_EVENT: a Daily webhook event relayed as received (RECORDER_FORWARD_DAILY_EVENTS).
    `data` is Daily's JSON object; its `type`, `id` and `payload` are Daily's."""

    type: str
    timestamp: datetime
    data: dict[str, Any]


class _EventType(msgspec.Struct, frozen=True):
    type: str


_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a prefix, not a secret
_event_decoder = msgspec.json.Decoder(CallbackEvent)
_deleted_decoder = msgspec.json.Decoder(RecordingDeletedEvent)
_daily_event_decoder = msgspec.json.Decoder(DailyEventCallback)
_type_decoder = msgspec.json.Decoder(_EventType)


def verify_callback(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    tolerance_s: float = 300,
    now: datetime | None = None,
) -> CallbackEvent | RecordingDeletedEvent | DailyEventCallback:
    """Check a Standard Webhooks signature over the raw body, then decode the event: a
    RecordingDeletedEvent for RECORDING_DELETED, a DailyEventCallback for DAILY_EVENT, else a
    CallbackEvent (narrow with isinstance).

    Pass the body bytes exactly as received (not re-serialised JSON). Deduplicate on the
    `webhook-id` header: delivery is at-least-once and the id is kept across retries.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "").strip()
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        raise InvalidCallbackSignature("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise InvalidCallbackSignature("webhook-timestamp is not an integer")
    now_s = now.timestamp() if now is not None else time.time()
    if abs(now_s - int(timestamp)) > tolerance_s:
        raise InvalidCallbackSignature("webhook-timestamp is outside the tolerance")

    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = hmac.new(_callback_key(secret), signed, hashlib.sha256).digest()
    if not any(hmac.compare_digest(expected, given) for given in _v1_signatures(signatures)):
        raise InvalidCallbackSignature("no matching v1 signature")

    try:
        kind = _type_decoder.decode(body).type
        if kind == RECORDING_DELETED:
            return _deleted_decoder.decode(body)
        if kind == DAILY_EVENT:
            return _daily_event_decoder.decode(body)
        event = _event_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidCallbackPayload(f"signed body is not a callback event: {exc}") from exc
    if event.type == CLOUD_READY and event.data.s3_key is None:
        raise InvalidCallbackPayload("recording.cloud_ready without data.s3_key")
    return event


def _callback_key(secret: str) -> bytes:
    text = secret.strip().removeprefix(_SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise InvalidCallbackSignature("callback secret is not whsec_<base64>")
    return key


def _v1_signatures(header: str) -> list[bytes]:
    """Decoded `v1,<base64>` entries; other versions and malformed entries are skipped."""
    found: list[bytes] = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found

"""/v1/meetings/{meeting_id}/...: the meeting resource, for its two audiences. Anonymous
browsers start recordings and follow the playback redirect (rate-limited per client, and
with a playback token unless RECORDER_PLAYBACK_AUTH=open); Reflector's backend registers
meetings, reads, links and deletes their recordings (bearer key)."""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Literal

from litestar import Controller, HttpMethod, Response, delete, get, post, put, route
from litestar.params import JSONBody, QueryParameter
from litestar.response import Redirect

from recorder_service.core.deletions import DeletionReason
from recorder_service.core.models import Meeting
from recorder_service.errors import InvalidInput
from recorder_service.http.bodies import json_body
from recorder_service.http.guards import (
    MEETING_ID,
    AnyRequest,
    playback_token,
    rate_limit,
    require_internal_key,
    resources_of,
    valid_meeting_id,
)
from recorder_service.http.schemas import (
    AvailabilityOut,
    AvailabilityResponse,
    CloudRecordingLinkOut,
    MeetingIdPath,
    MeetingPut,
    MeetingRecordings,
    RecordingsDeleted,
    StartRequest,
    StartResponse,
    as_utc,
    meeting_recordings,
)
from recorder_service.http.tracing import LeanPlaybackTracing
from recorder_service.resources import Resources
from recorder_service.services.deletions import delete_recordings
from recorder_service.services.ingest import apply_pending
from recorder_service.services.meetings import (
    MAX_AVAILABILITY_IDS,
    availability_of,
    meeting_with_recordings,
    register_meeting,
)
from recorder_service.services.playback import cloud_recording_link, playback_url
from recorder_service.services.starts import start_recording


class StartController(Controller):
    path = "/v1/meetings/{meeting_id:str}"
    guards = [valid_meeting_id, rate_limit]
    tags = ["public"]

    @post(
        "/recordings/start",
        status_code=200,
        summary="Start a recording at join time (idempotent)",
        guards=[json_body],
    )
    async def start(
        self, request: AnyRequest, meeting_id: MeetingIdPath, data: JSONBody[StartRequest]
    ) -> StartResponse:
        outcome = await start_recording(resources_of(request).starts, meeting_id, data.type)
        return StartResponse(
            status=outcome.status,
            type=outcome.type,
            instanceId=outcome.instance_id,
            meeting_id=outcome.meeting_id,
        )


# The redirect only, not `.../cloud-recording/link` (MeetingsController, generic tracing).
PLAYBACK_PATHS = r"^/v1/meetings/[^/]+/cloud-recording/?$"

RecordingSelector = Annotated[
    str | None, QueryParameter(description="our recording id or Daily's recording id")
]


class PlaybackController(Controller):
    path = "/v1/meetings/{meeting_id:str}/cloud-recording"
    # Traces itself, as the webhook route does (http/tracing.py); app.py excludes PLAYBACK_PATHS
    # from the generic middleware.
    middleware = [LeanPlaybackTracing]
    # In this order: the token (guards.playback_token) is checked before the rate limit.
    guards = [valid_meeting_id, playback_token, rate_limit]
    tags = ["public"]

    @route(
        "/",
        http_method=[HttpMethod.GET, HttpMethod.HEAD],
        status_code=307,
        summary="Redirect to the latest ready cloud recording (presigned S3 URL)",
    )
    async def redirect(
        self,
        request: AnyRequest,
        meeting_id: MeetingIdPath,
        recording_id: RecordingSelector = None,
        token: Annotated[
            str | None,
            QueryParameter(
                description="playback token `<exp>.<sig>` minted by Reflector (contract §4); "
                "required unless RECORDER_PLAYBACK_AUTH=open"
            ),
        ] = None,
    ) -> Redirect:
        # The token was checked by a guard, before the rate limit and any lookup (`token` is
        # declared here for the API's description).
        res = resources_of(request)
        link = await playback_url(
            res.db, res.storage, meeting_id, recording_id, ttl_s=res.settings.presign_ttl_seconds
        )
        # The redirect must not be cached longer than the URL it points to stays valid.
        max_age = max(0, min(300, link.ttl_s - 60))
        return Redirect(link.url, status_code=307, headers={"Cache-Control": f"private, max-age={max_age}"})


async def _meeting_body(res: Resources, meeting_id: MeetingIdPath) -> MeetingRecordings:
    meeting, recordings, availability = await meeting_with_recordings(res.db, meeting_id)
    return meeting_recordings(meeting, recordings, availability)


class MeetingsController(Controller):
    path = "/v1"
    guards = [require_internal_key, valid_meeting_id]
    tags = ["internal"]
    security = [{"BearerToken": []}]

    @put(
        "/meetings/{meeting_id:str}", summary="Register or update a meeting (idempotent)", guards=[json_body]
    )
    async def put_meeting(
        self, request: AnyRequest, meeting_id: MeetingIdPath, data: JSONBody[MeetingPut]
    ) -> Response[MeetingRecordings]:
        res = resources_of(request)
        meeting = Meeting(
            id=meeting_id,
            room_name=data.room_name,
            recording_type=data.recording_type,
            start_date=as_utc(data.start_date),
            end_date=as_utc(data.end_date) if data.end_date else None,
            store_video=data.store_video,
        )
        created = await register_meeting(res.db, meeting)
        # Events that arrived before the meeting was registered can be applied now.
        await apply_pending(res.ingest, room_name=meeting.room_name)
        return Response(await _meeting_body(res, meeting_id), status_code=201 if created else 200)

    @get("/meetings/{meeting_id:str}/recordings", summary="A meeting's recordings and availability")
    async def get_recordings(self, request: AnyRequest, meeting_id: MeetingIdPath) -> MeetingRecordings:
        return await _meeting_body(resources_of(request), meeting_id)

    @get("/recordings/availability", summary="Cloud-recording availability of up to 100 meetings")
    async def availability(
        self,
        request: AnyRequest,
        meeting_id: Annotated[list[str] | None, QueryParameter(name="meeting_id")] = None,
    ) -> AvailabilityResponse:
        ids = meeting_id or []
        if any(not MEETING_ID.fullmatch(mid) for mid in ids):
            raise InvalidInput("every meeting_id must be 1-128 characters of [A-Za-z0-9._:-]")
        if len(ids) > MAX_AVAILABILITY_IDS:
            raise InvalidInput(f"at most {MAX_AVAILABILITY_IDS} meeting_id values per request")
        found = await availability_of(resources_of(request).db, ids)
        return AvailabilityResponse(
            meetings={
                mid: AvailabilityOut(a.cloud_recording_available, a.cloud_recording_duration)
                for mid, a in found.items()
            }
        )

    @get(
        "/meetings/{meeting_id:str}/cloud-recording/link",
        summary="A presigned URL and a tokened playback URL of the latest (or chosen) ready cloud recording",
    )
    async def cloud_recording_link(
        self, request: AnyRequest, meeting_id: MeetingIdPath, recording_id: RecordingSelector = None
    ) -> CloudRecordingLinkOut:
        res = resources_of(request)
        link = await cloud_recording_link(
            res.db,
            res.storage,
            res.playback_tokens,
            meeting_id,
            recording_id,
            presign_ttl_s=res.settings.presign_ttl_seconds,
            now=res.now(),
        )
        # Pinned to the recording this answer describes (url, duration, content type).
        query = {"recording_id": link.recording_id} | ({"token": link.token} if link.token else {})
        base = (res.settings.public_base_url or str(request.base_url)).rstrip("/")
        path = f"/v1/meetings/{urllib.parse.quote(meeting_id, safe=':')}/cloud-recording"
        return CloudRecordingLinkOut(
            url=link.url,
            playback_url=f"{base}{path}?{urllib.parse.urlencode(query)}",
            expires_at=link.expires_at,
            duration=link.duration,
            content_type="audio/mp4" if link.content_type == "audio/mp4" else "video/mp4",
        )

    @delete(
        "/meetings/{meeting_id:str}/recordings",
        status_code=202,
        summary="Delete recordings: marked deleted at once, their S3 objects removed in the background",
    )
    async def delete_recordings(
        self,
        request: AnyRequest,
        meeting_id: MeetingIdPath,
        rec_type: Annotated[
            Literal["cloud", "raw-tracks"] | None,
            QueryParameter(
                name="type", description="only recordings of this type (cloud includes audio-only)"
            ),
        ] = None,
        recording_id: RecordingSelector = None,
    ) -> RecordingsDeleted:
        res = resources_of(request)
        deleted = await delete_recordings(
            res.db,
            meeting_id,
            rec_type=rec_type,
            selector=recording_id,
            reason=DeletionReason.REQUEST,
            now=res.now(),
            telemetry=res.telemetry,
        )
        res.deletion_wakeup.set()
        return RecordingsDeleted(deleted)

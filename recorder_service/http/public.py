"""Public endpoints (browser, anonymous): join-time start."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody

from recorder_service.http.guards import AnyRequest, rate_limit, resources_of, valid_meeting_id
from recorder_service.http.schemas import MeetingIdPath, StartRequest, StartResponse
from recorder_service.services.starts import start_recording


class StartController(Controller):
    path = "/v1/meetings/{meeting_id:str}"
    guards = [valid_meeting_id, rate_limit]
    tags = ["public"]

    @post("/recordings/start", status_code=200, summary="Start a recording at join time (idempotent)")
    async def start(
        self, request: AnyRequest, meeting_id: MeetingIdPath, data: JSONBody[StartRequest]
    ) -> StartResponse:
        outcome = await start_recording(resources_of(request).start_deps(), meeting_id, data.type)
        return StartResponse(
            status=outcome.status,
            type=outcome.type,
            instanceId=outcome.instance_id,
            meeting_id=outcome.meeting_id,
        )

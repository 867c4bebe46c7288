"""GET/HEAD /v1/meetings/{id}/cloud-recording: 307 to a presigned S3 URL."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, HttpMethod, route
from litestar.params import QueryParameter
from litestar.response import Redirect

from recorder_service.http.guards import AnyRequest, rate_limit, resources_of, valid_meeting_id
from recorder_service.http.schemas import MeetingIdPath
from recorder_service.services.playback import playback_url


class PlaybackController(Controller):
    path = "/v1/meetings/{meeting_id:str}/cloud-recording"
    guards = [valid_meeting_id, rate_limit]
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
        recording_id: Annotated[
            str | None, QueryParameter(description="our recording id or Daily's recording id")
        ] = None,
    ) -> Redirect:
        res = resources_of(request)
        link = await playback_url(
            res.db, res.storage, meeting_id, recording_id, ttl_s=res.settings.presign_ttl_seconds
        )
        # The redirect must not be cached longer than the URL it points to stays valid.
        max_age = max(0, min(300, link.ttl_s - 60))
        return Redirect(link.url, status_code=307, headers={"Cache-Control": f"private, max-age={max_age}"})

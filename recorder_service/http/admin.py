"""Internal operator endpoints: stored Daily events, callbacks and deletion jobs (bearer auth)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import FromPath, QueryParameter

from recorder_service.core.deletions import DeletionView
from recorder_service.core.models import CallbackView
from recorder_service.http.guards import AnyRequest, require_internal_key, resources_of
from recorder_service.services.admin import (
    CallbackList,
    DeletionList,
    EventList,
    list_callbacks,
    list_deletions,
    list_events,
    retry_callback,
    retry_deletion,
)

Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="at most this many, newest first")]
Cursor = Annotated[
    str | None,
    QueryParameter(description="next_cursor of the previous page: continue with older rows"),
]


class AdminController(Controller):
    path = "/v1"
    guards = [require_internal_key]
    tags = ["internal"]
    security = [{"BearerToken": []}]

    @get("/daily/events", summary="Stored Daily webhook events (inbox), e.g. orphans or unparseable ones")
    async def events(
        self,
        request: AnyRequest,
        state_filter: Annotated[
            str | None,
            QueryParameter(name="state", description="pending, applied, orphan, ignored or unparseable"),
        ] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> EventList:
        return await list_events(resources_of(request).db, state=state_filter, limit=limit, cursor=cursor)

    @get("/callbacks", summary="Callbacks to Reflector with attempts and last error")
    async def callbacks(
        self,
        request: AnyRequest,
        state_filter: Annotated[
            str | None, QueryParameter(name="state", description="pending, delivered or dead")
        ] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> CallbackList:
        return await list_callbacks(resources_of(request).db, state=state_filter, limit=limit, cursor=cursor)

    @post("/callbacks/{callback_id:str}/retry", status_code=202, summary="Deliver a callback again now")
    async def retry(self, request: AnyRequest, callback_id: FromPath[str]) -> CallbackView:
        res = resources_of(request)
        view = await retry_callback(res.db, callback_id, res.now())
        res.outbox_wakeup.set()
        return view

    @get(
        "/deletions",
        summary="Deletion jobs: the S3 objects of deleted recordings, with attempts and last error",
    )
    async def deletions(
        self,
        request: AnyRequest,
        state_filter: Annotated[
            str | None, QueryParameter(name="state", description="waiting, pending or done")
        ] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> DeletionList:
        return await list_deletions(resources_of(request).db, state=state_filter, limit=limit, cursor=cursor)

    @post(
        "/deletions/{deletion_id:str}/retry", status_code=202, summary="Attempt a pending deletion again now"
    )
    async def retry_deletion(self, request: AnyRequest, deletion_id: FromPath[str]) -> DeletionView:
        res = resources_of(request)
        view = await retry_deletion(res.db, deletion_id, res.now())
        res.deletion_wakeup.set()
        return view

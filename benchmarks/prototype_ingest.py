"""A prototype of the proposed ingest, for measurement only (the service is not changed).

The service's app plus two extra routes, both verifying and storing exactly like
`POST /v1/daily/webhook` but deferring the apply step to the inbox sweep:
- `POST /bench/webhook-deferred`: one INSERT … ON CONFLICT DO NOTHING per request;
- `POST /bench/webhook-coalesced`: requests that arrive while a write is in flight are stored
  together by the next one, one INSERT … RETURNING for the batch (`add_many_if_absent`).

    python benchmarks/prototype_ingest.py --port N   (RECORDER_* from the environment)
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

import uvicorn
from litestar import Request, Response, post

from recorder_service.adapters.db.tables import InboxEventRow
from recorder_service.app import create_app
from recorder_service.commands import configure
from recorder_service.domain.ingest import IngestDeps, inbox_row_for
from recorder_service.http.guards import resources_of

AnyRequest = Request[Any, Any, Any]
MAX_BATCH = 256


def _verified_row(deps: IngestDeps, request: AnyRequest, body: bytes) -> InboxEventRow | None:
    assert deps.verifier is not None
    ok = deps.verifier.verify(
        request.headers.get("x-webhook-timestamp"), request.headers.get("x-webhook-signature"), body
    )
    return inbox_row_for(body, now=deps.now()) if ok else None


def _answer(status: int, stored: bool) -> Response[dict[str, object]]:
    return Response({"status": "stored" if stored else "duplicate"}, status_code=status)


@post("/bench/webhook-deferred", status_code=200)
async def deferred(request: AnyRequest) -> Response[dict[str, object]]:
    deps = resources_of(request).ingest_deps()
    row = _verified_row(deps, request, await request.body())
    if row is None:
        return Response({"status_code": 401, "detail": "invalid signature"}, status_code=401)
    async with deps.db.transaction() as uow:
        stored = await uow.inbox.add_if_absent(row)
    return _answer(200, stored)


class Coalescer:
    """At most one INSERT in flight; rows arriving meanwhile wait and go in the next one."""

    def __init__(self) -> None:
        self._waiting: list[tuple[InboxEventRow, asyncio.Future[bool]]] = []
        self._flushing = False

    async def store(self, deps: IngestDeps, row: InboxEventRow) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if not self._flushing:
            self._flushing = True
            try:
                while self._waiting:
                    batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                    await self._flush(deps, batch)
            finally:
                self._flushing = False
        return await future

    async def _flush(self, deps: IngestDeps, batch: list[tuple[InboxEventRow, asyncio.Future[bool]]]) -> None:
        # Two deliveries of one id in the same batch: ON CONFLICT cannot touch a row twice.
        first: dict[str, InboxEventRow] = {}
        for row, _ in batch:
            first.setdefault(row.id, row)
        try:
            async with deps.db.transaction() as uow:
                stored = await uow.inbox.add_many_if_absent(list(first.values()))
        except Exception as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        for row, future in batch:
            future.set_result(row.id in stored and first[row.id] is row)


COALESCER = Coalescer()


@post("/bench/webhook-coalesced", status_code=200)
async def coalesced(request: AnyRequest) -> Response[dict[str, object]]:
    deps = resources_of(request).ingest_deps()
    row = _verified_row(deps, request, await request.body())
    if row is None:
        return Response({"status_code": 401, "detail": "invalid signature"}, status_code=401)
    return _answer(200, await COALESCER.store(deps, row))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(configure(dict(os.environ)), run_background=False)
    app.register(deferred)
    app.register(coalesced)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()

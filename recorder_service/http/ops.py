"""Health endpoints."""

from __future__ import annotations

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from recorder_service.errors import CoordinationUnavailable
from recorder_service.http.guards import AnyRequest, resources_of
from recorder_service.http.schemas import Health
from recorder_service.workers.outbox import refresh_pending_gauges


@get("/healthz", tags=["ops"], summary="Liveness: the process serves", sync_to_thread=False)
def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", tags=["ops"], summary="Readiness: database (and Redis, if configured) answer")
async def readyz(request: AnyRequest) -> Response[Health]:
    res = resources_of(request)
    checks: dict[str, str] = {}
    try:
        async with res.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # any failure means "not ready"; details stay in the logs
        checks["database"] = "unavailable"
    if res.redis is not None:
        try:
            await res.coordinator.ping()
            checks["redis"] = "ok"
        except CoordinationUnavailable:
            checks["redis"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    return Response(
        Health(status="ok" if ok else "unavailable", checks=checks), status_code=200 if ok else 503
    )


@get(
    "/metrics",
    tags=["ops"],
    summary="Prometheus metrics (text exposition format)",
    include_in_schema=False,
    media_type=CONTENT_TYPE_LATEST,
)
async def metrics(request: AnyRequest) -> Response[bytes]:
    res = resources_of(request)
    # The backlog gauges are global (one outbox for all replicas): read it fresh per scrape.
    await refresh_pending_gauges(res)
    return Response(generate_latest(res.telemetry.registry), media_type=CONTENT_TYPE_LATEST)

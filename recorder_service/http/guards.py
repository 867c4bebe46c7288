"""Guards: bearer auth for internal endpoints, per-client rate limit for public ones."""

from __future__ import annotations

import functools
import hmac
import logging
import re
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from recorder_service.core.client_address import IPNetwork, client_address, parse_trusted_proxies
from recorder_service.errors import (
    CoordinationUnavailable,
    InternalApiDisabled,
    InvalidInput,
    RateLimited,
    Unauthorized,
)
from recorder_service.http.schemas import MEETING_ID_PATTERN
from recorder_service.resources import Resources
from recorder_service.services.playback import check_playback_token

log = logging.getLogger(__name__)

AnyConnection = ASGIConnection[Any, Any, Any, Any]
AnyRequest = Request[Any, Any, Any]
MEETING_ID = re.compile(MEETING_ID_PATTERN)


def resources_of(connection: AnyConnection) -> Resources:
    res: Resources = connection.app.state.resources
    return res


async def require_internal_key(connection: AnyConnection, _: BaseRouteHandler) -> None:
    expected = resources_of(connection).settings.internal_api_key
    if not expected:
        raise InternalApiDisabled("internal API disabled: RECORDER_INTERNAL_API_KEY is not set")
    header = connection.headers.get("authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Unauthorized("missing or invalid bearer token")


@functools.cache
def _trusted_networks(values: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_trusted_proxies(values)  # validated when the settings were loaded


def client_of(connection: AnyConnection) -> str:
    """The client's address: X-Forwarded-For is read only behind RECORDER_TRUSTED_PROXIES."""
    trusted = _trusted_networks(resources_of(connection).settings.trusted_proxies)
    peer = connection.client.host if connection.client else None
    forwarded = connection.headers.getall("x-forwarded-for", []) if trusted else []
    return client_address(peer, forwarded, trusted)


async def rate_limit(connection: AnyConnection, _: BaseRouteHandler) -> None:
    res = resources_of(connection)
    client = client_of(connection)
    # How an operator checks the proxy set-up (docs/operations.md, "Behind a proxy").
    log.debug(
        "public request from client %s (TCP peer %s)",
        client,
        connection.client.host if connection.client else None,
    )
    limit = res.settings.rate_limit_per_minute
    try:
        wait_s = await res.coordinator.hit(f"public:{client}", limit=limit, window_s=60)
    except CoordinationUnavailable:
        # Fail open: losing Redis must not take playback down; starts still refuse (503).
        log.warning("rate limiter unavailable (redis); request allowed")
        return
    if wait_s is not None:
        raise RateLimited(wait_s, limit=limit)


async def playback_token(connection: AnyConnection, _: BaseRouteHandler) -> None:
    """The playback redirect's token, checked before the rate limit and before any lookup: a
    request without a valid token costs a few microseconds in this process, no Redis round trip,
    and is counted against nobody's budget. Guessing a 256-bit HMAC needs no rate limit."""
    res = resources_of(connection)
    meeting_id = str(connection.path_params["meeting_id"])
    token = connection.query_params.get("token")
    check_playback_token(res.playback_checker, meeting_id, token, res.now().timestamp())


async def valid_meeting_id(connection: AnyConnection, _: BaseRouteHandler) -> None:
    meeting_id = connection.path_params.get("meeting_id")
    if meeting_id is not None and not MEETING_ID.fullmatch(str(meeting_id)):
        raise InvalidInput("meeting_id must be 1-128 characters of [A-Za-z0-9._:-]")

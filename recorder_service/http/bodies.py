"""Strict JSON bodies, a guard on every endpoint that takes one.

A body declared as anything but JSON is refused (415): browsers send text/plain, form and
multipart bodies cross-origin without a CORS preflight, so accepting them would let any web page
make its visitors' browsers start recordings. A body that does not decode, however deeply it is
nested, is the caller's mistake (400), never a 500."""

from __future__ import annotations

import msgspec
from litestar import Request
from litestar.exceptions import SerializationException
from litestar.handlers.base import BaseRouteHandler

from recorder_service.errors import InvalidInput, UnsupportedMediaType
from recorder_service.http.guards import AnyConnection

_JSON = "application/json"
_UTF8 = {"utf-8", "utf8"}


def is_json_content_type(value: str | None) -> bool:
    """`application/json`, optionally with `charset=utf-8` (JSON is UTF-8, RFC 8259)."""
    if not value:
        return False
    media_type, *parameters = (part.strip() for part in value.split(";"))
    if media_type.lower() != _JSON:
        return False
    for parameter in parameters:
        if not parameter:
            continue
        name, _, raw = parameter.partition("=")
        if name.strip().lower() != "charset" or raw.strip().strip('"').lower() not in _UTF8:
            return False
    return True


async def json_body(connection: AnyConnection, _: BaseRouteHandler) -> None:
    """Runs after the route's other guards (authentication, rate limit) and before Litestar
    decodes the body for the handler, which then reuses the value decoded here."""
    if not isinstance(connection, Request):
        return
    body = await connection.body()
    if not is_json_content_type(connection.headers.get("content-type")):
        if body:
            raise UnsupportedMediaType("the request body must be sent as Content-Type: application/json")
        raise InvalidInput("a JSON request body is required")
    try:
        await connection.json()
    except (RecursionError, SerializationException, msgspec.DecodeError):
        # msgspec refuses nesting deeper than the interpreter's recursion limit with RecursionError.
        raise InvalidInput("the request body is not valid JSON") from None

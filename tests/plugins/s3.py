"""Pytest fixtures: a real S3-compatible server (moto) over HTTP on 127.0.0.1.

- `aws_credentials` (session): dummy AWS_* variables; moto's server accepts any credentials.
- `s3_server` (session): one shared moto server. Never stop it; use `s3_dedicated` for that.
- `s3` (function): a fresh bucket on the shared server (`S3Bucket`).
- `s3_dedicated` (function): a fresh bucket on a server of its own (`DedicatedS3Bucket`), with
  `await stop()` / `await start()`: stopped, the port refuses connections (not a 503), and
  `start()` reopens the same port, so an `endpoint_url` handed to the service stays valid.
  moto keeps its state in-process, so objects survive a restart.

Like S3 (and like moto started with MOTO_DISABLE_GLOBAL_CORS=1), the server adds no CORS headers:
moto's default `Access-Control-Allow-Origin: *` on every answer would let a browser test pass
with a page that works only because of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import aioboto3
import pytest
from aiobotocore.config import AioConfig
from moto.moto_server import werkzeug_app
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

S3_REGION = "us-east-1"
# What MOTO_DISABLE_GLOBAL_CORS=1 sets, had it been in the environment when moto was imported;
# create_backend_app reads it each time it builds a service's app.
werkzeug_app.DISABLE_GLOBAL_CORS = True  # type: ignore[attr-defined]  # imported there from moto.settings
_AWS_VARIABLES_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


class _OneRequestPerConnection(MotoRequestHandler):
    # HTTP/1.0 closes every connection after its response: once stopped, the server answers
    # nothing, whereas a keep-alive handler thread would go on serving a pooled connection.
    protocol_version = "HTTP/1.0"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MotoS3Server:
    """moto's server in a thread, on a fixed port so it can be stopped and started again."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port if port is not None else _free_port(host)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        app = DomainDispatcherApplication(create_backend_app)
        # make_server binds at once (allow_reuse_address is set, so the port is reusable).
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=_OneRequestPerConnection
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # quick stop()
            name=f"moto-s3-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()  # serve_forever closes the listening socket on its way out
        if thread is not None:
            thread.join(timeout=10)


class S3Bucket:
    """A bucket on a moto server, with a client of its own for arranging and checking objects."""

    def __init__(self, server: MotoS3Server, client: S3Client, bucket: str) -> None:
        self.server = server
        self.endpoint_url = server.endpoint_url
        self.bucket = bucket
        self.region = S3_REGION
        self._client = client

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        if content_type is None:
            await self._client.put_object(Bucket=self.bucket, Key=key, Body=data)
        else:
            await self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    async def get(self, key: str) -> bytes:
        response = await self._client.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as body:
            return await body.read()

    async def create_bucket(self, name: str) -> None:
        """Another bucket on the same server (e.g. one the service is told to use later)."""
        await self._client.create_bucket(Bucket=name)

    async def keys(self, prefix: str = "") -> list[str]:
        """Every key in the bucket (listed, not assumed), sorted."""
        found: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", []) if "Key" in item]
        return sorted(found)


class DedicatedS3Bucket(S3Bucket):
    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)

    async def start(self) -> None:
        await asyncio.to_thread(self.server.start)


@pytest.fixture(scope="session")
def aws_credentials() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in _AWS_VARIABLES_TO_CLEAR:
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", S3_REGION)
        # No ~/.aws files: the test must not pick up a developer's profile or region.
        mp.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        yield


@pytest.fixture(scope="session")
def s3_server(aws_credentials: None) -> Iterator[MotoS3Server]:
    server = MotoS3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_dedicated_server(aws_credentials: None) -> Iterator[MotoS3Server]:
    server = MotoS3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def _open_bucket(server: MotoS3Server) -> AsyncIterator[tuple[S3Client, str]]:
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    session = aioboto3.Session()
    config = AioConfig(signature_version="s3v4", s3={"addressing_style": "path"})
    async with session.client(
        "s3", region_name=S3_REGION, endpoint_url=server.endpoint_url, config=config
    ) as client:
        await client.create_bucket(Bucket=bucket)
        yield client, bucket


@pytest.fixture
async def s3(s3_server: MotoS3Server) -> AsyncIterator[S3Bucket]:
    async with _open_bucket(s3_server) as (client, bucket):
        yield S3Bucket(s3_server, client, bucket)


@pytest.fixture
async def s3_dedicated(s3_dedicated_server: MotoS3Server) -> AsyncIterator[DedicatedS3Bucket]:
    async with _open_bucket(s3_dedicated_server) as (client, bucket):
        yield DedicatedS3Bucket(s3_dedicated_server, client, bucket)

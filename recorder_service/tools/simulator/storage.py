"""Writes recording objects to an S3-compatible bucket, as Daily does with a custom bucket."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aioboto3

from recorder_service.tools.simulator.config import SimulatorConfig

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


class RecordingWriter:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    async def write(self, files: list[tuple[str, bytes]]) -> None:
        # Daily's objects carry no extension and no useful Content-Type (reference §2, §10.11).
        for key, body in files:
            await self.client.put_object(Bucket=self.bucket, Key=key, Body=body)


@contextlib.asynccontextmanager
async def open_writer(config: SimulatorConfig) -> AsyncIterator[RecordingWriter | None]:
    """None when no bucket is configured: recordings then exist only in the API."""
    if config.s3_endpoint_url is None or config.s3_bucket is None:
        yield None
        return
    session = aioboto3.Session()
    async with session.client(
        "s3", endpoint_url=config.s3_endpoint_url, region_name=config.s3_region
    ) as client:
        yield RecordingWriter(client, config.s3_bucket)

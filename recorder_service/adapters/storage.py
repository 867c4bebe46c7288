"""The S3 bucket Daily writes recordings to: presigned playback URLs and reachability.

One aioboto3 client lives for the whole process (its connection pool is reused); build it
with `RecordingStorage.open(...)` from the composition root.

"S3 down → 503" without a round trip per playback: presigning is local computation in
botocore (SigV4 over the URL with the cached credentials; no request is sent), so a presigned
URL proves nothing about the store. `ensure_reachable()` answers from a recent successful
`ping()` (HeadBucket) younger than `reachability_ttl_s` and otherwise pings, sharing one
in-flight ping between concurrent callers. Trade-off: the store may have gone down up to
`reachability_ttl_s` ago and playback still answers 307; failures are never cached, so
recovery is seen on the next call. Callers that must be exact use `ping()` or a TTL of 0.

Presigned URLs are reused for up to a minute (adapters/presign_cache.py): each is signed for
its TTL plus that window, so a URL handed out always has at least the TTL asked for left.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from opentelemetry.trace import SpanKind

from recorder_service.adapters.presign_cache import PresignCache, reuse_width_s
from recorder_service.adapters.s3_models import lean_session
from recorder_service.errors import StorageUnavailable
from recorder_service.telemetry import Telemetry, disabled_telemetry

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client

# Connection refused fails at once; these bound a blackholed or hung endpoint.
DEFAULT_CONNECT_TIMEOUT_S = 2.0
DEFAULT_READ_TIMEOUT_S = 5.0
# One retry: enough to get past a pooled connection the server closed meanwhile.
DEFAULT_MAX_ATTEMPTS = 2
DEFAULT_REACHABILITY_TTL_S = 1.0

# HeadBucket needs s3:ListBucket, which a playback-only role (s3:GetObject) may lack:
# an AccessDenied still proves the store answers.
_REACHABLE_ERROR_CODES = {"403", "AccessDenied", "Forbidden"}
_MISSING_OBJECT_CODES = {"404", "NoSuchKey", "NotFound"}


class StorageNotConfigured(StorageUnavailable):
    """RECORDER_S3_BUCKET (or AWS credentials) is not set, so nothing can be served from S3.

    A StorageUnavailable, so it maps to 503 unless http/errors.py maps it on its own."""


class RecordingStorage:
    def __init__(
        self,
        client: S3Client,
        bucket: str | None,
        *,
        reachability_ttl_s: float = DEFAULT_REACHABILITY_TTL_S,
        monotonic: Callable[[], float] = time.monotonic,
        telemetry: Telemetry | None = None,
        presign_cache: PresignCache | None = None,
    ) -> None:
        self._presigned = presign_cache if presign_cache is not None else PresignCache()
        self._tracer = (telemetry or disabled_telemetry()).tracer
        self._client = client
        self.bucket = bucket
        self._reachability_ttl_s = reachability_ttl_s
        self._monotonic = monotonic
        self._last_ok_at: float | None = None
        self._probe: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        *,
        bucket: str | None,
        region: str,
        endpoint_url: str | None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        reachability_ttl_s: float = DEFAULT_REACHABILITY_TTL_S,
        telemetry: Telemetry | None = None,
    ) -> AsyncIterator[RecordingStorage]:
        config = AioConfig(
            signature_version="s3v4",
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            # S3-compatible stores (MinIO, moto) rarely resolve bucket.host virtual hosts.
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        # Credentials come from the standard AWS chain (env, profile, IRSA, instance role).
        # botocore's data loaded lean: this client's operations only (adapters/s3_models.py).
        session = aioboto3.Session(botocore_session=lean_session())
        async with session.client(
            "s3", region_name=region, endpoint_url=endpoint_url, config=config
        ) as client:
            yield cls(client, bucket, reachability_ttl_s=reachability_ttl_s, telemetry=telemetry)

    def _require_bucket(self) -> str:
        if not self.bucket:
            raise StorageNotConfigured("RECORDER_S3_BUCKET is not set; recordings cannot be served")
        return self.bucket

    async def presign_playback(
        self, key: str, *, ttl_s: int, content_type: str, filename: str | None = None
    ) -> str:
        # Daily's keys have no extension: the response overrides make S3 label the bytes
        # so a browser's media element plays them inline. No network I/O happens here.
        # A URL signed moments ago for the same object is reused (adapters/presign_cache.py):
        # it is signed for ttl_s + width and handed out only while younger than width.
        bucket = self._require_bucket()
        disposition = inline_disposition(filename)
        cache_key = (bucket, key, content_type, disposition, ttl_s)
        cached = self._presigned.get(cache_key)
        if cached is not None:
            return cached
        params = {
            "Bucket": bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": disposition,
        }
        try:
            # The span carries neither the key's signature nor the URL: both grant access.
            with self._tracer.start_as_current_span("s3.presign", attributes={"s3.bucket": bucket}):
                signed_at = self._presigned.now()
                url = await self._client.generate_presigned_url(
                    "get_object", Params=params, ExpiresIn=ttl_s + reuse_width_s(ttl_s)
                )
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise StorageNotConfigured("no AWS credentials found for the S3 store") from exc
        except BotoCoreError as exc:
            # Refreshable credentials (STS, instance role) may need the network to renew.
            raise StorageUnavailable("could not sign an S3 URL") from exc
        self._presigned.put(cache_key, url, signed_at)
        return url

    async def ping(self) -> None:
        bucket = self._require_bucket()
        try:
            with self._tracer.start_as_current_span(
                "s3.head_bucket", kind=SpanKind.CLIENT, attributes={"s3.bucket": bucket}
            ):
                await self._client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _error_code(exc) not in _REACHABLE_ERROR_CODES:
                self._last_ok_at = None
                raise StorageUnavailable(f"S3 bucket check failed ({_error_code(exc)})") from exc
        except BotoCoreError as exc:
            self._last_ok_at = None
            raise _unavailable(exc) from exc
        self._last_ok_at = self._monotonic()

    async def ensure_reachable(self) -> None:
        """Raise StorageUnavailable unless the store answered within reachability_ttl_s."""
        last_ok = self._last_ok_at
        if last_ok is not None and self._monotonic() - last_ok < self._reachability_ttl_s:
            return
        if self._probe is None:
            self._probe = asyncio.create_task(self.ping())
            self._probe.add_done_callback(self._forget_probe)
        # shield: one caller giving up (client disconnect) must not cancel the others' probe.
        await asyncio.shield(self._probe)

    def _forget_probe(self, task: asyncio.Task[None]) -> None:
        self._probe = None
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter was cancelled

    async def object_exists(self, key: str) -> bool:
        bucket = self._require_bucket()
        try:
            with self._tracer.start_as_current_span(
                "s3.head_object", kind=SpanKind.CLIENT, attributes={"s3.bucket": bucket}
            ):
                await self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING_OBJECT_CODES:
                return False
            raise StorageUnavailable(f"S3 object check failed ({_error_code(exc)})") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc) from exc
        return True

    async def delete_objects(self, keys: Iterable[str]) -> int:
        """Removes every key, one DeleteObject each (every S3-compatible store has it; not all
        have the multi-object delete). Returns once S3 confirmed them all: a key already gone is
        confirmed too (S3 answers 204 for it), so a retry repeats the whole list harmlessly.
        Raises StorageUnavailable on the first failure. In a versioned bucket (Daily requires
        versioning) this adds delete markers; the bucket's lifecycle rules must expire the
        noncurrent versions (docs/operations.md). Returns how many keys were confirmed."""
        remaining = list(keys)
        if not remaining:
            return 0  # nothing to remove (e.g. a failed recording): no bucket needed
        bucket = self._require_bucket()
        confirmed = 0
        for key in remaining:
            try:
                with self._tracer.start_as_current_span(
                    "s3.delete_object", kind=SpanKind.CLIENT, attributes={"s3.bucket": bucket}
                ):
                    await self._client.delete_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                raise StorageUnavailable(f"S3 deletion failed ({_error_code(exc)})") from exc
            except BotoCoreError as exc:
                raise _unavailable(exc) from exc
            confirmed += 1
        return confirmed


def inline_disposition(filename: str | None) -> str:
    if not filename:
        return "inline"
    # RFC 6266: a quoted ASCII fallback plus filename* for anything else.
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    encoded = urllib.parse.quote(filename, safe="")
    if fallback == filename:
        return f'inline; filename="{filename}"'
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))


def _unavailable(exc: BotoCoreError) -> StorageUnavailable:
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StorageNotConfigured("no AWS credentials found for the S3 store")
    # Connection refused/reset, DNS, connect or read timeouts: the store did not answer.
    return StorageUnavailable(f"S3 store unreachable ({type(exc).__name__})")

"""Playback redirects: `GET /v1/meetings/{id}/cloud-recording` (307 to a presigned S3 URL) per
second and latency, with a moto S3 server, against `GET /healthz` at the same concurrency in the
same run; and, separately, what presigning alone costs (`RecordingStorage.presign_playback`, in
this process; a repeated key is served from its reuse cache, so each URL here is a new key).

    uv run python benchmarks/playback.py [--quick] [--redis]

`--redis`: the rate limiter on Redis (127.0.0.1:6379), as deployed; without it the service
counts in-process. Background loops are off (event_cost.py runs them).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import uuid

import aioboto3
import aiohttp
import httpx
from harness import (
    AUTH,
    PLAYBACK_SECRET,
    REDIS_URL,
    bench_database,
    closed_loop,
    free_port,
    make_session,
    meeting_body,
    ready_event,
    redis_prefix,
    running,
    service_env,
    signed_headers,
    spawn_service,
)
from harness import run as harness_run
from moto.server import ThreadedMotoServer
from webhook_ingest import healthz

from recorder_service.adapters.storage import RecordingStorage
from recorder_service.client import mint_playback_token

CONCURRENCIES = (1, 8, 64)


async def presign_cost(endpoint: str, bucket: str, n: int) -> float:
    async with RecordingStorage.open(bucket=bucket, region="us-east-1", endpoint_url=endpoint) as storage:
        for _ in range(50):  # warm-up: credential resolution, endpoint rules
            await storage.presign_playback("k", ttl_s=3600, content_type="video/mp4")
        t0 = time.perf_counter()
        for i in range(n):
            await storage.presign_playback(f"bench/key-{i}", ttl_s=3600, content_type="video/mp4")
        return (time.perf_counter() - t0) / n


async def run(args: argparse.Namespace) -> None:
    duration_s = 2.0 if args.quick else 8.0
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        async with aioboto3.Session().client("s3", region_name="us-east-1", endpoint_url=endpoint) as s3:
            await s3.create_bucket(Bucket=bucket)
        with bench_database() as (db_url, _dsn):
            env = service_env(
                db_url,
                RECORDER_REDIS_PREFIX=redis_prefix(),
                RECORDER_S3_BUCKET=bucket,
                RECORDER_S3_ENDPOINT_URL=endpoint,
                **({"RECORDER_REDIS_URL": REDIS_URL} if args.redis else {}),
            )
            proc = spawn_service(env)
            async with running([proc]):
                meeting_id, room = str(uuid.uuid4()), f"play-{uuid.uuid4().hex[:8]}"
                async with httpx.AsyncClient(base_url=proc.url, timeout=30) as admin:
                    r = await admin.put(f"/v1/meetings/{meeting_id}", json=meeting_body(room), headers=AUTH)
                    assert r.status_code == 201, r.text
                    body = ready_event(room, time.time() - 3600)
                    r = await admin.post("/v1/daily/webhook", content=body, headers=signed_headers(body))
                    assert r.status_code == 200 and r.json()["state"] == "applied", r.text

                # As Reflector's pages do: one token, minted for the viewer, on every request.
                token = mint_playback_token(PLAYBACK_SECRET, meeting_id, int(time.time()) + 3600)

                async def redirect(session: aiohttp.ClientSession) -> int:
                    async with session.get(
                        f"/v1/meetings/{meeting_id}/cloud-recording",
                        params={"token": token},
                        allow_redirects=False,
                    ) as resp:
                        await resp.read()
                        return resp.status

                results = []
                for c in CONCURRENCIES:
                    async with make_session(c, proc.url) as session:
                        res = await closed_loop(
                            "playback redirect",
                            session,
                            redirect,
                            concurrency=c,
                            duration_s=duration_s,
                            ok=lambda status: status == 307,
                            service_pid=proc.pid,
                        )
                    print(res.row())
                    results.append(res)
                health = {}
                for c in CONCURRENCIES[1:]:
                    async with make_session(c, proc.url) as session:
                        health[c] = await closed_loop(
                            "GET /healthz",
                            session,
                            healthz,
                            concurrency=c,
                            duration_s=duration_s,
                            service_pid=proc.pid,
                        )
                    print(health[c].row())
        per_presign_s = await presign_cost(endpoint, bucket, 500 if args.quick else 3000)
        single = results[0]
        by_c = dict(zip(CONCURRENCIES, results, strict=True))
        print(
            f"redirects ÷ /healthz, same run: c=8 {by_c[8].rps / health[8].rps:.0%}, "
            f"c=64 {by_c[64].rps / health[64].rps:.0%}; redirects c=64 ÷ c=8 {by_c[64].rps / by_c[8].rps:.2f}"
        )
        print(f"presign_playback alone: {per_presign_s * 1e3:.3f} ms per URL (in-process, no network I/O)")
        print(
            f"share of a redirect at c=1: {per_presign_s / (single.pct_ms(0.5) / 1e3):.0%} of p50; "
            f"at c=64: {per_presign_s * results[-1].rps:.0%} of one core"
        )
    finally:
        moto.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 s per step")
    parser.add_argument("--redis", action="store_true", help="rate limiter on Redis, as deployed")
    harness_run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

"""Shared benchmark plumbing: a throw-away PostgreSQL database, service processes, Daily-style
signing and a closed-loop HTTP load generator. Everything talks to 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp
import httpx
import psycopg
from psycopg import sql

from recorder_service.adapters.db.migrate import upgrade

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get(
    "RECORDER_BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
PG_HOST = os.environ.get("RECORDER_BENCH_PG_HOST", "postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("RECORDER_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
INTERNAL_KEY = "bench-internal-key-0123456789abcdefghij"
AUTH = {"Authorization": f"Bearer {INTERNAL_KEY}"}
WEBHOOK_SECRET = base64.b64encode(b"bench-webhook-secret-0123456789ab").decode()
# Playback needs a token by default (RECORDER_PLAYBACK_AUTH=token); playback.py mints them.
PLAYBACK_SECRET = "bench-playback-secret-0123456789abcdef"  # noqa: S105 - a benchmark's own


# -- database ------------------------------------------------------------------------------


@contextlib.contextmanager
def bench_database() -> Iterator[tuple[str, str]]:
    """Yields (SQLAlchemy URL, libpq DSN) of a fresh, migrated database; dropped afterwards."""
    name = f"recorder_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"postgresql+psycopg://{PG_HOST}/{name}"
    dsn = PG_ADMIN_DSN.replace("dbname=postgres", f"dbname={name}")
    try:
        upgrade(url)
        yield url, dsn
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def redis_prefix() -> str:
    return f"recorder-bench:{uuid.uuid4().hex[:8]}:"


def service_env(db_url: str, daily_url: str = "http://127.0.0.1:9/v1", **extra: str) -> dict[str, str]:
    env = {
        "RECORDER_DATABASE_URL": db_url,
        "RECORDER_DAILY_API_URL": daily_url,
        "RECORDER_DAILY_API_KEY": "sim-key",
        "RECORDER_INTERNAL_API_KEY": INTERNAL_KEY,
        "RECORDER_DAILY_WEBHOOK_SECRETS": WEBHOOK_SECRET,
        "RECORDER_PLAYBACK_SECRET": PLAYBACK_SECRET,
        "RECORDER_BACKGROUND": "false",
        "RECORDER_LOG_LEVEL": "WARNING",
        # Every benchmark request comes from 127.0.0.1; the per-address limit would cap the run.
        "RECORDER_RATE_LIMIT_PER_MINUTE": "100000000",
    }
    env.update(extra)
    return env


# -- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Process:
    url: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes] | None = None

    def log_tail(self, size: int = 4000) -> str:
        if self.log is None:
            return ""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-size:]

    @property
    def pid(self) -> int:
        return self.popen.pid


def _child_env(env: dict[str, str]) -> dict[str, str]:
    inherited = {
        k: v for k, v in os.environ.items() if k.startswith(("AWS_", "PATH", "HOME", "UV_", "OTEL_"))
    }
    return {**inherited, "PYTHONPATH": str(REPO / "benchmarks"), **env}


@functools.cache
def warm_bytecode(optimize: str) -> None:
    """Compiles what `serve` imports at this optimization level once, before the first service
    starts: a service that compiles its modules itself keeps ~7 MB more (memory.py) and starts
    slower."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    modules = "recorder_service.cli, recorder_service.app, recorder_service.resources, uvicorn"
    subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-c", f"import {modules}"],
        env=env | {"PYTHONOPTIMIZE": optimize},
        cwd=REPO,
        check=True,
        timeout=120,
    )


def spawn_service(
    env: dict[str, str], *, server: str = "uvicorn", port: int | None = None, background: bool = False
) -> Process:
    """The service as its own OS process, as deployed: `recorder-service serve` (uvicorn) or granian.
    With `background`, its loops run as in production (outbox, sweeps, reconciler); the
    environment must then say RECORDER_BACKGROUND=true too."""
    port = port or free_port()
    # As the image runs it (Dockerfile); `--env PYTHONOPTIMIZE=0` in memory.py measures without.
    env = {"PYTHONOPTIMIZE": "2", **env}
    warm_bytecode(env["PYTHONOPTIMIZE"])
    if server == "uvicorn":
        command = [
            sys.executable,
            "-m",
            "recorder_service.cli",
            "serve",
            "--port",
            str(port),
            *(() if background else ("--no-background",)),
        ]
    elif server == "granian":
        command = [
            *("uv", "run", "--system-certs", "--quiet", "--with", "granian"),
            *("granian", "--interface", "asgi"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--loop", "uvloop"),
            *("--no-ws", "--log-level", "warning", "--factory", "asgi_entry:create"),
        ]
    else:
        raise ValueError(server)
    return spawn_process(command, env, port)


def spawn_process(command: list[str], env: dict[str, str], port: int) -> Process:
    # Logs go to a file, not a pipe: a pipe nobody reads fills up, and the service then blocks
    # on its next log line (its whole event loop with it).
    log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process)
    popen = subprocess.Popen(  # noqa: S603 (fixed argv)
        command, env=_child_env(env), cwd=REPO, stdout=subprocess.DEVNULL, stderr=log
    )
    return Process(f"http://127.0.0.1:{port}", popen, log)


def spawn_simulator(port: int | None = None, *extra_args: str) -> Process:
    """`recorder-service simulate-daily`; `extra_args` e.g. "--start-rate-limit", "5/5"."""
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "recorder_service.cli",
        "simulate-daily",
        "--port",
        str(port),
        *extra_args,
    ]
    popen = subprocess.Popen(  # noqa: S603 (fixed argv)
        command,
        env=_child_env({"RECORDER_DAILY_API_KEY": "sim-key", "RECORDER_LOG_LEVEL": "WARNING"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Process(f"http://127.0.0.1:{port}", popen)


async def wait_ready(proc: Process, path: str = "/readyz", timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if proc.popen.poll() is not None:
                err = proc.log_tail()
                raise RuntimeError(f"{proc.url} exited with {proc.popen.returncode}: {err[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{proc.url}{path}")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{proc.url} not ready")
            await asyncio.sleep(0.1)


def stop(proc: Process) -> None:
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(20)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait(5)


@contextlib.asynccontextmanager
async def running(procs: Sequence[Process], path: str = "/readyz") -> AsyncIterator[None]:
    try:
        await asyncio.gather(*(wait_ready(p, path) for p in procs))
        yield
    finally:
        for p in procs:
            stop(p)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- Daily-style webhooks ------------------------------------------------------------------


def signed_headers(body: bytes, secret_b64: str = WEBHOOK_SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    mac = hmac.new(base64.b64decode(secret_b64), timestamp.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": base64.b64encode(mac.digest()).decode(),
    }


def ready_event(room: str, start_ts: float, *, type_: str = "cloud") -> bytes:
    recording_id = str(uuid.uuid4())
    return json.dumps(
        {
            "version": "1.0.0",
            "type": "recording.ready-to-download",
            "id": f"evt-{uuid.uuid4()}",
            "event_ts": time.time(),
            "payload": {
                "type": type_,
                "recording_id": recording_id,
                "room_name": room,
                "start_ts": start_ts,
                "status": "finished",
                "max_participants": 2,
                "duration": 1834,
                "s3_key": f"bench/{room}/{recording_id}",
                "share_token": "x",
            },
        }
    ).encode()


def meeting_body(room: str, recording_type: str = "cloud") -> dict[str, Any]:
    return {
        "room_name": room,
        "recording_type": recording_type,
        "start_date": "2026-01-01T10:00:00Z",
        "end_date": "2099-01-01T10:00:00Z",
    }


# -- load generation -----------------------------------------------------------------------


@dataclass
class LoadResult:
    label: str
    concurrency: int
    count: int
    errors: int
    elapsed_s: float
    latencies_s: list[float]
    # CPU seconds the service process used during the run (when its pid was given).
    service_cpu_s: float | None = None
    # CPU seconds the load generator (this process) used meanwhile: it shares the machine.
    generator_cpu_s: float | None = None
    # CPU seconds the local PostgreSQL server used during the run (where it was measured).
    postgres_cpu_s: float | None = None

    @property
    def rps(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0

    def pct_ms(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def cpu_ms_per_request(self) -> float | None:
        return self._per_request_ms(self.service_cpu_s)

    @property
    def generator_cpu_ms_per_request(self) -> float | None:
        return self._per_request_ms(self.generator_cpu_s)

    @property
    def postgres_cpu_ms_per_request(self) -> float | None:
        return self._per_request_ms(self.postgres_cpu_s)

    def _per_request_ms(self, seconds: float | None) -> float | None:
        if seconds is None or not self.count:
            return None
        return seconds / self.count * 1000

    def row(self) -> str:
        cpu, generator, postgres = (
            self.cpu_ms_per_request,
            self.generator_cpu_ms_per_request,
            self.postgres_cpu_ms_per_request,
        )
        return (
            f"{self.label:<28} c={self.concurrency:<4} n={self.count:<6} err={self.errors:<4} "
            f"{self.rps:8.0f} req/s  p50 {self.pct_ms(0.5):7.2f} ms  p99 {self.pct_ms(0.99):7.2f} ms  "
            f"max {max(self.latencies_s, default=0) * 1000:7.2f} ms"
            + ("" if cpu is None else f"  service CPU {cpu:5.2f} ms/req")
            + ("" if generator is None else f"  generator CPU {generator:5.2f} ms/req")
            + ("" if postgres is None else f"  PostgreSQL CPU {postgres:5.2f} ms/req")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "concurrency": self.concurrency,
            "count": self.count,
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.pct_ms(0.5), 2),
            "p99_ms": round(self.pct_ms(0.99), 2),
            "max_ms": round(max(self.latencies_s, default=0) * 1000, 2),
            "service_cpu_ms_per_request": rounded(self.cpu_ms_per_request),
            "generator_cpu_ms_per_request": rounded(self.generator_cpu_ms_per_request),
            "postgres_cpu_ms_per_request": rounded(self.postgres_cpu_ms_per_request),
        }


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# The load generator is aiohttp, not httpx: on this machine httpx.AsyncClient itself saturates
# first (GET /healthz at 64 connections: httpx 131 req/s, p99 1.8 s; aiohttp 8,800 req/s).
Request = Callable[[aiohttp.ClientSession], Awaitable[int]]


def make_session(concurrency: int, base_url: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency + 8, force_close=False)
    return aiohttp.ClientSession(
        base_url=base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=30), auto_decompress=False
    )


async def closed_loop(
    label: str,
    session: aiohttp.ClientSession,
    request: Request,
    *,
    concurrency: int,
    duration_s: float,
    max_requests: int = 1_000_000,
    ok: Callable[[int], bool] = lambda status: status < 400,
    warmup_s: float = 0.3,
    service_pid: int | None = None,
) -> LoadResult:
    """`concurrency` senders, each sending its next request when the previous one is answered.
    With `service_pid`, also the CPU time that process used meanwhile (Linux /proc)."""
    await _drive(session, request, concurrency, warmup_s, max_requests, ok, [])
    latencies: list[float] = []
    cpu_before = cpu_seconds(service_pid) if service_pid else None
    generator_before = time.process_time()
    started = time.perf_counter()
    errors = await _drive(session, request, concurrency, duration_s, max_requests, ok, latencies)
    elapsed = time.perf_counter() - started
    generator = time.process_time() - generator_before
    cpu = cpu_seconds(service_pid) - cpu_before if service_pid and cpu_before is not None else None
    return LoadResult(label, concurrency, len(latencies), errors, elapsed, latencies, cpu, generator)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Runs a benchmark's main coroutine, on uvloop when `RECORDER_BENCH_LOOP` is not "asyncio": the
    load generator shares the 2 cores with the service, so its own CPU per request is kept small."""
    if os.environ.get("RECORDER_BENCH_LOOP", "uvloop") == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def _stat_fields(pid: int | str) -> tuple[str, list[str]]:
    """(command name, the fields after it) from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    head, _, rest = text.rpartition(")")
    return head.partition("(")[2], rest.split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = _stat_fields(pid)[1]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float | None:
    """User + system CPU time of the local PostgreSQL server: every live `postgres` process, plus
    what the postmaster collected from the backends that have exited (its children's times), so
    that a connection closed during a step still counts. None when no such process is visible
    (a server on another machine, or in a container this one cannot see into)."""
    live = 0
    reaped = 0
    seen = False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, fields = _stat_fields(entry.name)
        except OSError:  # gone between the listing and the read
            continue
        if name != "postgres":
            continue
        seen = True
        live += int(fields[11]) + int(fields[12])
        if _is_postmaster(fields[1]):
            reaped += int(fields[13]) + int(fields[14])
    if not seen:
        return None
    return (live + reaped) / os.sysconf("SC_CLK_TCK")


def _is_postmaster(parent_pid: str) -> bool:
    """A postgres process whose parent is not postgres is the postmaster."""
    try:
        return _stat_fields(parent_pid)[0] != "postgres"
    except OSError:
        return True


async def _drive(
    session: aiohttp.ClientSession,
    request: Request,
    concurrency: int,
    duration_s: float,
    max_requests: int,
    ok: Callable[[int], bool],
    latencies: list[float],
) -> int:
    deadline = time.perf_counter() + duration_s
    errors = 0
    budget = [max_requests]

    async def sender() -> None:
        nonlocal errors
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            status = await request(session)
            latencies.append(time.perf_counter() - t0)
            if not ok(status):
                errors += 1
                if errors <= 3:
                    print(f"  unexpected answer {status}", file=sys.stderr)

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return errors


def summary(values_s: Sequence[float]) -> str:
    ordered = sorted(values_s)

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"n={len(ordered)} mean {statistics.fmean(ordered) * 1000:.2f} ms  p50 {pct(0.5):.2f} ms  "
        f"p99 {pct(0.99):.2f} ms  max {ordered[-1] * 1000:.2f} ms"
    )

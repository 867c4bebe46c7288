"""Pytest helpers: the service as separate OS processes (replicas), started with the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]
    port: int

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


async def wait_ready(url: str, timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient() as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url} not ready")
            await asyncio.sleep(0.1)


# The replicas run as the image runs them (Dockerfile): no docstrings, no asserts.
OPTIMIZE = "2"
REPLICA_MODULES = (
    "recorder_service.cli",
    "recorder_service.app",
    "recorder_service.resources",
    "recorder_service.workers.main",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.lifespan.on",
)


@functools.cache
def warm_bytecode() -> None:
    """Compiles, once, what a replica imports at that optimization level: otherwise the first
    replicas of a fresh checkout each compile every module while a test waits for them."""
    subprocess.run(
        [sys.executable, "-c", f"import {', '.join(REPLICA_MODULES)}"],
        # Written even where the caller's environment says PYTHONDONTWRITEBYTECODE (the
        # replicas don't inherit it: they write their bytecode too).
        env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        | {"PYTHONOPTIMIZE": OPTIMIZE},
        check=True,
        timeout=120,
    )


def replica_env(env: dict[str, str]) -> dict[str, str]:
    """A replica's whole environment: PATH, the caller's AWS_* variables, the image's
    optimization level, then `env`; the bytecode for that level compiled first (once)."""
    warm_bytecode()
    return {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
        "PYTHONOPTIMIZE": OPTIMIZE,
        **env,
    }


def spawn(env: dict[str, str], *args: str, port: int | None = None) -> Replica:
    port = port or free_port()
    command = [sys.executable, "-m", "recorder_service.cli", *args]
    if args and args[0] == "serve":
        command += ["--port", str(port)]
    process = subprocess.Popen(
        command,
        env=replica_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Replica(f"http://127.0.0.1:{port}", process, port)


@contextlib.asynccontextmanager
async def replicas(env: dict[str, str], count: int, *args: str) -> AsyncIterator[list[Replica]]:
    started = [spawn(env, *(args or ("serve",))) for _ in range(count)]
    try:
        if not args or args[0] == "serve":
            await asyncio.gather(*(wait_ready(r.url) for r in started))
        yield started
    finally:
        for r in started:
            if r.process.poll() is None:
                r.process.send_signal(signal.SIGTERM)
        for r in started:
            try:
                await asyncio.to_thread(r.process.wait, 20)
            except subprocess.TimeoutExpired:
                r.process.kill()

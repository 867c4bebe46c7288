"""Pytest helpers for fault drills: restarting the machine's PostgreSQL and Redis, and a
summary of each drill's counts printed at the end of the run."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import psycopg
import pytest
import redis

from tests.plugins.database import PG_ADMIN_DSN

_REPORT: list[str] = []


def report(line: str) -> None:
    _REPORT.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("fault drills")
        for line in _REPORT:
            terminalreporter.write_line(line)


def _pg_version() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def _wait(check: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if callable(check):
                check()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def postgres(action: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", action],
        check=True,
        capture_output=True,
        timeout=60,
    )
    if action in ("start", "restart"):
        _wait(lambda: psycopg.connect(PG_ADMIN_DSN, connect_timeout=2).close())


def redis_stop() -> None:
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        client.execute_command("SHUTDOWN", "NOSAVE", "NOW", "FORCE")  # type: ignore[no-untyped-call]
    except redis.ConnectionError:
        pass  # shutdown closes the connection it was sent on
    finally:
        client.close()
    # Until the old server has exited, a new one cannot bind the port (and a readiness ping
    # would be answered by the dying one).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        probe = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5)
        try:
            probe.ping()
        except redis.ConnectionError:
            return
        finally:
            probe.close()
        time.sleep(0.05)
    raise TimeoutError("redis did not stop")


def redis_start() -> None:
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    _wait(lambda: redis.Redis(host="127.0.0.1", port=6379).ping())


@pytest.fixture
def restore_services() -> Iterator[None]:
    """Whatever a drill did, PostgreSQL and Redis run again afterwards."""
    try:
        yield
    finally:
        try:
            psycopg.connect(PG_ADMIN_DSN, connect_timeout=2).close()
        except psycopg.OperationalError:
            postgres("start")
        try:
            redis.Redis(host="127.0.0.1", port=6379).ping()
        except redis.ConnectionError:
            redis_start()

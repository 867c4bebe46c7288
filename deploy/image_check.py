"""The built image, run for real (deploy/image-check builds it, then runs this with `uv run`).

Outside the containers, on 127.0.0.1: this machine's PostgreSQL (a fresh database, dropped
afterwards) and Redis (a fresh key prefix, deleted afterwards), a moto S3 server, the Daily
simulator (`recorder-service simulate-daily`) writing recordings to that bucket, and a
receiver that checks every callback's Standard Webhooks signature. Inside containers of the
image, each with host networking, uid 10001 and a read-only root filesystem with a tmpfs
/tmp (what the Kubernetes manifests promise): `migrate`, two `serve` replicas and a `worker`.
Then one meeting from registration to playback, checked from outside; SIGTERM to a replica
under load (it must drain and exit 0 within the grace period); the demo's refusal.

Only the CLI and HTTP are used, never the project's modules: this checks the image from the
outside. Prints every step with its time since deploy/image-check started; exits 1 on the
first failure, after printing the containers' logs, and cleans up either way.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, TypeVar

import aioboto3
import httpx
import psycopg
import redis
from psycopg import sql
from standardwebhooks import Webhook, WebhookVerificationError

T = TypeVar("T")
Json = dict[str, Any]

PG_ADMIN_DSN = os.environ.get("IMAGE_CHECK_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
PG_URL_HOST = os.environ.get("IMAGE_CHECK_PG_HOST", "postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("IMAGE_CHECK_REDIS_URL", "redis://127.0.0.1:6379/0")
GRACE_SECONDS = 30  # terminationGracePeriodSeconds of deploy/k8s/deployment.yaml
READY_TIMEOUT_S = 90
# What the image adds to python:3.11-slim (deploy/README.md, "Image size"); about 115 MB now.
RUNTIME_BUDGET_MB = 150
T0 = int(os.environ.get("IMAGE_CHECK_T0_US") or time.time() * 1e6) / 1e6  # deploy/image-check's start


class CheckFailed(Exception):
    pass


def say(text: str, *, out: IO[str] = sys.stdout) -> None:
    print(f"[{time.time() - T0:6.1f}s] {text}", file=out, flush=True)


@dataclass
class Timeline:
    rows: list[tuple[str, float, str]] = field(default_factory=list)

    async def step(self, name: str, action: Callable[[], Awaitable[str]]) -> None:
        say(f"▶ {name}")
        began = time.monotonic()
        try:
            result = await action()
        except Exception as exc:
            self.rows.append((name, time.monotonic() - began, f"FAILED: {exc}"))
            raise CheckFailed(f"{name}: {exc}") from exc
        self.rows.append((name, time.monotonic() - began, result))
        say(f"  ✓ {result}")

    def summary(self) -> None:
        if not self.rows:
            return
        width = max(len(name) for name, _, _ in self.rows)
        print("\nIn-container flow", flush=True)
        for name, seconds, result in self.rows:
            print(f"  {name.ljust(width)}  {seconds:5.1f}s  {result}", flush=True)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(what: str, probe: Callable[[], Awaitable[T | None]], within: float) -> T:
    """Polls `probe` until it returns something other than None."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what}: not within {within:.0f} s")
        await asyncio.sleep(0.2)


# --- the container engine -------------------------------------------------------------------


class Engine:
    """podman or docker, with the flags every container of the check gets."""

    def __init__(self, argv: list[str], image: str, workdir: Path) -> None:
        self.argv = argv
        self.podman = Path(argv[0]).name == "podman"
        self.image = image
        self.workdir = workdir
        self.names: list[str] = []
        self.prefix = f"image-check-{os.getpid()}"

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(  # noqa: S603 (the engine named by deploy/image-check)
                [*self.argv, *args], capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise CheckFailed(f"`{args[0]}` of the engine took over {timeout:.0f} s") from exc
        if check and result.returncode != 0:
            raise CheckFailed(f"`{shlex.join(args)[:200]}` failed: {result.stderr.strip()[-800:]}")
        return result

    def run_flags(
        self, name: str, env: dict[str, str], network: str = "host", data: bool = False
    ) -> list[str]:
        """`data`: the engine gives the image's VOLUME /data a (writable) volume, as compose does."""
        env_file = self.workdir / f"{name}.env"
        env_file.touch(mode=0o600)  # secrets stay off command lines
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        flags = [
            f"--name={name}",
            f"--env-file={env_file}",
            # host: PostgreSQL, Redis and the fakes listen on the host's 127.0.0.1.
            f"--network={network}",
            # What deploy/k8s promises: read-only root, an emptyDir /tmp, no capabilities.
            "--read-only",
            "--tmpfs=/tmp:rw,size=64m,mode=1777",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            # The HEALTHCHECK is run by hand below (a timer needs systemd under podman).
            "--no-healthcheck",
        ]
        if self.podman:
            # No writable /run or /var/tmp either (nor /data unless asked): Kubernetes mounts only /tmp.
            flags += ["--read-only-tmpfs=false", *([] if data else ["--image-volume=ignore"])]
        return flags

    def container(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        self.names.append(name)
        return name

    def start(
        self, role: str, argv: list[str], env: dict[str, str], network: str = "host", data: bool = False
    ) -> str:
        name = self.container(role)
        flags = self.run_flags(name, env, network, data)
        self("run", "-d", *flags, f"--stop-timeout={GRACE_SECONDS}", self.image, *argv)
        return name

    def once(
        self, role: str, argv: list[str], env: dict[str, str], timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        name = self.container(role)
        return self(
            "run", "--rm", *self.run_flags(name, env), self.image, *argv, timeout=timeout, check=False
        )

    def state(self, name: str) -> tuple[str, int]:
        out = self("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split()
        return out[0], int(out[1])

    def logs(self, name: str, lines: int = 60) -> str:
        result = self("logs", "--tail", str(lines), name, check=False)
        return (result.stdout + result.stderr).strip()

    def remove_all(self) -> None:
        """Every container of the check, with its anonymous volumes (the --rm ones are gone)."""
        if not self.names:
            return
        # podman removes nothing of a list naming a missing container unless told to skip it.
        self("rm", "-f", "-v", *(["--ignore"] if self.podman else []), *self.names, check=False, timeout=120)
        left = [name for name in self.names if self("inspect", name, check=False).returncode == 0]
        if left:
            say(f"could not remove containers {left}", out=sys.stderr)


# --- outside the containers -----------------------------------------------------------------


class CallbackReceiver:
    """Reflector's side: a plain HTTP server that checks each callback's signature."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.events: list[Json] = []
        self.rejected: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = receiver.webhook.verify(body, dict(self.headers.items()))
                except WebhookVerificationError as exc:
                    with receiver.lock:
                        receiver.rejected.append(str(exc))
                    self.send_response(400)
                else:
                    with receiver.lock:
                        receiver.events.append(event)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callbacks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CallbackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def of_type(self, kind: str) -> list[Json]:
        with self.lock:
            return [e for e in self.events if e.get("type") == kind]


@contextlib.contextmanager
def process(name: str, argv: list[str], env: dict[str, str], workdir: Path) -> Iterator[Path]:
    """A helper server on the host; yields its log file."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            yield log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def database() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database: (name, SQLAlchemy URL); dropped afterwards."""
    name = f"recorder_image_check_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name, f"postgresql+psycopg://{PG_URL_HOST}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        say(f"dropped database {name}")


@contextlib.contextmanager
def redis_prefix() -> Iterator[str]:
    prefix = f"recorder-image-check:{uuid.uuid4().hex[:8]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
        say(f"deleted {len(keys)} Redis keys under {prefix}")


def helper_argv(name: str, module: str) -> list[str]:
    """A console script of the checkout's environment (`uv run` puts it on PATH)."""
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", module]


def playback_token(secret: str, meeting_id: str, ttl_s: int = 600) -> str:
    """CONTRACT §4: `<exp>.<sig>`, sig = unpadded base64url HMAC-SHA256 of "<meeting_id>.<exp>"."""
    exp = int(time.time()) + ttl_s
    digest = hmac.new(secret.encode(), f"{meeting_id}.{exp}".encode(), hashlib.sha256).digest()
    return f"{exp}." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# --- image facts ----------------------------------------------------------------------------

VENV_SIZES = r"""
import collections, importlib.metadata as md, json, os
venv = "/opt/venv"
site = venv + "/lib/python3.11/site-packages"
owner = {}  # file -> distribution, from each distribution's RECORD
for dist in md.distributions(path=[site]):
    for f in dist.files or ():
        owner[os.path.normpath(os.path.join(site, str(f)))] = dist.metadata["Name"]
def walk(top):
    for root, _, files in os.walk(top):
        for name in files:
            path = os.path.join(root, name)
            yield root, name, path, os.lstat(path).st_size
sizes = collections.Counter()
for root, name, path, size in walk(site):
    who = owner.get(path)
    if who is None and os.path.basename(root) == "__pycache__":  # compiled after install
        who = owner.get(os.path.join(os.path.dirname(root), name.split(".")[0] + ".py"))
    sizes[who or "(no distribution)"] += size
venv_size = sum(size for *_, size in walk(venv))
print(json.dumps({"venv": venv_size, "site": sum(sizes.values()), "packages": sizes}))
"""


def report_sizes(engine: Engine, base: str) -> None:
    def size(image: str) -> int:
        return int(engine("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())

    def history(image: str) -> list[tuple[int, str]]:
        """(size in bytes, instruction) of every layer, newest first."""
        if engine.podman:
            out = engine("image", "history", "--format", "json", image).stdout
            return [(int(row["size"]), str(row["CreatedBy"])) for row in json.loads(out)]
        fmt = "{{.Size}}\t{{.CreatedBy}}"
        out = engine("image", "history", "--human=false", "--no-trunc", "--format", fmt, image).stdout
        return [
            (int(size), created_by) for size, _, created_by in (r.partition("\t") for r in out.splitlines())
        ]

    image_size, base_size = size(engine.image), size(base)
    ours = history(engine.image)[: len(history(engine.image)) - len(history(base))]
    say(f"image {image_size / 1e6:.0f} MB = base {base_size / 1e6:.0f} MB + runtime layers:")
    for layer_size, created_by in ours:
        if layer_size:
            text = " ".join(created_by.replace("/bin/sh -c #(nop) ", "").split())
            print(f"    {layer_size / 1e6:7.1f} MB  {text[:100]}", flush=True)
    runtime = sum(s for s, _ in ours)
    print(f"    {runtime / 1e6:7.1f} MB  in all (budget {RUNTIME_BUDGET_MB} MB)", flush=True)
    result = engine(
        "run",
        "--rm",
        "--network=none",
        "--no-healthcheck",
        "--entrypoint=python",
        engine.image,
        "-c",
        VENV_SIZES,
    )
    venv = json.loads(result.stdout)
    packages = Counter({name: int(n) for name, n in venv["packages"].items()})
    say(f"/opt/venv {venv['venv'] / 1e6:.1f} MB (site-packages {venv['site'] / 1e6:.1f} MB), by package:")
    top = packages.most_common(20)
    for name, n in top:
        print(f"    {n / 1e6:6.1f} MB  {name}", flush=True)
    rest = packages.total() - sum(n for _, n in top)
    print(f"    {rest / 1e6:6.1f} MB  {len(packages) - len(top)} others", flush=True)
    require(
        runtime <= RUNTIME_BUDGET_MB * 1e6,
        f"the runtime layers take {runtime / 1e6:.1f} MB, over the {RUNTIME_BUDGET_MB} MB budget",
    )


# --- the check ------------------------------------------------------------------------------


@dataclass
class Stack:
    engine: Engine
    http: httpx.AsyncClient
    sim: str
    s3: str
    bucket: str
    receiver: CallbackReceiver
    env: dict[str, str]
    db_name: str
    api: dict[str, str] = field(default_factory=dict)  # role -> base URL
    names: dict[str, str] = field(default_factory=dict)  # role -> container name

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['RECORDER_INTERNAL_API_KEY']}"}

    async def control(self, method: str, path: str, body: Json | None = None) -> Any:
        response = await self.http.request(method, f"{self.sim}/_sim{path}", json=body)
        response.raise_for_status()
        return response.json()

    async def register(self, replica: str, meeting_id: str, room: str) -> int:
        now = datetime.now(UTC)
        body = {
            "room_name": room,
            "recording_type": "cloud",
            "start_date": now.isoformat(),
            "end_date": (now + timedelta(hours=1)).isoformat(),
        }
        response = await self.http.put(
            f"{self.api[replica]}/v1/meetings/{meeting_id}", json=body, headers=self.auth
        )
        require(response.status_code in (200, 201), f"register answered {response.status_code}")
        return response.status_code

    async def start(self, replica: str, meeting_id: str, kind: str) -> httpx.Response:
        return await self.http.post(
            f"{self.api[replica]}/v1/meetings/{meeting_id}/recordings/start", json={"type": kind}
        )

    def alive(self, role: str) -> None:
        status, code = self.engine.state(self.names[role])
        require(status == "running", f"container {role} is {status} (exit {code})")


async def wait_ready(stack: Stack, role: str) -> None:
    async def probe() -> bool | None:
        stack.alive(role)
        with contextlib.suppress(httpx.TransportError):
            if (await stack.http.get(f"{stack.api[role]}/readyz")).status_code == 200:
                return True
        return None

    await eventually(f"{role} /readyz", probe, READY_TIMEOUT_S)


async def flow(stack: Stack, t: Timeline) -> None:
    engine, http = stack.engine, stack.http
    service_argv = ["recorder-service", "serve", "--host", "127.0.0.1", "--port"]
    serve_env = {**stack.env, "RECORDER_BACKGROUND": "false"}  # the worker container runs the loops

    async def migrate() -> str:
        result = engine.once("migrate", ["recorder-service", "migrate"], stack.env)
        require(result.returncode == 0, f"migrate exited {result.returncode}: {result.stderr[-800:]}")
        dsn = PG_ADMIN_DSN.replace("dbname=postgres", f"dbname={stack.db_name}")
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            tables = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()
        require(row is not None, "no alembic_version row after migrate")
        assert row is not None and tables is not None
        return f"schema at {row[0]}, {tables[0]} tables"

    async def start_containers() -> str:
        for role in ("api-a", "api-b"):
            port = free_port()
            stack.api[role] = f"http://127.0.0.1:{port}"
            stack.names[role] = engine.start(role, [*service_argv, str(port)], serve_env)
        stack.names["worker"] = engine.start("worker", ["recorder-service", "worker"], stack.env)
        # The image's own CMD (serve on 0.0.0.0:8000) with its embedded default, SQLite on /data,
        # in a network of its own (8000 may be taken on this machine): for the HEALTHCHECK.
        default_env = {
            "RECORDER_DAILY_API_URL": "http://127.0.0.1:9/v1",
            "RECORDER_BACKGROUND": "false",
            "RECORDER_PLAYBACK_SECRET": stack.env["RECORDER_PLAYBACK_SECRET"],
        }
        stack.names["default"] = engine.start("default", [], default_env, network="none", data=True)
        await asyncio.gather(wait_ready(stack, "api-a"), wait_ready(stack, "api-b"))
        stack.alive("worker")
        return f"api-a {stack.api['api-a']}, api-b {stack.api['api-b']} ready; worker running"

    async def posture() -> str:
        name = stack.names["api-a"]
        probe = (
            "import os, pathlib\n"
            "print(os.getuid(), os.getgid())\n"
            "print(pathlib.Path('/proc/1/cmdline').read_bytes().split(b'\\0')[0].decode())\n"
            "pathlib.Path('/tmp/probe').write_text('ok')\n"
            "for path in ('/probe', '/opt/venv/probe', '/data/probe', '/var/tmp/probe'):\n"
            "    try:\n"
            "        pathlib.Path(path).write_text('x')\n"
            "    except OSError as exc:\n"
            "        print(path, exc.strerror)\n"
            "    else:\n"
            "        print(path, 'WRITABLE')\n"
        )
        lines = engine("exec", name, "python", "-c", probe).stdout.splitlines()
        require(lines[0] == "10001 10001", f"runs as uid/gid {lines[0]}, not 10001 10001")
        require(lines[1].endswith("tini"), f"PID 1 is {lines[1]}, not tini")
        writable = [line for line in lines[2:] if line.endswith("WRITABLE")]
        require(not writable, f"writable outside /tmp: {writable}")
        read_only = engine("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name).stdout.strip()
        require(read_only == "true", f"ReadonlyRootfs is {read_only}")
        health = json.loads(
            engine("image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", engine.image).stdout
        )
        require(health[0] == "CMD", f"unexpected HEALTHCHECK {health}")

        async def healthy() -> bool | None:
            stack.alive("default")
            return (
                True
                if engine("exec", stack.names["default"], *health[1:], check=False).returncode == 0
                else None
            )

        await eventually("the HEALTHCHECK of the image's default command", healthy, READY_TIMEOUT_S)
        return (
            "uid/gid 10001, PID 1 tini, only /tmp writable (/, /opt/venv, /data: read-only); "
            "default CMD (SQLite on /data) passes the HEALTHCHECK"
        )

    async def daily_webhook() -> str:
        url = f"{stack.api['api-a']}/v1/daily/webhook"
        result = engine.once(
            "webhook", ["recorder-service", "daily", "webhook", "ensure", "--url", url], stack.env
        )
        require(result.returncode == 0, f"exited {result.returncode}: {result.stderr[-800:]}")
        return f"`recorder-service daily webhook ensure` from the image: {result.stdout.strip()[:120]}"

    meeting_id = str(uuid.uuid4())
    room = f"image-check-{uuid.uuid4().hex[:10]}"

    async def register() -> str:
        status = await stack.register("api-a", meeting_id, room)
        require(status == 201, f"register answered {status}, expected 201")
        return f"meeting {meeting_id[:8]}… registered on api-a for room {room}"

    async def join_and_start() -> str:
        for user in ("alice", "bob"):
            await stack.control("POST", f"/rooms/{room}/join", {"user_name": user})
        calls = [
            stack.start(replica, meeting_id, kind)
            for kind in ("raw-tracks", "cloud")
            for replica in ("api-a", "api-b")
            for _browser in ("alice", "bob")
        ]
        answers = await asyncio.gather(*calls)
        statuses = Counter(
            f"{a.status_code} {a.json().get('type')} {a.json().get('status')}" for a in answers
        )
        require(all(a.status_code == 200 for a in answers), f"start answers {dict(statuses)}")
        for kind in ("raw-tracks", "cloud"):
            require(
                statuses[f"200 {kind} started"] == 1, f"not exactly one {kind} 'started': {dict(statuses)}"
            )
        starts: Counter[str] = Counter()
        for s in (await stack.control("GET", "/calls"))["starts"]:
            if s["room_name"] == room:
                starts[s["type"]] += s["count"]
        require(starts == Counter({"raw-tracks": 1, "cloud": 1}), f"Daily received starts {dict(starts)}")
        return f"{len(answers)} concurrent starts on both replicas → {dict(statuses)}; Daily got one start per type"

    async def talk_and_end() -> str:
        await asyncio.sleep(2.0)
        await stack.control("POST", f"/rooms/{room}/end")
        return "both participants left after 2 s"

    async def ready() -> str:
        async def probe() -> Json | None:
            response = await http.get(
                f"{stack.api['api-b']}/v1/meetings/{meeting_id}/recordings", headers=stack.auth
            )
            body: Json = response.json()
            recordings = body.get("recordings", [])
            if len(recordings) == 2 and all(r["status"] == "ready" for r in recordings):
                return body
            return None

        body = await eventually("both recordings ready", probe, 60)
        raw = next(r for r in body["recordings"] if r["type"] == "raw-tracks")
        deliveries = await stack.control("GET", "/webhook-deliveries")
        codes = Counter(d["status_code"] for d in deliveries)
        require(set(codes) == {200}, f"webhook deliveries answered {dict(codes)}")
        return (
            f"{len(deliveries)} webhooks (all 200) → cloud ready ({body['cloud_recording_duration']} s), "
            f"raw-tracks ready ({len(raw['tracks'])} tracks), read on api-b"
        )

    async def callback() -> str:
        async def probe() -> Json | None:
            events = [
                e
                for e in stack.receiver.of_type("recording.raw_tracks_ready")
                if e["data"]["meeting_id"] == meeting_id
            ]
            return events[0] if events else None

        event = await eventually("recording.raw_tracks_ready callback", probe, 60)
        require(not stack.receiver.rejected, f"receiver rejected signatures: {stack.receiver.rejected}")
        data = event["data"]
        require(data["bucket"] == stack.bucket and data["track_keys"], f"callback data {data}")
        session = aioboto3.Session(
            aws_access_key_id=stack.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=stack.env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        async with session.client("s3", endpoint_url=stack.s3) as s3:
            heads = [await s3.head_object(Bucket=stack.bucket, Key=key) for key in data["track_keys"]]
        sizes = [head["ContentLength"] for head in heads]
        require(all(sizes), f"empty track objects in S3: {sizes}")
        return f"worker delivered a verified recording.raw_tracks_ready: {len(data['track_keys'])} audio tracks in S3"

    async def playback() -> str:
        # RECORDER_PLAYBACK_AUTH=token (CONTRACT §4): no token, 401; a valid one, the redirect.
        url = f"{stack.api['api-b']}/v1/meetings/{meeting_id}/cloud-recording"
        anonymous = await http.get(url)
        require(anonymous.status_code == 401, f"playback without a token answered {anonymous.status_code}")
        redirect = await http.get(
            url, params={"token": playback_token(stack.env["RECORDER_PLAYBACK_SECRET"], meeting_id)}
        )
        require(
            redirect.status_code == 307, f"playback answered {redirect.status_code}: {redirect.text[:200]}"
        )
        media = await http.get(redirect.headers["location"])
        require(media.status_code == 200 and bool(media.content), f"S3 answered {media.status_code}")
        content_type = media.headers.get("content-type")
        require(content_type == "video/mp4", f"S3 served Content-Type {content_type}")
        return (
            f"api-b: no token 401; token 307 → presigned URL → {len(media.content)} bytes of {content_type}"
        )

    async def openapi() -> str:
        response = await http.get(f"{stack.api['api-b']}/schema/openapi.json")
        require(response.status_code == 200, f"answered {response.status_code}")
        return f"{len(response.json()['paths'])} paths"

    await t.step("migrate (fresh database)", migrate)
    await t.step("serve x2 + worker", start_containers)
    await t.step("uid, read-only root, HEALTHCHECK", posture)
    await t.step("Daily webhook", daily_webhook)
    await t.step("register meeting", register)
    await t.step("join, starts on both replicas", join_and_start)
    await t.step("talk, then leave", talk_and_end)
    await t.step("Daily webhooks → ready", ready)
    await t.step("raw-tracks callback", callback)
    await t.step("playback redirect", playback)
    await t.step("OpenAPI document", openapi)
    await t.step("SIGTERM api-a under load", lambda: sigterm_under_load(stack))
    await t.step("SIGTERM api-b and worker", lambda: stop_the_rest(stack))
    await t.step("demo from the image", lambda: demo_refuses(stack))


async def sigterm_under_load(stack: Stack) -> str:
    """A start held 3 s by Daily is in flight on api-a when it gets SIGTERM, while clients
    keep both replicas busy: the held start must get its answer, api-a must exit 0 within the
    grace period and never answer an error, api-b must keep answering everything."""
    engine = stack.engine
    meeting_id, room = str(uuid.uuid4()), f"image-check-{uuid.uuid4().hex[:10]}"
    await stack.register("api-b", meeting_id, room)
    await stack.control("POST", f"/rooms/{room}/join", {"user_name": "carol"})
    await stack.control("POST", "/latency", {"operation": "start_recording", "latency_s": 3.0})
    outcomes: dict[str, Counter[str]] = {"api-a": Counter(), "api-b": Counter()}
    signal_sent_at = float("inf")
    stop = asyncio.Event()

    async def load(replica: str) -> None:
        # A new connection per request, as a load balancer's would be. An outcome counts as
        # "after" when it arrives once SIGTERM is on its way.
        async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            while not stop.is_set():
                try:
                    response = await client.get(
                        f"{stack.api[replica]}/v1/meetings/{meeting_id}/recordings", headers=stack.auth
                    )
                    outcome = str(response.status_code)
                except httpx.TransportError as exc:
                    outcome = type(exc).__name__
                    await asyncio.sleep(0.05)
                phase = "after" if time.monotonic() >= signal_sent_at else "before"
                outcomes[replica][f"{phase} {outcome}"] += 1

    loaders = [asyncio.create_task(load(r)) for r in ("api-a", "api-a", "api-b", "api-b")]
    try:

        async def busy() -> bool | None:
            return True if min(outcomes[r]["before 200"] for r in outcomes) >= 3 else None

        await eventually("both replicas answering the clients", busy, 30)
        in_flight = asyncio.create_task(stack.start("api-a", meeting_id, "raw-tracks"))
        await asyncio.sleep(1.0)
        require(not in_flight.done(), "the held start answered before SIGTERM")
        signal_sent_at = time.monotonic()
        # In threads, so the clients keep going while the engine works.
        await asyncio.to_thread(engine, "kill", "--signal", "TERM", stack.names["api-a"])
        waited = await asyncio.to_thread(engine, "wait", stack.names["api-a"], timeout=GRACE_SECONDS + 10)
        exited_after = time.monotonic() - signal_sent_at
        code = int(waited.stdout.strip().splitlines()[-1])
        answer = await in_flight
        await asyncio.sleep(0.5)  # api-b keeps serving after api-a is gone
    finally:
        stop.set()
        await asyncio.gather(*loaders, return_exceptions=True)
        await stack.control("POST", "/latency", {"operation": "start_recording", "latency_s": 0.0})
    require(
        answer.status_code == 200 and answer.json().get("status") == "started",
        f"the in-flight start got {answer.status_code} {answer.text[:200]}",
    )
    require(code == 0, f"api-a exited {code} after SIGTERM")
    require(exited_after < GRACE_SECONDS, f"api-a took {exited_after:.1f} s to exit")
    a, b = outcomes["api-a"], outcomes["api-b"]
    # Once SIGTERM is sent, api-a may refuse or close connections it has not read a request
    # from yet (its listening socket is closed; in Kubernetes the preStop sleep keeps new
    # ones away), but it never answers with an error.
    require(a["before 200"] > 0 and set(a) - {"before 200"} <= _STOPPING, f"api-a {dict(a)}")
    require(set(b) == {"before 200", "after 200"}, f"api-b {dict(b)}")
    return (
        f"in-flight start answered 200 started; api-a exited 0 after {exited_after:.1f} s "
        f"(grace {GRACE_SECONDS} s); api-a {dict(a)}; api-b {dict(b)}"
    )


_STOPPING = {"after 200"} | {
    f"after {e.__name__}" for e in (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)
}


async def stop_the_rest(stack: Stack) -> str:
    codes = {}
    for role in ("api-b", "worker"):
        began = time.monotonic()
        stack.engine("kill", "--signal", "TERM", stack.names[role])
        out = stack.engine("wait", stack.names[role], timeout=GRACE_SECONDS + 10).stdout
        codes[role] = (int(out.strip().splitlines()[-1]), time.monotonic() - began)
    require(all(code == 0 for code, _ in codes.values()), f"exit codes {codes}")
    return ", ".join(f"{role} exited 0 after {seconds:.1f} s" for role, (_, seconds) in codes.items())


async def demo_refuses(stack: Stack) -> str:
    result = stack.engine.once("demo", ["recorder-service", "demo"], {})
    lines = result.stderr.strip().splitlines()
    require(result.returncode != 0, "the demo ran in the image (moto is a development dependency)")
    require(len(lines) == 1 and "checkout" in lines[0], f"the demo's refusal is not one clear line: {lines}")
    return f"exit {result.returncode}: {lines[0]}"


@contextlib.asynccontextmanager
async def outside(workdir: Path, engine: Engine, http: httpx.AsyncClient) -> AsyncIterator[Stack]:
    """PostgreSQL, Redis, moto S3, the Daily simulator and the callback receiver."""
    with contextlib.ExitStack() as stack:
        db_name, db_url = stack.enter_context(database())
        prefix = stack.enter_context(redis_prefix())
        aws = {
            "AWS_ACCESS_KEY_ID": "image-check",
            "AWS_SECRET_ACCESS_KEY": "image-check",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        host_env = {k: v for k, v in os.environ.items() if not k.startswith(("RECORDER_", "AWS_"))}
        s3, sim = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        bucket = "image-check-recordings"
        daily_key = secrets.token_urlsafe(24)
        moto = [*helper_argv("moto_server", "moto.server"), "-H", "127.0.0.1", "-p", s3.rsplit(":", 1)[1]]
        simulator = [
            *helper_argv("recorder-service", "recorder_service.cli"),
            "simulate-daily",
            *("--host", "127.0.0.1", "--port", sim.rsplit(":", 1)[1]),
            *("--s3-endpoint-url", s3, "--s3-bucket", bucket),
        ]
        logs = [
            stack.enter_context(process("moto", moto, host_env, workdir)),
            stack.enter_context(
                process(
                    "simulator", simulator, {**host_env, **aws, "RECORDER_DAILY_API_KEY": daily_key}, workdir
                )
            ),
        ]
        callback_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        receiver = stack.enter_context(CallbackReceiver(callback_secret))
        try:

            async def up(url: str) -> bool | None:
                with contextlib.suppress(httpx.TransportError):
                    await http.get(url)
                    return True
                return None

            await eventually("moto S3 server", lambda: up(s3), 30)
            await eventually("Daily simulator", lambda: up(f"{sim}/_sim/calls"), 30)
            created = await http.put(f"{s3}/{bucket}")
            require(created.status_code == 200, f"creating the bucket answered {created.status_code}")
            env = {
                "RECORDER_DATABASE_URL": db_url,
                "RECORDER_REDIS_URL": REDIS_URL,
                "RECORDER_REDIS_PREFIX": prefix,
                "RECORDER_DAILY_API_URL": f"{sim}/v1",
                "RECORDER_DAILY_API_KEY": daily_key,
                "RECORDER_DAILY_WEBHOOK_SECRETS": base64.b64encode(secrets.token_bytes(32)).decode(),
                "RECORDER_INTERNAL_API_KEY": secrets.token_urlsafe(32),
                "RECORDER_S3_BUCKET": bucket,
                "RECORDER_S3_REGION": "us-east-1",
                "RECORDER_S3_ENDPOINT_URL": s3,
                "RECORDER_CALLBACK_URL": receiver.url,
                "RECORDER_CALLBACK_SECRET": callback_secret,
                "RECORDER_CLOUD_START": "server",
                # Playback tokens (CONTRACT §4), minted by playback_token() as Reflector does.
                "RECORDER_PLAYBACK_AUTH": "token",
                "RECORDER_PLAYBACK_SECRET": secrets.token_urlsafe(36),
                "RECORDER_LOG_FORMAT": "text",
                **aws,
            }
            say(f"outside: database {db_name}, Redis prefix {prefix}, moto S3 {s3}, Daily simulator {sim}")
            yield Stack(engine, http, sim, s3, bucket, receiver, env, db_name)
        except BaseException:
            for path in logs:
                tail = path.read_text(errors="replace").strip().splitlines()[-20:]
                if tail:
                    print(f"\n--- {path.stem} (last {len(tail)} lines)", file=sys.stderr)
                    print("\n".join(tail), file=sys.stderr)
            raise


def print_container_logs(engine: Engine) -> None:
    for name in engine.names:
        if engine("inspect", name, check=False).returncode == 0:
            print(f"\n--- container {name} (last lines)\n{engine.logs(name)}", file=sys.stderr)


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", required=True, help='e.g. "podman --runtime runc" or "docker"')
    parser.add_argument("--image", required=True)
    parser.add_argument("--base", required=True, help="the image it was built on (for the layer sizes)")
    args = parser.parse_args()
    t = Timeline()
    with tempfile.TemporaryDirectory(prefix="image-check-") as tmp:
        engine = Engine(shlex.split(args.engine), args.image, Path(tmp))
        try:
            report_sizes(engine, args.base)
            async with httpx.AsyncClient(timeout=30) as http, outside(Path(tmp), engine, http) as stack:
                try:
                    await flow(stack, t)
                except BaseException:
                    print_container_logs(engine)
                    raise
                finally:
                    engine.remove_all()
                    say(f"removed {len(engine.names)} containers")
        except CheckFailed as exc:
            t.summary()
            say(f"FAILED: {exc}", out=sys.stderr)
            return 1
    t.summary()
    say("image check passed")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

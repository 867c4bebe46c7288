"""Pre-rollout experiment: how Daily answers the recording starts the service relies on.

Checks the instanceId rules the design rests on (reference §4, §10): cloud and raw-tracks
sharing an instanceId, distinct instanceIds, repeated and concurrent starts of one instanceId.
Starts only succeed while someone is in a live call in the room. Everything the probe may have
started is stopped again, also when a step fails or the run is interrupted (Ctrl-C)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, TextIO

from recorder_service.adapters.daily.client import DailyClient, StartType
from recorder_service.core.models import instance_id_for
from recorder_service.errors import DailyActiveStream, DailyError, DailyNotHosting, DailyRateLimited

Outcome = Literal[
    "started", "active-stream", "not-hosting", "rate-limited", "error", "stopped", "not-running"
]
Action = Literal["start", "stop"]
InstanceKey = tuple[StartType, str]

STEP_SAME_ID = "a same-id"
STEP_DISTINCT_IDS = "b distinct-ids"
STEP_REPEAT = "c repeat-seq"
STEP_CONCURRENT = "d repeat-concurrent"
STEP_CLEANUP = "e cleanup"
_DETAIL_MAX = 100  # table column only; findings quote Daily's answer in full


@dataclass(frozen=True)
class ProbeCall:
    step: str
    action: Action
    type: StartType
    instance_id: str
    outcome: Outcome
    status_code: int | None = None
    error_type: str | None = None
    info: str | None = None

    @property
    def short_id(self) -> str:
        return self.instance_id[:8]

    @property
    def detail(self) -> str:
        if self.status_code is None and self.error_type is None and self.info is None:
            return ""
        if self.status_code is None:
            text = f"no answer: {self.info or ''}"
        else:
            text = f"HTTP {self.status_code} {self.error_type or '-'}: {self.info or ''}"
        return text


@dataclass
class ProbeReport:
    room: str
    calls: list[ProbeCall] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    completed: bool = False

    def starts(self, step: str) -> list[ProbeCall]:
        return [c for c in self.calls if c.step == step and c.action == "start"]

    @property
    def hosting(self) -> bool:
        """False when every start was answered "not hosting": nothing was learned."""
        starts = [c for c in self.calls if c.action == "start"]
        return any(c.outcome != "not-hosting" for c in starts)

    @property
    def failed_stops(self) -> list[ProbeCall]:
        """Stops that may have left a recording running (and billing)."""
        return [c for c in self.calls if c.action == "stop" and c.outcome == "error"]

    @property
    def auth_failed(self) -> bool:
        return any(c.status_code in (400, 401, 403) and c.error_type in _AUTH_ERRORS for c in self.calls)


_AUTH_ERRORS = {"authentication-error", "authorization-header-error", "forbidden-error"}


class _Probe:
    def __init__(self, daily: DailyClient, room: str, out: TextIO, start_interval_s: float) -> None:
        self._daily = daily
        self._room = room
        self._out = out
        self._start_interval_s = start_interval_s
        self.report = ProbeReport(room=room)
        # Instances Daily may be recording: definitely started, or a start whose answer we
        # never got (in flight when cancelled, timeout, connection error). All get a stop.
        self._started: dict[InstanceKey, str] = {}
        self._in_flight: Counter[InstanceKey] = Counter()
        self._in_doubt: dict[InstanceKey, str] = {}
        self._starts_sent = 0
        self._noted_not_hosting = False

    async def start(self, step: str, type: StartType, instance_id: str, *, paced: bool = True) -> ProbeCall:
        # Daily allows ≈1 start/s per domain (5 per 5 s): pace sequential starts.
        if paced and self._starts_sent and self._start_interval_s > 0:
            await asyncio.sleep(self._start_interval_s)
        self._starts_sent += 1
        key: InstanceKey = (type, instance_id)
        self._in_flight[key] += 1
        try:
            await self._daily.start_recording(self._room, type=type, instance_id=instance_id)
        except DailyError as exc:
            call = _failed_call(step, "start", type, instance_id, exc)
            if exc.status_code is None or exc.status_code >= 500:
                self._in_doubt.setdefault(key, step)  # no clear answer: it may have started
        else:
            call = ProbeCall(step, "start", type, instance_id, "started")
            self._started.setdefault(key, step)
        # Not in a finally: a cancelled start stays in flight and is stopped at cleanup.
        self._in_flight[key] -= 1
        self.report.calls.append(call)
        if call.outcome == "not-hosting" and not self._noted_not_hosting:
            self._noted_not_hosting = True
            self._out.write(_NOT_HOSTING_NOTE.format(room=self._room))
            self._out.flush()
        return call

    async def stop_all(self, step: str) -> None:
        in_flight = [key for key, n in self._in_flight.items() if n > 0]
        for key in dict.fromkeys([*self._started, *self._in_doubt, *in_flight]):
            definite = key in self._started
            type, instance_id = key
            try:
                await self._daily.stop_recording(self._room, type=type, instance_id=instance_id)
            except DailyError as exc:
                call = _failed_call(step, "stop", type, instance_id, exc)
                code = exc.status_code
                # 400 = "no active recording": it already ended (idle timeout, meeting over) or,
                # for a start whose answer we never got, never began. Either way nothing leaks.
                if code is not None and (code == 400 or (not definite and code < 500)):
                    call = dataclasses.replace(call, outcome="not-running")
            else:
                call = ProbeCall(step, "stop", type, instance_id, "stopped")
            # Forgotten only once answered: a stop cut short by Ctrl-C is retried by the final cleanup.
            self._started.pop(key, None)
            self._in_doubt.pop(key, None)
            self._in_flight.pop(key, None)
            self.report.calls.append(call)


_NOT_HOSTING_NOTE = (
    "NOTE: Daily says room {room!r} is not hosting a call. Starts only work while someone is in a "
    "live call there (Daily may need up to ~15 s after the first join to register it). The probe "
    "continues so every answer is recorded, but its conclusions are inconclusive: join the room "
    "in a browser, wait ~20 s, and rerun.\n"
)


def _failed_call(step: str, action: Action, type: StartType, instance_id: str, exc: DailyError) -> ProbeCall:
    outcome: Outcome
    if isinstance(exc, DailyNotHosting):
        outcome = "not-hosting"
    elif isinstance(exc, DailyActiveStream):
        outcome = "active-stream"
    elif isinstance(exc, DailyRateLimited):
        outcome = "rate-limited"
    else:
        outcome = "error"
    info = exc.info if exc.status_code is not None else str(exc)
    return ProbeCall(step, action, type, instance_id, outcome, exc.status_code, exc.error_type, info)


async def run_probe(
    daily: DailyClient,
    room: str,
    *,
    out: TextIO,
    concurrency: int = 5,
    repeats: int = 3,
    start_interval_s: float = 1.0,
) -> ProbeReport:
    """`daily` should not retry (max_attempts=1): a retried start would hide Daily's first answer.

    Each step stops its own sessions before the next begins, so at most two run at once and a
    per-room instance cap (max_streaming_instances_per_room, default unknown) cannot pass for
    an instanceId rule."""
    probe = _Probe(daily, room, out, start_interval_s)
    out.write(f"Probing Daily recording starts in room {room!r}\n")
    try:
        same = str(uuid.uuid4())
        await probe.start(STEP_SAME_ID, "cloud", same)
        await probe.start(STEP_SAME_ID, "raw-tracks", same)
        await probe.stop_all(STEP_SAME_ID)

        # The production derivation: cloud = the meeting's UUID, raw-tracks = uuid5 of it.
        meeting_id = str(uuid.uuid4())
        await probe.start(STEP_DISTINCT_IDS, "cloud", instance_id_for(meeting_id, "cloud"))
        await probe.start(STEP_DISTINCT_IDS, "raw-tracks", instance_id_for(meeting_id, "raw-tracks"))
        await probe.stop_all(STEP_DISTINCT_IDS)

        repeated = instance_id_for(str(uuid.uuid4()), "raw-tracks")
        for _ in range(repeats):
            await probe.start(STEP_REPEAT, "raw-tracks", repeated)
        await probe.stop_all(STEP_REPEAT)

        # Let the start rate-limit window drain so the burst meets Daily's dedup, not its limiter.
        await asyncio.sleep(start_interval_s * concurrency)
        racing = instance_id_for(str(uuid.uuid4()), "raw-tracks")
        # A TaskGroup (not gather) cancels the siblings if one fails, so no start is still in
        # flight when the cleanup below sends its stops.
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(probe.start(STEP_CONCURRENT, "raw-tracks", racing, paced=False))
        await probe.stop_all(STEP_CONCURRENT)
        probe.report.completed = True
    finally:
        # Step (e): whatever is still (possibly) running after a failure or Ctrl-C.
        await probe.stop_all(STEP_CLEANUP)
        report = probe.report
        if report.completed:
            report.recommendations = recommend(report)
        write_report(report, out)
    return report


def write_report(report: ProbeReport, out: TextIO) -> None:
    headers = ("step", "call", "type", "instanceId", "outcome", "detail")
    rows = [(c.step, c.action, c.type, c.short_id, c.outcome, _clip(c.detail)) for c in report.calls]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    out.write("\n" + line(headers) + "\n")
    out.write(line(tuple("-" * w for w in widths)) + "\n")
    for row in rows:
        out.write(line(row) + "\n")
    out.write("\n")
    if not report.completed:
        out.write("Probe interrupted: the table is partial; no recommendation.\n")
    else:
        out.write("Findings and recommendation:\n")
        for text in report.recommendations:
            out.write(f"- {text}\n")
    for call in report.failed_stops:
        out.write(
            f"WARNING: could not stop {call.type} instance {call.instance_id} ({call.detail}); "
            f"stop it by hand: POST /rooms/{report.room}/recordings/stop "
            f'{{"type": "{call.type}", "instanceId": "{call.instance_id}"}}\n'
        )
    out.flush()


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


def recommend(report: ProbeReport) -> list[str]:
    if not report.hosting:
        return [
            "every start answered 'not hosting': nothing about instanceIds was learned. "
            "Join the room in a browser first, wait ~20 s, then rerun."
        ]
    notes = [
        _same_id_finding(report.starts(STEP_SAME_ID)),
        _distinct_ids_finding(report.starts(STEP_DISTINCT_IDS)),
        _repeat_finding(report.starts(STEP_REPEAT)),
        _concurrent_finding(report.starts(STEP_CONCURRENT)),
    ]
    if any(c.outcome == "rate-limited" for c in report.calls):
        notes.append(
            "some starts were rate-limited (429, ≈1 start/s per domain): rerun with more spacing; "
            "the service must send one start per meeting and type, not one per participant."
        )
    if any(c.outcome == "not-hosting" for c in report.calls):
        notes.append(
            "some starts answered 'not hosting' although others worked: the call was not yet (or "
            "no longer) registered; the service's not-hosting retry budget (~10-20 s) is needed."
        )
    if _as_designed(report):
        notes.append(
            "Consistent with the service's design: cloud = meeting UUID, raw-tracks = "
            "uuid5(a1b2c3d4-e5f6-7890-abcd-ef1234567890, meeting_id); one start per meeting and "
            "type (DB claim + Redis lock); 'has an active stream' counts as already active."
        )
    else:
        notes.append(
            "Observations DIFFER from what the service assumes (see the findings above): review "
            "docs/DAILYCO_TEST.md before rollout."
        )
    return notes


def _answer(call: ProbeCall) -> str:
    return f"{call.outcome} ({call.detail})" if call.detail else call.outcome


def _same_id_finding(calls: list[ProbeCall]) -> str:
    if len(calls) != 2:
        return "same instanceId for cloud and raw-tracks: not run."
    cloud, raw = calls
    prefix = "same instanceId for cloud and raw-tracks"
    if cloud.outcome != "started":
        return f"{prefix}: inconclusive, the cloud start itself answered {_answer(cloud)}."
    if raw.outcome == "error":
        return (
            f"{prefix}: rejected ({raw.detail}) → use different deterministic instanceIds "
            "(cloud = meeting UUID, raw-tracks = uuid5 of it)."
        )
    if raw.outcome == "active-stream":
        return (
            f"{prefix}: rejected as 'has an active stream' → must use different instanceIds, or a "
            "raw-tracks start would be taken for 'already active' while only cloud records."
        )
    if raw.outcome == "started":
        return (
            f"{prefix}: ACCEPTED, contrary to what Reflector observed in production; distinct "
            "instanceIds still work and stay the safe choice."
        )
    return f"{prefix}: inconclusive, raw-tracks answered {_answer(raw)}."


def _distinct_ids_finding(calls: list[ProbeCall]) -> str:
    prefix = "different instanceIds (cloud = uuid, raw-tracks = uuid5 of it)"
    if len(calls) != 2:
        return f"{prefix}: not run."
    if all(c.outcome == "started" for c in calls):
        return f"{prefix}: both started → cloud and raw-tracks run side by side with distinct ids."
    failed = [c for c in calls if c.outcome != "started"]
    answers = "; ".join(f"{c.type}: {_answer(c)}" for c in failed)
    return (
        f"{prefix}: NOT both started ({answers}) → check the room/domain recordings_bucket "
        "(raw-tracks needs a custom S3 bucket) and max_streaming_instances_per_room (must be ≥ 2)."
    )


def _repeat_finding(calls: list[ProbeCall]) -> str:
    prefix = "repeated raw-tracks starts, same instanceId, sequential"
    if len(calls) < 2:
        return f"{prefix}: not run (needs ≥ 2 starts)."
    first, rest = calls[0], calls[1:]
    if first.outcome != "started":
        return f"{prefix}: inconclusive, the first start answered {_answer(first)}."
    outcomes = Counter(c.outcome for c in rest)
    if outcomes["active-stream"] == len(rest):
        return f"{prefix}: answered 'has an active stream' → safe to treat as already active."
    if outcomes["started"]:
        return (
            f"{prefix}: {outcomes['started']} repeat(s) STARTED again → Daily does not dedupe per "
            "instanceId; the service-side single start (DB claim + Redis lock) is mandatory."
        )
    odd = next(c for c in rest if c.outcome != "active-stream")
    return (
        f"{prefix}: a repeat answered {_answer(odd)} without 'has an active stream' → the service "
        "would report it as a Daily failure (502); its error classification must be adjusted."
    )


def _concurrent_finding(calls: list[ProbeCall]) -> str:
    prefix = f"{len(calls)} concurrent raw-tracks starts, same instanceId"
    if not calls:
        return f"{prefix}: not run."
    outcomes = Counter(c.outcome for c in calls)
    started, active = outcomes["started"], outcomes["active-stream"]
    if started == 1 and active == len(calls) - 1:
        return (
            f"{prefix}: exactly one started, {active} answered 'has an active stream' → Daily "
            "dedupes even under races; the service still sends one start (DB claim + Redis lock) "
            "to stay under the start rate limit."
        )
    if started > 1:
        return (
            f"{prefix}: {started} STARTED → Daily does not dedupe racing starts; the service-side "
            "single start (DB claim + Redis lock) is mandatory."
        )
    if started == 0:
        answers = ", ".join(f"{n} x {o}" for o, n in outcomes.items())
        return f"{prefix}: none started ({answers}) → inconclusive."
    answers = ", ".join(f"{n} x {o}" for o, n in outcomes.items())
    return f"{prefix}: one started, the others answered {answers} → see the table."


def _as_designed(report: ProbeReport) -> bool:
    same = report.starts(STEP_SAME_ID)
    distinct = report.starts(STEP_DISTINCT_IDS)
    repeat = report.starts(STEP_REPEAT)
    racing = report.starts(STEP_CONCURRENT)
    return (
        [c.outcome for c in same][:1] == ["started"]
        and all(c.outcome in ("error", "active-stream") for c in same[1:])
        and bool(distinct)
        and all(c.outcome == "started" for c in distinct)
        and [c.outcome for c in repeat][:1] == ["started"]
        and all(c.outcome == "active-stream" for c in repeat[1:])
        and sum(c.outcome == "started" for c in racing) == 1
        and all(c.outcome in ("started", "active-stream") for c in racing)
    )

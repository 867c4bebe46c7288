"""In-memory model of one Daily domain: rooms, meetings, participants, recordings.

Pure and synchronous (no I/O): operations mutate the model and queue the webhook events and
finished recordings they cause; the runtime drains both. Running in one event loop, each
operation is atomic, so concurrent starts of one instanceId see each other."""

from __future__ import annotations

import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from recorder_service.tools.simulator.config import SimulatorConfig
from recorder_service.tools.simulator.errors import DailyError, invalid_request, not_found
from recorder_service.tools.simulator.model import (
    FAKE_MP4,
    FAKE_WEBM,
    Event,
    Meeting,
    Participant,
    Recording,
    Room,
    family,
)


class SimState:
    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.rooms: dict[str, Room] = {}
        self.recordings: dict[str, Recording] = {}
        self.pending_events: list[Event] = []
        self.pending_finished: list[Recording] = []
        self._start_times: deque[float] = deque()
        self._event_ids: set[str] = set()

    # -- rooms and participants ------------------------------------------------------------
    def room(self, name: str) -> Room:
        """Rooms referenced by control calls or starts exist implicitly."""
        if name not in self.rooms:
            self.rooms[name] = Room(name=name, id=str(uuid.uuid4()), created_at=self.clock())
        return self.rooms[name]

    def create_room(self, name: str | None, privacy: str, properties: dict[str, Any]) -> Room:
        name = name or secrets.token_hex(6)
        if name in self.rooms:
            raise invalid_request(f"a room named {name} already exists")
        room = self.room(name)
        room.api_created, room.privacy, room.config = True, privacy, properties
        return room

    def delete_room(self, name: str) -> None:
        if name not in self.rooms:
            raise not_found(f"room {name} not found")
        self.end_meeting(name)
        del self.rooms[name]

    def join(self, room_name: str, user_name: str, user_id: str | None) -> str:
        room, now = self.room(room_name), self.clock()
        session_id = str(uuid.uuid4())
        person = Participant(session_id, user_id or session_id, user_name, now)
        room.participants[session_id] = person
        if room.meeting is None:
            room.meeting = Meeting(id=str(uuid.uuid4()), start_ts=now)
            payload = {"start_ts": round(now, 3), "meeting_id": room.meeting.id, "room": room_name}
            self._emit("meeting.started", f"mtg-start-{room.meeting.id}-{int(now)}", payload)
        for rec in self._running(room_name):
            rec.track_starts.setdefault(session_id, now)
            rec.max_participants = max(rec.max_participants, len(room.participants))
        self._emit("participant.joined", f"ptcpt-join-{session_id}-{int(now * 1000)}", _person(room, person))
        return session_id

    def leave(self, room_name: str, session_id: str) -> None:
        room = self.room(room_name)
        person = room.participants.pop(session_id, None)
        if person is None:
            raise not_found(f"participant {session_id} is not in room {room_name}")
        now = self.clock()
        payload = _person(room, person) | {"duration": round(now - person.joined_at, 2)}
        self._emit("participant.left", f"ptcpt-left-{session_id}-{int(now * 1000)}", payload)
        if not room.participants:
            self._close_meeting(room)

    def end_meeting(self, room_name: str) -> None:
        """Everyone is ejected; running recordings finish; meeting.ended follows at once (Daily
        may wait up to 20 s for reconnects)."""
        room = self.room(room_name)
        for session_id in list(room.participants):
            self.leave(room_name, session_id)
        if room.meeting is not None:
            self._close_meeting(room)

    def _close_meeting(self, room: Room) -> None:
        for rec in self._running(room.name):
            self._finish(rec)
        meeting, now = room.meeting, self.clock()
        if meeting is None:
            return
        room.meeting = None
        payload: dict[str, Any] = {"start_ts": round(meeting.start_ts, 3), "end_ts": round(now, 3)}
        payload |= {"meeting_id": meeting.id, "room": room.name}
        self._emit("meeting.ended", f"mtg-end-{meeting.id}-{int(now)}", payload)

    def is_hosting(self, room_name: str) -> bool:
        room = self.rooms.get(room_name)
        if room is None or room.meeting is None or not room.participants:
            return False
        return self.clock() - room.meeting.start_ts >= self.config.hosting_delay_s

    # -- recordings --------------------------------------------------------------------------
    def check_start_rate(self) -> None:
        """Every start request counts, successful or not, like an API gateway's limiter."""
        if self.config.start_rate_limit is None:
            return
        limit, window_s = self.config.start_rate_limit
        now = self.clock()
        while self._start_times and now - self._start_times[0] >= window_s:
            self._start_times.popleft()
        if len(self._start_times) >= limit:
            raise DailyError(429, "rate-limit-error", "too many requests, please slow down")
        self._start_times.append(now)

    def start_recording(
        self,
        room_name: str,
        recording_type: str,
        instance_id: str,
        layout: dict[str, Any] | None,
        via: str,
        started_by: str | None = None,
    ) -> Recording:
        if not self.is_hosting(room_name):
            raise not_found(f"room {room_name} does not seem to be hosting a call currently")
        for rec in self._running(room_name):
            if rec.instance_id != instance_id:
                continue
            if family(rec.type) == family(recording_type):
                raise invalid_request(f"room {room_name} has an active stream for instance {instance_id}")
            # Invented text: Daily rejects the mix, its wording is unknown. It must not contain
            # "has an active stream", which callers treat as "already running".
            raise invalid_request(
                f"instance {instance_id} in room {room_name} is in use by a {rec.type} recording; "
                "cloud and raw-tracks sessions need distinct instanceIds"
            )
        room, now = self.room(room_name), self.clock()
        assert room.meeting is not None  # is_hosting checked it
        first = next(iter(room.participants))
        rec = Recording(
            id=str(uuid.uuid4()),
            room_name=room_name,
            type=recording_type,
            instance_id=instance_id,
            start_ts=now,
            mtg_session_id=room.meeting.id,
            started_by=started_by or first,
            layout=layout,
            via=via,
            max_participants=len(room.participants),
            track_starts=dict.fromkeys(room.participants, now),
        )
        self.recordings[rec.id] = rec
        payload: dict[str, Any] = {"recording_id": rec.id, "action": "start-cloud-recording"}
        if recording_type != "raw-tracks":
            payload["layout"] = layout or {"preset": "default"}
        payload |= {"started_by": rec.started_by, "instance_id": instance_id, "start_ts": int(now)}
        self._emit("recording.started", f"rec-start-{instance_id}-{int(now)}", payload)
        return rec

    def stop_recording(self, room_name: str, recording_type: str, instance_id: str) -> Recording:
        for rec in self._running(room_name):
            if rec.instance_id == instance_id and family(rec.type) == family(recording_type):
                self._finish(rec)
                return rec
        raise invalid_request(f"no active recording found for room {room_name}")

    def fail_recording(self, recording_id: str, error_msg: str) -> Recording:
        rec = self.get_recording(recording_id)
        now = self.clock()
        if rec.status == "in-progress":
            rec.status, rec.error_msg = "canceled", error_msg
        payload: dict[str, Any] = {"action": "clourd-recording-err", "error_msg": error_msg}
        payload["instance_id"] = rec.instance_id
        payload |= {"room_name": rec.room_name, "timestamp": round(now, 3)}
        self._emit("recording.error", f"rec-err-{rec.instance_id}-{int(now)}", payload)
        return rec

    def get_recording(self, recording_id: str) -> Recording:
        rec = self.recordings.get(recording_id)
        if rec is None:
            raise not_found(f"recording {recording_id} not found")
        return rec

    def delete_recording(self, recording_id: str) -> None:
        self.get_recording(recording_id)
        del self.recordings[recording_id]

    def ready_event(self, rec: Recording) -> Event:
        payload: dict[str, Any] = {
            "type": rec.type,
            "recording_id": rec.id,
            "room_name": rec.room_name,
            "start_ts": int(rec.start_ts),
            "status": "finished",
            "max_participants": rec.max_participants,
            "duration": rec.duration,
            "s3_key": rec.s3key,
            "share_token": rec.share_token,
        }
        if rec.type == "raw-tracks":
            payload["tracks"] = rec.tracks
        return self._event(
            "recording.ready-to-download", f"rec-rtd-{rec.instance_id}-{int(self.clock())}", payload
        )

    def _finish(self, rec: Recording) -> None:
        rec.status = "finished"
        rec.duration = max(1, round(self.clock() - rec.start_ts))
        prefix = f"{self.config.domain_name}/{rec.room_name}/{int(rec.start_ts * 1000)}"
        rec.s3key = prefix
        if rec.type == "raw-tracks":
            for session_id, track_start in rec.track_starts.items():
                # Tracks start a little after the recording (reference §2: ≈200 ms).
                for kind, media, offset_ms in (("audio", "cam-audio", 259), ("video", "cam-video", 384)):
                    key = f"{prefix}-{session_id}-{media}-{int(track_start * 1000) + offset_ms}"
                    rec.files.append((key, FAKE_WEBM))
                    rec.tracks.append({"type": kind, "s3Key": key, "size": len(FAKE_WEBM)})
        else:
            rec.files.append((prefix, FAKE_MP4))
        self.pending_finished.append(rec)

    def _running(self, room_name: str) -> list[Recording]:
        return [r for r in self.recordings.values() if r.room_name == room_name and r.status == "in-progress"]

    # -- events ------------------------------------------------------------------------------
    def _emit(self, event_type: str, event_id: str, payload: dict[str, Any]) -> None:
        self.pending_events.append(self._event(event_type, event_id, payload))

    def _event(self, event_type: str, event_id: str, payload: dict[str, Any]) -> Event:
        # Ids imitate Daily's formats but must stay unique; receivers treat them as opaque.
        unique, n = event_id, 1
        while unique in self._event_ids:
            n += 1
            unique = f"{event_id}-{n}"
        self._event_ids.add(unique)
        return Event(event_type, unique, payload)

    def drain(self) -> tuple[list[Event], list[Recording]]:
        events, finished = self.pending_events, self.pending_finished
        self.pending_events, self.pending_finished = [], []
        return events, finished


def _person(room: Room, person: Participant) -> dict[str, Any]:
    return {
        "room": room.name,
        "session_id": person.session_id,
        "user_id": person.user_id,
        "user_name": person.user_name,
        "joined_at": round(person.joined_at, 3),
        "will_eject_at": None,
        "owner": False,
        "permissions": {
            "hasPresence": True,
            "canSend": ["video", "audio", "screenVideo", "screenAudio"],
            "canReceive": {"base": True},
            "canAdmin": [],
        },
    }

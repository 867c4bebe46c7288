"""The simulated Daily domain's data: rooms, meetings, participants, recordings, events."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

# Daily's internal default instanceId (reference §4): used when a start omits it, refused when passed.
RESERVED_INSTANCE_ID = "c3df927c-f738-4471-a2b7-066fa7e95a6b"
RECORDING_TYPES = ("cloud", "raw-tracks", "cloud-audio-only")
# An MP4 starts with an `ftyp` box; readers sniffing the object see a plausible file.
FAKE_MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 4096
FAKE_WEBM = b"\x1a\x45\xdf\xa3" + b"\x00" * 1024


@dataclass
class Participant:
    session_id: str
    user_id: str
    user_name: str
    joined_at: float


@dataclass
class Meeting:
    id: str
    start_ts: float


@dataclass
class Room:
    name: str
    id: str
    created_at: float
    api_created: bool = False
    privacy: str = "public"
    config: dict[str, Any] = field(default_factory=dict)
    participants: dict[str, Participant] = field(default_factory=dict)
    meeting: Meeting | None = None


@dataclass
class Recording:
    id: str
    room_name: str
    type: str
    instance_id: str
    start_ts: float
    mtg_session_id: str
    started_by: str
    layout: dict[str, Any] | None
    via: str  # "rest" or "client"
    max_participants: int
    share_token: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    status: str = "in-progress"
    duration: int | None = None
    s3key: str | None = None
    tracks: list[dict[str, Any]] = field(default_factory=list)
    # participant session id -> when its tracks start (raw-tracks files are per participant)
    track_starts: dict[str, float] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    error_msg: str | None = None


@dataclass(frozen=True)
class Event:
    type: str
    id: str
    payload: dict[str, Any]


def family(recording_type: str) -> str:
    """cloud-audio-only is a cloud session; only raw-tracks differs."""
    return "raw-tracks" if recording_type == "raw-tracks" else "cloud"

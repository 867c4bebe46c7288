"""Every lifecycle the service keeps, as enums, and the one mapping from a recording's
internal status to what the API shows."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, assert_never


class RecordingStatus(StrEnum):
    """One Daily recording session of a meeting and type.

    starting -> recording -> (finishing) -> ready | failed; a claim whose start Daily refused is
    deleted, not kept. `finishing` is internal: Daily has ended the session (everyone left),
    its ready-to-download has not arrived yet, and the next start begins a new session.
    Any of them -> deleted (a deletion request, retention, or a cloud recording of a meeting
    whose video is off): never available again, whatever Daily reports later; its objects are
    removed from the bucket by a deletion job (DeletionState)."""

    STARTING = "starting"
    RECORDING = "recording"
    FINISHING = "finishing"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"


# What GET /v1/meetings/{id}/recordings may show: the contract's list, nothing else.
ApiRecordingStatus = Literal["starting", "recording", "ready", "failed", "deleted"]

# A running session of (meeting, type): at most one exists (the database's unique index).
ACTIVE_STATUSES: tuple[RecordingStatus, ...] = (RecordingStatus.STARTING, RecordingStatus.RECORDING)
# Sessions Daily has accepted and not yet reported finished.
UNFINISHED_STATUSES: tuple[RecordingStatus, ...] = (RecordingStatus.RECORDING, RecordingStatus.FINISHING)


def api_status(status: RecordingStatus) -> ApiRecordingStatus:
    """The only place an internal status becomes an API one."""
    match status:
        case RecordingStatus.STARTING:
            return "starting"
        case RecordingStatus.RECORDING | RecordingStatus.FINISHING:
            return "recording"
        case RecordingStatus.READY:
            return "ready"
        case RecordingStatus.FAILED:
            return "failed"
        case RecordingStatus.DELETED:
            return "deleted"
        case _:
            assert_never(status)


class InboxState(StrEnum):
    # An assignment, not a docstring: `python -OO` (the image) keeps it for the OpenAPI document.
    __doc__ = "A stored Daily webhook (or a recording found by the reconciler)."

    PENDING = "pending"  # stored, not applied yet
    APPLIED = "applied"
    ORPHAN = "orphan"  # no registered meeting matches it yet: retried when one registers
    IGNORED = "ignored"  # a type we do not act upon
    UNPARSEABLE = "unparseable"  # signed, but not a Daily event we can read: kept for inspection


# States the apply (and the sweep) still works on.
APPLICABLE_STATES: tuple[InboxState, ...] = (InboxState.PENDING, InboxState.ORPHAN)


class CallbackState(StrEnum):
    # An assignment, not a docstring: `python -OO` (the image) keeps it for the OpenAPI document.
    __doc__ = "An outbox row: a callback to Reflector."

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # the retry schedule ran out


class DeletionState(StrEnum):
    # An assignment, not a docstring: `python -OO` (the image) keeps it for the OpenAPI document.
    __doc__ = "A deletion job: the S3 objects of one recording (or its video tracks) to remove."

    WAITING = "waiting"  # the recording is still being recorded: its keys come with its ready event
    PENDING = "pending"  # keys known, removal due or being retried
    DONE = "done"  # S3 confirmed every removal

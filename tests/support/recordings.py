"""Recording rows written straight into the database, for tests that set up a state no request
reaches directly."""

from __future__ import annotations

import uuid
from typing import Any

from recorder_service.core.models import Recording, RecordingType, instance_id_for
from recorder_service.core.statuses import RecordingStatus


def own_session(
    meeting_id: str, rec_type: RecordingType, status: RecordingStatus, **fields: Any
) -> Recording:
    """A session of `meeting_id` as this service's own start call records it: a new id and the
    deterministic Daily instanceId of the meeting and type; `fields` set the rest."""
    return Recording(
        id=str(uuid.uuid4()),
        meeting_id=meeting_id,
        type=rec_type,
        instance_id=instance_id_for(meeting_id, rec_type),
        status=status,
        **fields,
    )

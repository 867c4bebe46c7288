"""The status vocabulary (core/statuses.py): every internal status maps to one the contract allows."""

from __future__ import annotations

from typing import get_args

import pytest

from recorder_service.core.statuses import (
    ACTIVE_STATUSES,
    UNFINISHED_STATUSES,
    ApiRecordingStatus,
    RecordingStatus,
    api_status,
)

# GET /v1/meetings/{id}/recordings: `status` is one of these and nothing else, ever.
CONTRACT_STATUSES = {"starting", "recording", "ready", "failed", "deleted"}


def test_the_api_vocabulary_is_the_contracts() -> None:
    assert set(get_args(ApiRecordingStatus)) == CONTRACT_STATUSES


@pytest.mark.parametrize("status", list(RecordingStatus))
def test_every_internal_status_shows_as_a_contract_status(status: RecordingStatus) -> None:
    assert api_status(status) in CONTRACT_STATUSES


def test_finishing_is_internal_and_shows_as_recording() -> None:
    assert api_status(RecordingStatus.FINISHING) == "recording"


def test_statuses_that_are_their_own_api_name() -> None:
    for status in list(RecordingStatus):
        if status is not RecordingStatus.FINISHING:
            assert api_status(status) == status.value


def test_a_running_session_is_unfinished_or_a_claim() -> None:
    assert set(ACTIVE_STATUSES) <= {RecordingStatus.STARTING, *UNFINISHED_STATUSES}
    assert RecordingStatus.READY not in ACTIVE_STATUSES + UNFINISHED_STATUSES
    assert RecordingStatus.FAILED not in ACTIVE_STATUSES + UNFINISHED_STATUSES

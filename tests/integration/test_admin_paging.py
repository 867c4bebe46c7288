"""Keyset paging of the operator lists: GET /v1/daily/events and GET /v1/callbacks with `cursor`."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from recorder_service.adapters.db.inbox import InboxRecord
from recorder_service.core.models import OutgoingCallback
from recorder_service.core.statuses import InboxState
from recorder_service.resources import Resources
from tests.integration.test_webhooks import T0, register
from tests.plugins.service import AUTH, RunningService, ServiceFactory, service_env
from tests.support.webhooks import envelope, post_webhook, raw_tracks, ready_payload

# Microseconds on purpose: a cursor that lost them would skip or repeat rows at the boundary.
NOW = datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)
UNREGISTERED_ROOM = "nobody-registered-this"


@pytest.fixture
async def svc(db_url: str, service_factory: ServiceFactory) -> AsyncIterator[RunningService]:
    async with service_factory(service_env(db_url)) as running:
        yield running


def resources(svc: RunningService) -> Resources:
    res: Resources = svc.app_state.resources  # type: ignore[attr-defined]
    return res


async def get_page(svc: RunningService, path: str, **params: str | int) -> dict[str, Any]:
    r = await svc.client.get(path, params=params, headers=AUTH)
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


async def all_pages(svc: RunningService, path: str, key: str, **params: str | int) -> list[list[str]]:
    """The ids of every page, following next_cursor until it is null."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await get_page(svc, path, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([row["id"] for row in page[key]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str)
        assert len(pages) < 50, "paging does not end"


async def post_orphan(svc: RunningService, n: int) -> str:
    """A ready-to-download for a room no meeting has: stored and kept as an orphan."""
    payload = ready_payload(room=UNREGISTERED_ROOM, start_ts=T0.timestamp() + n)
    body = envelope("recording.ready-to-download", payload, f"evt-orphan-{n}")
    r = await post_webhook(svc.client, body)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "orphan"
    return str(body["id"])


async def post_ignored(svc: RunningService, n: int) -> str:
    body = envelope("brand.new-event", {"x": n}, f"evt-ignored-{n}")
    r = await post_webhook(svc.client, body)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ignored"
    return str(body["id"])


async def store_events(svc: RunningService, rows: list[tuple[str, datetime, str]]) -> None:
    """(id, received_at, state) rows written straight through the repository."""
    async with resources(svc).db.transaction() as uow:
        for event_id, received_at, state in rows:
            record = InboxRecord(
                id=event_id,
                event_type="brand.new-event",
                state=InboxState(state),
                body=b"{}",
                received_at=received_at,
            )
            assert await uow.inbox.add_if_absent(record)


async def store_callbacks(svc: RunningService, rows: list[tuple[str, datetime, str]]) -> None:
    """(id, created_at, state) rows written straight through the repository."""
    async with resources(svc).db.transaction() as uow:
        for callback_id, created_at, _state in rows:
            callback = OutgoingCallback(
                id=callback_id,
                event_type="recording.raw_tracks_ready",
                meeting_id="m-1",
                recording_id=f"rec-{callback_id}",
                body=b"{}",
                created_at=created_at,
            )
            assert await uow.callbacks.enqueue(callback)
    # Delivered and dead rows: only deliveries make them, so their state is set directly.
    async with resources(svc).db.engine.begin() as conn:
        for callback_id, _created_at, state in rows:
            await conn.execute(
                text("UPDATE callbacks SET state = :state WHERE id = :id"),
                {"state": state, "id": callback_id},
            )


def newest_first(rows: list[tuple[str, datetime, str]], state: str | None = None) -> list[str]:
    wanted = [r for r in rows if state is None or r[2] == state]
    return [r[0] for r in sorted(wanted, key=lambda r: (r[1], r[0]), reverse=True)]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def cursor_of(value: object) -> str:
    return b64(json.dumps(value).encode())


# ---------------------------------------------------------------- events


async def test_seven_events_come_in_pages_of_three_three_one_newest_first(svc: RunningService) -> None:
    posted = [await post_orphan(svc, n) for n in range(7)]
    pages = await all_pages(svc, "/v1/daily/events", "events", limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == posted[::-1]  # newest first, none skipped or repeated


async def test_without_a_cursor_the_answer_is_unchanged_but_for_next_cursor(svc: RunningService) -> None:
    posted = [await post_orphan(svc, n) for n in range(3)]
    whole = await get_page(svc, "/v1/daily/events")
    assert set(whole) == {"events", "next_cursor"}
    assert [e["id"] for e in whole["events"]] == posted[::-1]
    assert whole["next_cursor"] is None
    first = await get_page(svc, "/v1/daily/events", limit=2)
    assert [e["id"] for e in first["events"]] == posted[:0:-1]
    assert isinstance(first["next_cursor"], str)
    # Exactly `limit` rows left: the last page says so instead of leading to an empty one.
    assert (await get_page(svc, "/v1/daily/events", limit=3))["next_cursor"] is None


async def test_event_paging_keeps_the_state_filter(svc: RunningService) -> None:
    orphans, ignored = [], []
    for n in range(4):
        orphans.append(await post_orphan(svc, n))
        ignored.append(await post_ignored(svc, n))
    ignored.append(await post_ignored(svc, 4))
    orphan_pages = await all_pages(svc, "/v1/daily/events", "events", state="orphan", limit=2)
    assert orphan_pages == [orphans[:1:-1], orphans[1::-1]]
    ignored_pages = await all_pages(svc, "/v1/daily/events", "events", state="ignored", limit=2)
    assert [i for p in ignored_pages for i in p] == ignored[::-1]
    assert [len(p) for p in ignored_pages] == [2, 2, 1]


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_events_with_one_received_at_are_ordered_by_id_across_pages(
    svc: RunningService, limit: int
) -> None:
    rows = [(f"evt-{c}", NOW, "orphan") for c in "cadeb"]
    rows += [
        ("evt-z-older", NOW - timedelta(microseconds=1), "orphan"),
        ("evt-a-newer", NOW + timedelta(microseconds=1), "orphan"),
        ("evt-f", NOW, "applied"),
    ]
    await store_events(svc, rows)
    pages = await all_pages(svc, "/v1/daily/events", "events", limit=limit)
    assert [i for p in pages for i in p] == newest_first(rows)
    assert [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1)
    filtered = await all_pages(svc, "/v1/daily/events", "events", state="orphan", limit=limit)
    assert [i for p in filtered for i in p] == newest_first(rows, "orphan")


# ---------------------------------------------------------------- callbacks


async def test_callbacks_from_webhooks_page_newest_first(svc: RunningService) -> None:
    for n in range(3):
        room = f"room-{n}"
        await register(svc, f"m-{n}", room=room)
        start_ts = T0.timestamp() + 5
        payload = ready_payload(
            room=room, start_ts=start_ts, type_="raw-tracks", tracks=raw_tracks(room, start_ts)
        )
        r = await post_webhook(svc.client, envelope("recording.ready-to-download", payload))
        assert r.json()["state"] == "applied", r.text
    whole = await get_page(svc, "/v1/callbacks")
    assert whole["next_cursor"] is None
    assert [c["meeting_id"] for c in whole["callbacks"]] == ["m-2", "m-1", "m-0"]
    pages = await all_pages(svc, "/v1/callbacks", "callbacks", limit=2)
    assert pages == [[c["id"] for c in whole["callbacks"][:2]], [whole["callbacks"][2]["id"]]]
    assert await all_pages(svc, "/v1/callbacks", "callbacks", state="pending", limit=1) == [
        [c["id"]] for c in whole["callbacks"]
    ]


@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_callbacks_page_by_created_at_then_id_with_the_state_filter(
    svc: RunningService, limit: int
) -> None:
    rows = [(f"msg_{c}", NOW, "dead" if c in "bd" else "pending") for c in "ecabd"]
    rows += [
        ("msg_y", NOW - timedelta(microseconds=1), "dead"),
        ("msg_x", NOW - timedelta(days=1), "pending"),
        ("msg_a_newest", NOW + timedelta(seconds=1), "delivered"),
    ]
    await store_callbacks(svc, rows)
    pages = await all_pages(svc, "/v1/callbacks", "callbacks", limit=limit)
    assert [i for p in pages for i in p] == newest_first(rows)
    assert [len(p) for p in pages[:-1]] == [limit] * (len(pages) - 1)
    for state in ("pending", "dead", "delivered"):
        filtered = await all_pages(svc, "/v1/callbacks", "callbacks", state=state, limit=limit)
        assert [i for p in filtered for i in p] == newest_first(rows, state)


# ---------------------------------------------------------------- malformed cursors

TS = "2026-11-24T12:00:00Z"
MALFORMED = {
    "empty": "",
    "not_base64": "%%%not-base64%%%",
    "standard_base64_alphabet": "ab+/cd",
    "padded": cursor_of({"kind": "events", "ts": TS, "id": "x"}) + "==",
    "truncated_base64": "abcde",
    "not_utf8": b64(b"\xff\xfe\xfd"),
    "not_json": b64(b"hello, cursor"),
    "json_array": cursor_of(["events", TS, "x"]),
    "missing_id": cursor_of({"kind": "events", "ts": TS}),
    "empty_id": cursor_of({"kind": "events", "ts": TS, "id": ""}),
    "id_not_a_string": cursor_of({"kind": "events", "ts": TS, "id": 7}),
    "unknown_field": cursor_of({"kind": "events", "ts": TS, "id": "x", "offset": 5}),
    "unknown_kind": cursor_of({"kind": "meetings", "ts": TS, "id": "x"}),
    "naive_timestamp": cursor_of({"kind": "events", "ts": "2026-11-24T12:00:00", "id": "x"}),
    "not_a_timestamp": cursor_of({"kind": "events", "ts": "yesterday", "id": "x"}),
    "out_of_range_in_utc": cursor_of({"kind": "events", "ts": "9999-12-31T23:59:59-23:59", "id": "x"}),
    "too_long": "A" * 2000,
}


@pytest.mark.parametrize("path", ["/v1/daily/events", "/v1/callbacks"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_cursors_are_400_in_the_error_shape_and_change_nothing(
    svc: RunningService, path: str, case: str
) -> None:
    await post_orphan(svc, 0)
    await store_callbacks(svc, [("msg_a", NOW, "pending")])
    before = await get_page(svc, path)
    bogus_state = await svc.client.get(path, params={"state": "bogus"}, headers=AUTH)
    r = await svc.client.get(path, params={"cursor": MALFORMED[case], "limit": 1}, headers=AUTH)
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == set(bogus_state.json()) == {"status_code", "detail"}
    assert body["status_code"] == 400
    assert "cursor" in body["detail"]
    assert await get_page(svc, path) == before


async def test_a_cursor_from_the_other_list_is_400(svc: RunningService) -> None:
    await store_events(svc, [("evt-a", NOW, "orphan"), ("evt-b", NOW, "orphan")])
    await store_callbacks(svc, [("msg_a", NOW, "pending"), ("msg_b", NOW, "pending")])
    events_cursor = (await get_page(svc, "/v1/daily/events", limit=1))["next_cursor"]
    callbacks_cursor = (await get_page(svc, "/v1/callbacks", limit=1))["next_cursor"]
    for path, cursor in (("/v1/callbacks", events_cursor), ("/v1/daily/events", callbacks_cursor)):
        r = await svc.client.get(path, params={"cursor": cursor}, headers=AUTH)
        assert r.status_code == 400, r.text
        assert r.json()["status_code"] == 400

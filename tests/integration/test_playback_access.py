"""Playback access (contract §4): tokens by default, refusals that reveal nothing, the link
endpoint for Reflector's backend (§5), and the Python client's minting."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from recorder_service.client import RecorderClient
from tests.integration.test_playback import s3_env
from tests.integration.test_webhooks import register
from tests.plugins.s3 import S3Bucket
from tests.plugins.service import AUTH, INTERNAL_KEY, PLAYBACK_SECRET, ServiceFactory
from tests.support.privacy import VIDEO, cloud_ready
from tests.unit.test_playback_tokens import contract_token

KEY = "acme/standup-7f3a9c/1767260345412"


def _token(meeting_id: str, ttl_s: int = 600) -> str:
    return contract_token(PLAYBACK_SECRET, meeting_id, int(time.time()) + ttl_s)


async def test_anonymous_playback_is_refused_and_a_contract_token_plays(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    async with service_factory(s3_env(db_url, s3)) as svc:  # default settings: playback needs a token
        await register(svc, "m-1")
        await cloud_ready(svc.client, s3, key=KEY)
        path = "/v1/meetings/m-1/cloud-recording"
        anonymous = await svc.client.get(path)
        assert anonymous.status_code == 401
        assert anonymous.json()["status_code"] == 401
        assert "location" not in anonymous.headers
        assert (await svc.client.head(path)).status_code == 401
        r = await svc.client.get(path, params={"token": _token("m-1")})
        assert r.status_code == 307
        async with httpx.AsyncClient() as plain:
            media = await plain.get(r.headers["location"])
        assert (media.status_code, media.content) == (200, VIDEO)
        assert (await svc.client.head(path, params={"token": _token("m-1")})).status_code == 307


def _refusals() -> dict[str, tuple[str | None, int]]:
    now = int(time.time())
    good = _token("m-1")
    exp, sig = good.split(".")
    return {
        "missing": (None, 401),
        "empty": ("", 401),
        "tampered": (f"{exp}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}", 403),
        "other meeting's": (_token("m-3"), 403),
        "expired": (contract_token(PLAYBACK_SECRET, "m-1", now - 5), 403),
        "days ahead": (contract_token(PLAYBACK_SECRET, "m-1", now + 3 * 86400), 403),
        "non-numeric": (f"tomorrow.{sig}", 403),
        "huge": ("9" * 4000 + "." + sig, 403),
        "other secret's": (contract_token("x" * 40, "m-1", now + 600), 403),
    }


async def test_every_refusal_is_401_or_403_and_the_same_whatever_exists(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    async with service_factory(s3_env(db_url, s3)) as svc:
        await register(svc, "m-1")
        await cloud_ready(svc.client, s3, key=KEY)
        await register(svc, "m-2", room="other-room")  # registered, nothing recorded
        for case, (token, status) in _refusals().items():
            params = {} if token is None else {"token": token}
            answers = [
                await svc.client.get(f"/v1/meetings/{mid}/cloud-recording", params=params)
                for mid in ("m-1", "m-2", "never-registered")
            ]
            assert {a.status_code for a in answers} == {status}, (case, [a.text for a in answers])
            # The same body for a meeting with a recording, one without, and an unknown id.
            assert len({a.content for a in answers}) == 1, (case, [a.text for a in answers])


async def test_refused_tokens_cost_no_rate_limit_budget(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    """The token is checked before the rate limit: a script guessing tokens is refused (403) at
    every try, never counted, so the address's budget is intact for its real token; and once that
    budget is spent, a valid token is limited (429) but a guess is still refused (403)."""
    async with service_factory(s3_env(db_url, s3, RECORDER_RATE_LIMIT_PER_MINUTE="2")) as svc:
        await register(svc, "m-1")
        await cloud_ready(svc.client, s3, key=KEY)
        path = "/v1/meetings/m-1/cloud-recording"
        for case, (token, status) in _refusals().items():
            params = {} if token is None else {"token": token}
            assert (await svc.client.get(path, params=params)).status_code == status, case
        answers = [
            (await svc.client.get(path, params={"token": _token("m-1")})).status_code for _ in range(3)
        ]
        assert answers == [307, 307, 429]
        assert (await svc.client.get(path, params={"token": _refusals()["tampered"][0]})).status_code == 403


async def test_open_playback_needs_no_token(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    async with service_factory(s3_env(db_url, s3, RECORDER_PLAYBACK_AUTH="open")) as svc:
        await register(svc, "m-1")
        await cloud_ready(svc.client, s3, key=KEY)
        assert (await svc.client.get("/v1/meetings/m-1/cloud-recording")).status_code == 307


async def test_link_answers_a_presigned_url_and_a_tokened_playback_url(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    async with service_factory(s3_env(db_url, s3, RECORDER_PRESIGN_TTL_SECONDS="900")) as svc:
        path = "/v1/meetings/m-1/cloud-recording/link"
        assert (await svc.client.get(path)).status_code == 401
        assert (await svc.client.get(path, headers=AUTH)).status_code == 404  # unknown meeting
        await register(svc, "m-1")
        assert (await svc.client.get(path, headers=AUTH)).status_code == 404  # nothing ready
        first = await cloud_ready(svc.client, s3, key="k/first", offset_s=60)
        await cloud_ready(svc.client, s3, key="k/second", offset_s=600, data=b"second")
        before = datetime.now(UTC)
        r = await svc.client.get(path, headers=AUTH)
        assert r.status_code == 200, r.text
        link = r.json()
        assert set(link) == {"url", "playback_url", "expires_at", "duration", "content_type"}
        assert (link["duration"], link["content_type"]) == (321, "video/mp4")
        expires = datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
        assert 890 <= (expires - before).total_seconds() <= 910
        assert "X-Amz-Expires=960" in link["url"]  # the TTL plus the reuse window: valid past expires_at
        assert link["playback_url"].startswith(f"{svc.url}/v1/meetings/m-1/cloud-recording?")
        async with httpx.AsyncClient() as browser:  # no bearer key, no cookie: only the URL
            assert (await browser.get(link["url"])).content == b"second"
            redirect = await browser.get(link["playback_url"])
            assert redirect.status_code == 307
            assert (await browser.get(redirect.headers["location"])).content == b"second"
        # One recording by Daily's id, through the Python client.
        async with RecorderClient(svc.url, INTERNAL_KEY) as rc:
            chosen = await rc.cloud_recording_link("m-1", recording_id=first["recording_id"])
        async with httpx.AsyncClient() as browser:
            assert (await browser.get(chosen.url)).content == VIDEO
            redirect = await browser.get(chosen.playback_url)
            assert (await browser.get(redirect.headers["location"])).content == VIDEO


async def test_link_builds_the_playback_url_on_the_public_base_url(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    env = s3_env(db_url, s3, RECORDER_PUBLIC_BASE_URL="https://recorder.example.com/rec/")
    async with service_factory(env) as svc:
        await register(svc, "m-1")
        await cloud_ready(svc.client, s3, key=KEY)
        link = (await svc.client.get("/v1/meetings/m-1/cloud-recording/link", headers=AUTH)).json()
        assert link["playback_url"].startswith(
            "https://recorder.example.com/rec/v1/meetings/m-1/cloud-recording?"
        )


async def test_the_client_mints_playback_urls_with_only_the_secret(
    db_url: str, s3: S3Bucket, service_factory: ServiceFactory
) -> None:
    async with service_factory(s3_env(db_url, s3)) as svc:
        await register(svc, "m-1")
        await cloud_ready(svc.client, s3, key=KEY)
        rc = RecorderClient(
            "http://unused.invalid", "unused", playback_secret=PLAYBACK_SECRET, public_base_url=svc.url
        )
        url = rc.playback_url("m-1", ttl_s=300)
        async with httpx.AsyncClient() as browser:
            assert (await browser.get(url)).status_code == 307
        assert rc.mint_playback_token("m-1", 1_900_000_000) == contract_token(
            PLAYBACK_SECRET, "m-1", 1_900_000_000
        )
        with pytest.raises(ValueError, match="ttl_s"):
            rc.playback_url("m-1", ttl_s=86401)
        await rc.aclose()

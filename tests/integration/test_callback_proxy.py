"""The proxy callbacks go through: read once from the environment, as curl and httpx read it
(HTTP_PROXY / HTTPS_PROXY by the URL's scheme, NO_PROXY to bypass)."""

from __future__ import annotations

import pytest

from recorder_service.adapters.callbacks import env_proxy

URL = "https://reflector.example.org/v1/recorder/callback"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_no_proxy_variables_connect_directly() -> None:
    assert env_proxy(URL) is None


def test_the_proxy_for_the_urls_scheme_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain-proxy.internal:3128")
    assert env_proxy(URL) == "http://proxy.internal:3128"
    assert env_proxy("http://reflector.internal/cb") == "http://plain-proxy.internal:3128"


def test_no_proxy_bypasses_matching_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.example.org")
    assert env_proxy(URL) is None
    assert env_proxy("https://other.example.com/cb") == "http://proxy.internal:3128"

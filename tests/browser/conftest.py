"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (never a downloaded
browser), the TypeScript client's bundle built at test time, a small H.264/AAC MP4 made with
ffmpeg, and artifacts (screenshots, console log) under test-artifacts/browser/.

Missing prerequisites skip these tests with the command that installs them, except with CI=true,
where they fail: .ci/run installs them all."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

REPO = Path(__file__).resolve().parents[2]
CLIENT_DIR = REPO / "clients" / "typescript"
ARTIFACTS_ROOT = REPO / "test-artifacts" / "browser"
_saved_artifacts: list[Path] = []


def require(available: bool, what: str) -> None:
    if available:
        return
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(
            f"browser test prerequisite missing: {what} (CI is set, so this fails instead of skipping)"
        )
    pytest.skip(f"browser test prerequisite missing: {what}")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium")
    require(path is not None, "Chromium (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def client_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """clients/typescript bundled for browsers now, so the test never runs a stale build."""
    require(shutil.which("node") is not None, "node (apt-get install nodejs)")
    require(
        (CLIENT_DIR / "node_modules" / "esbuild").is_dir(),
        "the TypeScript client's packages (cd clients/typescript && npm ci)",
    )
    out = tmp_path_factory.mktemp("bundle") / "recorder-client.js"
    subprocess.run(
        ["node", str(CLIENT_DIR / "scripts" / "bundle.mjs"), str(out)],
        check=True,
        timeout=120,
        cwd=CLIENT_DIR,
    )
    return out.read_bytes()


VIDEO_SECONDS = 3


@pytest.fixture(scope="session")
def h264_aac_mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real 3-second 320x240 H.264 (baseline) + AAC MP4, moov first, as a cloud recording."""
    ffmpeg = shutil.which("ffmpeg")
    require(ffmpeg is not None, "ffmpeg (apt-get install ffmpeg)")
    assert ffmpeg is not None
    out = tmp_path_factory.mktemp("media") / "cloud-recording.mp4"
    subprocess.run(
        [
            ffmpeg,
            *("-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", f"testsrc=duration={VIDEO_SECONDS}:size=320x240:rate=25"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:duration={VIDEO_SECONDS}"),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "baseline"),
            *("-c:a", "aac", "-shortest", "-movflags", "+faststart", str(out)),
        ],
        check=True,
        timeout=120,
    )
    return out.read_bytes()


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    """One browser for the session; each page gets a fresh context (no shared caches)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            # No user namespaces for Chromium's sandbox in containers; /dev/shm may be tiny.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            await browser.close()


class Artifacts:
    """One directory per test: screenshots on demand, every page's console when the test ends."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.console: list[str] = []
        self._pages: dict[str, Page] = {}

    def watch(self, page: Page, label: str) -> None:
        self._pages[label] = page

        def on_console(message: ConsoleMessage) -> None:
            self.console.append(f"[{label}] {message.type}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.console.append(f"[{label}] pageerror: {error}"))

    def console_of(self, label: str) -> list[str]:
        prefix = f"[{label}] "
        return [line.removeprefix(prefix) for line in self.console if line.startswith(prefix)]

    async def screenshot(self, page: Page, name: str) -> Path:
        path = self.directory / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    async def finish(self) -> None:
        for label, page in self._pages.items():
            if not page.is_closed():
                with contextlib.suppress(Exception):  # best effort: the state a failure left
                    await self.screenshot(page, f"final-{label}")
        (self.directory / "console.log").write_text("".join(f"{line}\n" for line in self.console))


@pytest.fixture(scope="session")
def artifacts_root() -> Path:
    shutil.rmtree(ARTIFACTS_ROOT, ignore_errors=True)  # only this run's artifacts
    return ARTIFACTS_ROOT


@pytest.fixture
async def artifacts(
    request: pytest.FixtureRequest, artifacts_root: Path, browser: Browser
) -> AsyncIterator[Artifacts]:
    # Depends on `browser` so that its pages are still open when finish() screenshots them.
    directory = artifacts_root / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    directory.mkdir(parents=True)
    saved = Artifacts(directory)
    try:
        yield saved
    finally:
        await saved.finish()
        _saved_artifacts.append(directory)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _saved_artifacts:
        terminalreporter.write_sep("-", "browser test artifacts (screenshots, console.log)")
        for directory in _saved_artifacts:
            terminalreporter.write_line(str(directory))

"""A clone is all a contributor has: no tracked file may read or link anything outside the
repository (a sibling checkout, one machine's absolute paths), and every link between the
repository's documents must lead to a file that exists in it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import REPO_ROOT

# System locations (/usr, /etc, /opt, /var) are fine: images and tools have them everywhere;
# these are places on one person's machine, or the reference folder beside the checkout.
OUTSIDE = re.compile(
    r"\.\./+shared\b"
    r"|\bshared/(?:reference|CONTRACT|STYLE)"
    r"""|["']shared["']\s*/\s*["'](?:reference|CONTRACT)"""  # the same folder joined as a Path
    r"|(?<![\w.])/(?:work|root|home|Users|mnt|media)/"
    r"|\b[A-Z]:\\\\"
)
# [text](target) in Markdown, skipping images' and code's false positives well enough for our docs.
MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return [REPO_ROOT / name for name in listed.split("\0") if name]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None  # binary, or deleted in the work tree but not yet committed


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        text = text_of(path)
        if text is None or path == Path(__file__).resolve():  # this file's examples below
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()[:120]}")
    assert not offenders, "copy what is needed into the repository instead:\n" + "\n".join(offenders)


def test_document_links_lead_to_files_in_the_repository() -> None:
    broken = []
    for path in tracked_files():
        if path.suffix != ".md" or (text := text_of(path)) is None:
            continue
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL, or an anchor in the same document
            resolved = (path.parent / target.split("#", 1)[0]).resolve()
            if not resolved.is_relative_to(REPO_ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(REPO_ROOT)}: {target}")
    assert not broken, "links to nothing in the repository:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    "line",
    [
        "see ../shared/CONTRACT.md",
        'FIXTURES = Path("/work/shared/reference/daily-fixtures")',
        'Path(__file__).resolve().parents[2] / "shared" / "reference" / "daily-fixtures"',
        "ROOT.parent / 'shared' / 'CONTRACT.md'",
        "cache in /home/alice/.cache",
        "open /root/notes.txt",
    ],
)
def test_the_pattern_catches_paths_outside_the_repository(line: str) -> None:
    assert OUTSIDE.search(line)


@pytest.mark.parametrize(
    "line",
    [
        "COPY --from=builder /opt/venv /opt/venv",
        'os.listdir("/etc/postgresql")',
        "tests/fixtures/daily/webhook-test.json",
        "a shared/common secret",
        "https://github.com/owner/repo/blob/main/server/reflector/views/daily.py",
    ],
)
def test_the_pattern_leaves_ordinary_paths_alone(line: str) -> None:
    assert not OUTSIDE.search(line)

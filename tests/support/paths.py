"""Where the tests find the repository's own files: nothing outside the clone is ever read."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"
# Daily's webhook and REST examples, and Daily payload samples kept in Reflector's repository;
# tests/fixtures/README.md says where each set comes from.
DAILY_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "daily"
REFLECTOR_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "reflector"

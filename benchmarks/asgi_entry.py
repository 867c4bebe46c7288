"""ASGI factory for servers other than the built-in `serve` (granian): settings from RECORDER_*."""

from __future__ import annotations

import os

from litestar import Litestar

from recorder_service.app import create_app
from recorder_service.commands import configure


def create() -> Litestar:
    return create_app(configure(dict(os.environ)), run_background=False, freeze_heap=True)

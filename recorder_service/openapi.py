"""`python -m recorder_service.openapi > docs/openapi.json`: the OpenAPI document the service serves."""

from __future__ import annotations

import json
import sys

from recorder_service.app import create_app
from recorder_service.settings import load_settings


def openapi_document() -> dict[str, object]:
    # The document does not depend on configuration; any valid settings produce it.
    app = create_app(
        load_settings({"RECORDER_DAILY_API_URL": "http://127.0.0.1:9/v1", "RECORDER_PLAYBACK_AUTH": "open"})
    )
    schema: dict[str, object] = app.openapi_schema.to_schema()
    return schema


def main() -> None:
    json.dump(openapi_document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

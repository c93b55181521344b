"""The OpenAPI document, built without a server or a database.

`python -m deadletter.api.openapi > docs/openapi.json` writes the committed copy; a
test fails while that copy differs from what the code declares.
"""

from __future__ import annotations

import json
from typing import Any

from deadletter.api.app import create_api
from deadletter.app import App
from deadletter.config import Settings


def document() -> dict[str, Any]:
    return create_api(App(Settings())).openapi()


def text() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(text(), end="")

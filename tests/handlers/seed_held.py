"""A seed-style function whose step runs until the test lets it end (a file appears)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import perdure as durable


def _until_released(release: str) -> str:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as handle:
        handle.write("invoked\n")
    while not Path(release).exists():
        time.sleep(0.02)
    return "released"


@durable.function
def seed_held(ctx: Any, event: dict[str, Any]) -> str:
    try:
        return str(ctx.step(lambda: _until_released(event["release"]), name="hold"))
    except Exception as error:  # a user's broad except must not see the store's trouble
        return f"caught {error}"

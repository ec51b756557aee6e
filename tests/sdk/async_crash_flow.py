"""An async durable function whose process dies in the middle of an ``await`` on its first run.

For ``crash_runner.py``: side effects go to the file PERDURE_TEST_LOG names.
"""

from __future__ import annotations

import asyncio
import os

import perdure as durable


def note(line: str) -> None:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as log:
        log.write(line + "\n")


async def fetch(item: str) -> str:
    note(f"fetch {item}")
    await asyncio.sleep(0.01)
    if item == "second" and not os.path.exists(os.environ["PERDURE_TEST_LOG"] + ".died"):
        open(os.environ["PERDURE_TEST_LOG"] + ".died", "w").close()
        os._exit(86)  # the process dies while the function awaits this step
    return item.upper()


@durable.function
async def flow(ctx, event):
    first = await ctx.step(fetch, "first")
    ctx.checkpoint()
    note("after the checkpoint")
    second = await ctx.step(fetch, "second")
    return [first, second]

"""``async def`` durable functions for the tests of async support (a module of its own: the
decorator needs the source file)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import perdure as durable

CALLS: list[str] = []


async def fetch(item: str) -> str:
    # Stands in for an async HTTP or LLM call.
    await asyncio.sleep(0.01)
    CALLS.append(f"fetched {item}")
    return item.upper()


def price(item: str) -> float:
    CALLS.append(f"priced {item}")
    return 2.5


def notify(callback_id: str) -> None:
    CALLS.append(f"asked {callback_id}")


@durable.function
async def agent(ctx, event):
    answers = []
    for item in event["items"]:
        answer = await ctx.step(fetch, item)
        answers.append(answer)
        ctx.checkpoint()
    cost = await ctx.step(price, "total")
    await ctx.wait(timedelta(hours=1))
    approval = await ctx.wait_for_callback(notify, name="approval")
    if not approval.get("approved"):
        return {"rejected": answers}
    return {"answers": answers, "cost": cost}


async def shout(ctx, item, index):
    return await ctx.step(fetch, f"{item}-{index}")


@durable.function
async def fan_out(ctx, event):
    results = await ctx.map(event["items"], shout, name="shout")
    both = await ctx.parallel([lambda c: c.step(price, "a"), lambda c: c.step(price, "b")])
    return {"results": results, "both": both}


class Refused(Exception):
    pass


async def refuse(item: str) -> None:
    raise Refused(f"no {item}")


@durable.function
async def failing(ctx, event):
    try:
        await ctx.step(refuse, "pears", retry=durable.RetryPolicy(max_attempts=1))
    except Exception as error:
        return {"caught": str(error)}
    return {"caught": None}

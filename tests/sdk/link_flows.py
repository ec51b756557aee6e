"""Seed-style functions that ask for an approval with a link (``ctx.callback_link``), plain and async."""

from __future__ import annotations

from datetime import timedelta

import perdure as durable

SENT: list[str] = []


@durable.function
def approve_by_link(ctx, event):
    decision = ctx.wait_for_callback(
        lambda callback_id: SENT.append(ctx.callback_link(callback_id, summary="Refund " + event["order"], expires=timedelta(days=2))),
        name="refund approval",
    )
    return {"decision": decision}


@durable.function
async def approve_by_link_async(ctx, event):
    callback = await ctx.create_callback("refund approval")
    # In a step, so that a resumed run does not send the link again.
    await ctx.step(SENT.append, ctx.callback_link(callback, summary="Refund " + event["order"], expires=3600), name="send link")
    return {"decision": await callback.result()}

"""Seed-style functions whose ``map`` branches run at once (a module of its own: the decorator
needs the source file)."""

from __future__ import annotations

import threading

import perdure as durable

RAN: list[str] = []
_lock = threading.Lock()


def work(item: int) -> int:
    with _lock:
        RAN.append(f"work {item}")
    return item * 10


def item_flow(ctx, item, index):
    value = ctx.step(work, item, name=f"work {index}")
    if item == 2:
        ctx.wait(seconds=30)  # one branch suspends; the others are recorded meanwhile
    if item == 4:
        raise ValueError("four is refused")
    return value


@durable.function
def mapped(ctx, event):
    try:
        return ctx.map(event["items"], item_flow, name="items", max_concurrency=event.get("threads"))
    except Exception as error:
        return {"failed": str(error)}

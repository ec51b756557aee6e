"""The functions `render.py` serves to make the dashboard's picture: a shop's orders, refunds that
a person approves, and a nightly report.

    perdure serve docs/grafana/workload.py --dev

Each event names a ``spool`` folder: a refund writes its callback ID there, as
``<refund_id>.callback``, for whoever approves it (`render.py` plays that person), and an
order sent with ``"crash": true`` leaves a marker there when it kills its worker process, once.
"""

from __future__ import annotations

import functools
import os
import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import perdure as durable

CATALOGUE = {"mug": 8.0, "lamp": 52.5, "chair": 129.0}
# The payment provider's retries come one second apart, so that they show within a minute.
PAYMENT_RETRY = durable.RetryPolicy(max_attempts=3, initial_delay=1, jitter=False)
ONCE = durable.RetryPolicy(max_attempts=1)


def call_service(seconds: float) -> None:
    """Waits on a service that answers in about ``seconds``."""
    time.sleep(random.uniform(0.5, 1.5) * seconds)


def validate(item: str) -> float:
    call_service(0.01)
    if item not in CATALOGUE:
        raise ValueError(f"There is no {item!r} in the catalogue.")
    return CATALOGUE[item]


def charge(order_id: str, total: float) -> str:
    """Fails a quarter of the time, as a payment provider that times out now and then."""
    call_service(0.15)
    if random.random() < 0.25:
        raise ConnectionError("The payment provider did not answer in time.")
    return f"txn-{order_id}"


def ship(order_id: str) -> str:
    call_service(0.05)
    return f"TRACK-{order_id}"


@durable.function
def place_order(ctx: durable.Context, event: dict[str, Any]) -> dict[str, Any]:
    """Validates, charges (retried), waits two seconds for the warehouse, and ships."""
    order_id = event["order_id"]
    total = ctx.step(validate, event["item"], name="validate", retry=ONCE)
    transaction = ctx.step(charge, order_id, total, name="charge", retry=PAYMENT_RETRY)
    ctx.wait(seconds=2)
    crashed = Path(event["spool"], "crashed")
    if event.get("crash") and not crashed.exists():
        crashed.write_text(order_id)
        os._exit(3)  # the worker process dies with every invocation it runs; each is retried
    tracking = ctx.step(ship, order_id, name="ship")
    return {"order_id": order_id, "transaction": transaction, "tracking": tracking}


def ask_approval(spool: str, refund_id: str, callback_id: str) -> None:
    Path(spool, f"{refund_id}.callback").write_text(callback_id)


@durable.function
def refund(ctx: durable.Context, event: dict[str, Any]) -> dict[str, Any]:
    """Asks a person to approve the refund; unanswered after 20 s, the refund fails."""
    refund_id = event["refund_id"]
    ask = functools.partial(ask_approval, event["spool"], refund_id)  # a local that pickles, unlike a closure
    try:
        ctx.wait_for_callback(ask, name="approval", timeout=timedelta(seconds=20))
    except durable.OperationFailedError as error:
        if error.error_type == "Rejected":
            return {"refund_id": refund_id, "status": "rejected"}
        raise
    ctx.step(call_service, 0.1, name="pay back")
    return {"refund_id": refund_id, "status": "refunded"}


def crunch(seconds: float) -> float:
    """Computes for about ``seconds`` of CPU time."""
    began = time.thread_time()
    total = 0.0
    while time.thread_time() - began < seconds:
        total += sum(i * i for i in range(1000))
    return time.thread_time() - began


@durable.function(memory_mb=1024, max_concurrency=1)
def nightly_report(ctx: durable.Context, event: dict[str, Any]) -> float:
    """CPU-bound, one invocation per worker process at a time: more than two at once queue."""
    return ctx.step(crunch, event["cpu_seconds"], name="crunch")

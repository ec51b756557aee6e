"""Seed-style functions for the destination and redrive tests; step bodies append a line to PERDURE_TEST_LOG.

``charge`` fails after its second checkpoint until the file PERDURE_TEST_LOG + ".fixed" exists
(a bug, then its fix); its failures start ``alert`` and its successes ``receipt``.
"""

from __future__ import annotations

import os
import time

import perdure as durable


def record(label: str) -> str:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as handle:
        handle.write(label + "\n")
    return label


def nap(seconds: float) -> None:
    time.sleep(seconds)


def fixed() -> bool:
    return os.path.exists(os.environ["PERDURE_TEST_LOG"] + ".fixed")


@durable.function(on_failure="alert", on_success="receipt")
def charge(ctx, event):
    order = event["order"]
    ctx.step(record, f"validate:{order}", name="validate")
    ctx.checkpoint()
    ctx.step(record, f"charge:{order}", name="charge")
    ctx.checkpoint()
    if not fixed():
        raise RuntimeError(f"order {order} hit a bug")
    return {"order": order, "charged": True}


@durable.function
def alert(ctx, destination):
    # The failed execution's input says how long the alert takes, so a test can kill its server meanwhile.
    ctx.step(nap, destination["requestPayload"].get("alert_seconds", 0), name="nap")
    context = destination["requestContext"]
    ctx.step(record, f"alert:{context['condition']}:{context['durableExecutionArn']}", name="alert")
    return {"alerted": context["durableExecutionArn"]}


@durable.function
def receipt(ctx, destination):
    return ctx.step(record, f"receipt:{destination['responsePayload']['order']}", name="receipt")

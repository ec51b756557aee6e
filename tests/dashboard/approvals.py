"""The app the dashboard tests serve: a seed-style review that checkpoints twice, then waits for a
person, and a shipping function whose timeline has one bar of each kind.

Each run of a body appends a line to the file PERDURE_TEST_LOG names, so a test can tell which
parts ran again after a restart.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import perdure as durable


def note(line: str) -> None:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as log:
        log.write(line + "\n")


def price(item: str, quantity: int) -> dict[str, Any]:
    note(f"priced {item}")
    return {"item": item, "unit": 12.5, "total": 12.5 * quantity}


RETRY = durable.RetryPolicy(max_attempts=3, initial_delay=1, jitter=False)


def check(ctx, what: tuple[str, str], index: int) -> bool:
    kind, item = what
    return bool(ctx.step(run_check, kind, item, name=f"check {kind}", retry=RETRY))


def run_check(kind: str, item: str) -> bool:
    # A lamp's stock check fails its first attempt, so the page has a retried step to show.
    if kind == "stock" and item == "lamp" and f"checked stock {item}" not in _notes():
        note(f"checked stock {item}")
        raise ConnectionError("The stock service did not answer; trying again.")
    note(f"checked {kind} {item}")
    return True


def _notes() -> list[str]:
    try:
        with open(os.environ["PERDURE_TEST_LOG"], encoding="utf-8") as log:
            return log.read().splitlines()
    except FileNotFoundError:
        return []


def ask_reviewer(callback_id: str) -> None:
    note(f"asked {callback_id}")


@durable.function(name="review", timeout=60, memory_mb=256, max_suspension=timedelta(hours=2), retention_days=7)
def review(ctx, event):
    item = event["item"]
    quantity = event.get("quantity", 3)
    note(f"started {item}")
    # Large enough that the page shows it cut, with "show all".
    history = [f"revision {n}: {item} reworded" for n in range(60)]
    ctx.checkpoint()
    checks = ctx.map([("stock", item), ("credit", item)], check, name="checks")
    quote = ctx.step(price, item, quantity, name="price")
    note(f"quoted {item}")
    print(f"quote for {item}: {quote['total']}")
    ctx.checkpoint()
    decision = ctx.wait_for_callback(ask_reviewer, name="approval", timeout=timedelta(hours=1))
    note(f"decided {item}")
    return {"item": item, "total": quote["total"], "checks": checks, "decision": decision, "revisions": len(history)}


def fetch_rates(item: str) -> dict[str, float]:
    # The first attempt for an item fails, so its timeline has a retried step to show.
    if f"rates failed {item}" not in _notes():
        note(f"rates failed {item}")
        raise ConnectionError("The rates service did not answer; trying again.")
    return {"base": 4.0}


def pack(ctx, size: str, index: int) -> str:
    return str(ctx.step(wrap, size, name=f"pack {size}"))


def wrap(size: str) -> str:
    # Long enough that the three branches, run at once, show as overlapping bars.
    time.sleep(0.3)
    return f"{size} wrapped"


@durable.function(name="shipping", timeout=60)
def shipping(ctx, event):
    """A retried step, a wait, a map of three branches and an approval: each kind of bar on a timeline."""
    item = event["item"]
    rates = ctx.step(fetch_rates, item, name="fetch rates", retry=RETRY)
    ctx.wait(seconds=2, name="cool down")
    packed = ctx.map(["S", "M", "L"], pack, name="pack")
    decision = ctx.wait_for_callback(ask_reviewer, name="sign-off", timeout=timedelta(hours=1))
    return {"item": item, "rates": rates, "packed": packed, "decision": decision}


@durable.function(name="nightly", timeout=30)
def nightly(ctx, event):
    ctx.wait(seconds=1)
    return {"ok": True}

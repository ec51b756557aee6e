"""The app of the approval-link tests: a seed-style purchase whose approval is asked for with a
link (``ctx.callback_link``) that its submitter writes to the file PERDURE_TEST_LOG names, as
it would send it by e-mail or chat."""

from __future__ import annotations

import os
from datetime import timedelta

import perdure as durable


def note(line: str) -> None:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as log:
        log.write(line + "\n")


@durable.function(name="purchase", timeout=60)
def purchase(ctx, event):
    item = event["item"]
    summary = "Buy a " + item + " for " + str(event["price"]) + " EUR, for " + event["buyer"] + "."
    decision = ctx.wait_for_callback(
        lambda callback_id: note(item + " " + ctx.callback_link(callback_id, summary=summary, expires=timedelta(days=2))),
        name="purchase approval",
        timeout=timedelta(hours=1),
    )
    note("decided " + item)
    return {"item": item, "decision": decision}

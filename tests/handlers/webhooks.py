"""Seed-style functions that function URLs start (tests/api/test_function_urls.py): each run of a
step appends a line to the file PERDURE_TEST_LOG names, so a test can count the executions started."""

from __future__ import annotations

import json
import os

import perdure as durable


def note(line: str) -> None:
    with open(os.environ["PERDURE_TEST_LOG"], "a", encoding="utf-8") as log:
        log.write(line + "\n")


@durable.function(name="Hook", timeout=60)
def hook(ctx, event):
    ctx.step(note, f"started {event['rawPath']} {event.get('body')}", name="note")
    got = event.get("body")
    return {
        "statusCode": 201,
        "headers": {"X-Hook": "yes", "Content-Type": "application/json"},
        "cookies": ["seen=1; Path=/"],
        "body": json.dumps({"got": got, "path": event["rawPath"], "query": event.get("queryStringParameters")}),
    }


@durable.function(name="Echo", timeout=60)
def echo(ctx, event):
    return {"event": event}


@durable.function(name="Held", timeout=60)
def held(ctx, event):
    ctx.step(note, f"held {event.get('body')}", name="note")
    return ctx.wait_for_callback(ask, name="go-ahead")


def ask(callback_id: str) -> None:
    note(f"asked {callback_id}")


@durable.function(name="Failing", timeout=60)
def failing(ctx, event):
    raise ValueError("the database password is hunter2")

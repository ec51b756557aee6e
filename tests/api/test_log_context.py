"""A request on one execution makes the server's log lines logged while it is handled about that execution."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import quote

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.http import Route, Router, json_response
from perdure.runtime.server_log import JsonLineFormatter

ARN = "arn:aws:lambda:us-east-1:000000000000:function:orders:$LATEST/durable-execution/o-1/abc"


def logged_lines(path: str) -> list[dict[str, Any]]:
    """Requests ``path`` of a router whose endpoints log a line from Starlette's thread pool, where the
    routes call the service; returns the lines logged, as JSON."""
    lines: list[dict[str, Any]] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(json.loads(JsonLineFormatter().format(record)))  # type: ignore[method-assign]
    logger = logging.getLogger("perdure.test.api")
    logger.addHandler(handler)

    async def endpoint(request: Request, params: dict[str, str]) -> Response:
        await run_in_threadpool(logger.warning, "Working on it.")
        return json_response({})

    router = Router(
        [Route("GET", "/2025-12-01/durable-executions/{arn}", endpoint), Route("GET", "/2015-03-31/functions", endpoint)]
    )

    async def send() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=router), base_url="http://testserver") as client:
            assert (await client.get(path)).status_code == 200

    try:
        asyncio.run(send())
    finally:
        logger.removeHandler(handler)
    return lines


def test_a_line_logged_for_a_request_on_an_execution_names_it_and_its_function() -> None:
    (line,) = logged_lines(f"/2025-12-01/durable-executions/{quote(ARN, safe='')}")
    assert line["execution_arn"] == ARN and line["function"] == "orders"


def test_a_line_logged_for_a_request_on_no_execution_names_none() -> None:
    (line,) = logged_lines("/2015-03-31/functions")
    assert "execution_arn" not in line and "function" not in line

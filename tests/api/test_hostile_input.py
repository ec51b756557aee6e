"""Hostile input: every malformed value gets a 4xx in Lambda's error shape, and nothing is stored.

Each case runs against a real `perdure serve` on SQLite and on PostgreSQL (PostgreSQL's text
cannot hold NUL, and its integers and SQLite's overflow differently), with raw HTTP requests,
since boto3 refuses most of these values before sending them. After every refusal the test
checks that nothing changed: no execution was created, the open execution still waits on its
callback with the same history, and its dashboard page still answers 200.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import HANDLERS, Server, handler_target, wait_for

from perdure.service.validation import MAX_JSON_DEPTH

API = "/2025-12-01/durable-executions"
CALLBACKS = "/2025-12-01/durable-execution-callbacks"
FUNCTIONS = ["steps", "flow", "nul_step_name", "deep_result"]
DEEP = 200_000


@dataclass(frozen=True)
class Hosted:
    """A server and one execution of it that waits on an open callback."""

    server: Server
    http: httpx.Client
    arn: str
    callback_id: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hosted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosted]:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_server").create_database(f"hostile_{uuid.uuid4().hex[:8]}")
    workdir = tmp_path_factory.mktemp(f"hostile-{request.param}")
    env = {**os.environ, "PERDURE_TEST_LOG": str(workdir / "side-effects.log")}
    targets = [
        handler_target("steps", "steps"),
        handler_target("flow", "step_wait_callback"),
        f"nul_step_name={HANDLERS / 'hostile.py'}:nul_step_name",
        f"deep_result={HANDLERS / 'hostile.py'}:deep_result",
    ]
    server = Server([*targets, "--workers", "2"], workdir, env, db_url=url)
    server.start()
    try:
        with httpx.Client(base_url=server.endpoint, timeout=60) as http:
            arn = start(http, "flow", b'{"wait": 1}')
            yield Hosted(server, http, arn, open_callback(http, arn))
    finally:
        server.stop()


# -- helpers ---------------------------------------------------------------------------------


def start(http: httpx.Client, function: str, payload: bytes) -> str:
    reply = http.post(
        f"/2015-03-31/functions/{function}/invocations", content=payload, headers={"X-Amz-Invocation-Type": "Event"}
    )
    assert reply.status_code == 202, reply.text
    return reply.headers["X-Amz-Durable-Execution-Arn"]


def execution_path(arn: str) -> str:
    return f"{API}/{quote(arn, safe='')}"


def action_path(arn: str, action: str) -> str:
    """The path of an action on an execution; restart is Perdure's own route."""
    if action == "restart":
        return f"/perdure/v1/durable-executions/{quote(arn, safe='')}/restart"
    return f"{execution_path(arn)}/{action}"


def events(http: httpx.Client, arn: str) -> list[dict[str, Any]]:
    reply = http.get(f"{execution_path(arn)}/history", params={"MaxItems": "1000"})
    assert reply.status_code == 200, reply.text
    return reply.json()["Events"]  # type: ignore[no-any-return]


def open_callback(http: httpx.Client, arn: str) -> str:
    """Waits until the execution waits on its callback, its invocation over; returns the callback ID."""

    def started() -> str | None:
        found = None
        for event in events(http, arn):
            if event["EventType"] == "CallbackStarted":
                found = str(event["CallbackStartedDetails"]["CallbackId"])
            elif event["EventType"] == "InvocationCompleted" and found:
                return found
        return None

    return wait_for(started, timeout=30)  # type: ignore[return-value]


def ended(http: httpx.Client, arn: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        execution = http.get(execution_path(arn)).json()
        return execution if execution["Status"] != "RUNNING" else None

    return wait_for(done, timeout=30)  # type: ignore[return-value]


def executions(http: httpx.Client) -> dict[str, str]:
    """ARN -> status of every execution of every function."""
    found = {}
    for function in FUNCTIONS:
        reply = http.get(f"/2025-12-01/functions/{function}/durable-executions", params={"MaxItems": "1000"})
        assert reply.status_code == 200, reply.text
        found.update({e["DurableExecutionArn"]: e["Status"] for e in reply.json()["DurableExecutions"]})
    return found


def dashboard_page(http: httpx.Client, arn: str) -> int:
    return http.get("/execution", params={"arn": arn}).status_code


def refused(reply: httpx.Response, status: int = 400) -> str:
    """Checks a refusal in Lambda's error shape; returns its message."""
    assert reply.status_code == status, reply.text
    assert reply.headers["x-amzn-ErrorType"].endswith("Exception"), reply.headers
    body = reply.json()
    assert body["Type"] == "User"
    assert body["Message"] == body["message"]
    assert body["Message"].endswith("."), body["Message"]
    return str(body["Message"])


class Unchanged:
    """Remembers the executions and the waiting execution's history, to check nothing changed."""

    def __init__(self, hosted: Hosted) -> None:
        self.hosted = hosted
        self.executions = executions(hosted.http)
        self.events = events(hosted.http, hosted.arn)

    def check(self) -> None:
        http, arn = self.hosted.http, self.hosted.arn
        assert executions(http) == self.executions
        assert events(http, arn) == self.events
        assert http.get(execution_path(arn)).json()["Status"] == "RUNNING"
        assert dashboard_page(http, arn) == 200


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# -- deep JSON --------------------------------------------------------------------------------


def test_deeply_nested_invoke_payload_is_refused_and_starts_nothing(hosted: Hosted) -> None:
    unchanged = Unchanged(hosted)

    for invocation_type in ("RequestResponse", "Event"):
        reply = hosted.http.post(
            "/2015-03-31/functions/steps/invocations",
            content=deep(DEEP),
            headers={"X-Amz-Invocation-Type": invocation_type},
        )
        message = refused(reply)
        assert f"nested more than {MAX_JSON_DEPTH} levels deep" in message

    unchanged.check()


def test_deeply_nested_callback_result_is_refused_and_the_callback_stays_open(hosted: Hosted) -> None:
    unchanged = Unchanged(hosted)

    reply = hosted.http.post(f"{CALLBACKS}/{quote(hosted.callback_id, safe='')}/succeed", content=deep(DEEP))

    assert f"nested more than {MAX_JSON_DEPTH} levels deep" in refused(reply)
    unchanged.check()


@pytest.mark.parametrize("route", ["stop", "pause", "resume", "checkpoint", "restart"])
def test_deeply_nested_request_body_is_refused(hosted: Hosted, route: str) -> None:
    unchanged = Unchanged(hosted)

    reply = hosted.http.post(action_path(hosted.arn, route), content=b'{"a": ' + deep(DEEP) + b"}")

    assert f"nested more than {MAX_JSON_DEPTH} levels deep" in refused(reply)
    unchanged.check()


def test_payload_and_callback_result_nested_to_the_limit_run_to_the_end(hosted: Hosted) -> None:
    nested = json.loads(deep(MAX_JSON_DEPTH - 1))
    http = hosted.http
    arn = start(http, "flow", json.dumps({"wait": 1, "nested": nested}).encode())
    callback = open_callback(http, arn)

    reply = http.post(f"{CALLBACKS}/{quote(callback, safe='')}/succeed", content=deep(MAX_JSON_DEPTH))

    assert reply.status_code == 200, reply.text
    execution = ended(http, arn)
    assert execution["Status"] == "SUCCEEDED", execution
    assert json.loads(execution["Result"])["answer"] == deep(MAX_JSON_DEPTH).decode()
    assert dashboard_page(http, arn) == 200


# -- strings PostgreSQL cannot hold -----------------------------------------------------------------


def test_nul_in_path_and_query_parameters_is_refused(hosted: Hosted) -> None:
    unchanged = Unchanged(hosted)
    http = hosted.http
    callback = f"{CALLBACKS}/{quote(hosted.callback_id + chr(0), safe='')}"
    marker = base64.urlsafe_b64encode(json.dumps([1.0, "\0"]).encode()).decode()
    requests = [
        ("POST", f"{callback}/succeed", {}),
        ("POST", f"{callback}/fail", {}),
        ("POST", f"{callback}/heartbeat", {}),
        ("GET", f"{API}/x%00y", {}),
        ("GET", f"{API}/x%00y/history", {}),
        ("POST", f"{API}/x%00y/stop", {}),
        ("GET", "/2025-12-01/functions/steps/durable-executions", {"DurableExecutionName": "a\0"}),
        ("GET", "/2025-12-01/functions/steps/durable-executions", {"Marker": marker}),
        ("GET", f"{execution_path(hosted.arn)}/history", {"Marker": "\0"}),
        ("POST", "/2015-03-31/functions/steps:%00/invocations", {}),
        ("GET", "/2025-12-01/functions/steps%00/durable-executions", {}),
    ]

    for method, path, params in requests:
        reply = http.request(method, path, params=params, content=b"{}")
        refused(reply)

    unchanged.check()


@pytest.mark.parametrize("text", ["a\\u0000b", "a\\ud800b"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("stop", '{"ErrorMessage": "TEXT"}'),
        ("pause", '{"Reason": "TEXT"}'),
        ("restart", '{"FromCheckpoint": "1", "Name": "TEXT"}'),
        ("callback-fail", '{"ErrorMessage": "TEXT"}'),
        ("callback-fail", '{"TEXT": "x"}'),
    ],
)
def test_nul_or_lone_surrogate_in_a_body_string_is_refused(hosted: Hosted, text: str, route: str, body: str) -> None:
    unchanged = Unchanged(hosted)
    if route == "callback-fail":
        path = f"{CALLBACKS}/{quote(hosted.callback_id, safe='')}/fail"
    else:
        path = action_path(hosted.arn, route)

    reply = hosted.http.post(path, content=body.replace("TEXT", text).encode())

    assert "cannot hold" in refused(reply)
    unchanged.check()


def test_nul_in_a_callback_result_is_refused(hosted: Hosted) -> None:
    unchanged = Unchanged(hosted)

    reply = hosted.http.post(f"{CALLBACKS}/{quote(hosted.callback_id, safe='')}/succeed", content=b'"a\x00b"')

    assert "cannot hold" in refused(reply)
    unchanged.check()


def test_handler_naming_a_step_with_nul_fails_with_the_reason_on_both_databases(hosted: Hosted) -> None:
    arn = start(hosted.http, "nul_step_name", b"{}")

    execution = ended(hosted.http, arn)

    assert execution["Status"] == "FAILED"
    assert "its Name contains the NUL character (U+0000)" in execution["Error"]["ErrorMessage"]
    assert dashboard_page(hosted.http, arn) == 200


# -- qualifiers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "qualifier"),
    [
        ("steps", f"x/durable-execution/alice/{uuid.uuid4().hex}"),
        ("steps", "名"),
        ("steps", "a\r\nX-Injected: 1"),
        ("steps", "q" * 129),
        ("steps", ""),
        ("steps:a%2Fb", None),
        ("steps:%E5%90%8D", None),
        (quote("arn:aws:lambda:us-east-1:000000000000:function:steps:a/b", safe=""), None),
    ],
    ids=["arn-path", "non-ascii", "crlf", "too-long", "empty", "in-name", "non-ascii-in-name", "in-arn"],
)
def test_invalid_qualifier_is_refused_before_anything_is_started(
    hosted: Hosted, path: str, qualifier: str | None
) -> None:
    unchanged = Unchanged(hosted)
    params = {"Qualifier": qualifier} if qualifier is not None else {}

    for invocation_type in ("RequestResponse", "Event", "DryRun"):
        reply = hosted.http.post(
            f"/2015-03-31/functions/{path}/invocations",
            params=params,
            content=b"{}",
            headers={"X-Amz-Invocation-Type": invocation_type},
        )
        assert "[a-zA-Z0-9$_-]" in refused(reply)

    unchanged.check()


def test_valid_qualifier_names_the_version_of_the_execution(hosted: Hosted) -> None:
    arn = start(hosted.http, "steps:$LATEST", b"{}")

    def invoke(qualifier: str) -> httpx.Response:
        return hosted.http.post(
            "/2015-03-31/functions/steps/invocations",
            params={"Qualifier": qualifier},
            content=b"{}",
            headers={"X-Amz-Invocation-Type": "Event"},
        )

    by_number = invoke("1")
    # Ended before the next test takes its snapshot of every execution.
    for started in (arn, by_number.headers["X-Amz-Durable-Execution-Arn"]):
        assert ended(hosted.http, started)["Status"] == "SUCCEEDED"
    unchanged = Unchanged(hosted)
    unknown = invoke("v_2-$x")

    assert ":steps:$LATEST/durable-execution/" in arn
    assert by_number.status_code == 202 and by_number.headers["X-Amz-Executed-Version"] == "1"
    assert ":steps:1/durable-execution/" in by_number.headers["X-Amz-Durable-Execution-Arn"]
    # A qualifier of Lambda's pattern that names no version or alias starts nothing.
    assert "steps has no version or alias 'v_2-$x'" in refused(unknown, 404)
    assert unknown.headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    unchanged.check()


# -- error objects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [{"StackTrace": 1}, {"StackTrace": [1, 2]}, {"StackTrace": "line"}, {"ErrorMessage": {"a": 1}}, {"ErrorType": 5}],
    ids=["trace-int", "trace-of-ints", "trace-str", "message-object", "type-int"],
)
def test_malformed_error_object_is_refused_on_stop_and_callback_failure(hosted: Hosted, error: dict[str, Any]) -> None:
    unchanged = Unchanged(hosted)
    content = json.dumps(error).encode()

    stop = hosted.http.post(f"{execution_path(hosted.arn)}/stop", content=content)
    fail = hosted.http.post(f"{CALLBACKS}/{quote(hosted.callback_id, safe='')}/fail", content=content)

    for reply in (stop, fail):
        assert "must be" in refused(reply)
    unchanged.check()


# -- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("marker", ["²", "٣", "99999999999999999999", "-1", "+1", " 1"])
@pytest.mark.parametrize("route", ["history", "logs", "state"])
def test_marker_that_is_not_a_plain_number_in_range_is_refused(hosted: Hosted, route: str, marker: str) -> None:
    unchanged = Unchanged(hosted)
    if route == "logs":
        path = f"/perdure/v1/durable-executions/{quote(hosted.arn, safe='')}/logs"
    else:
        path = f"{execution_path(hosted.arn)}/{route}"

    reply = hosted.http.get(path, params={"Marker": marker, "CheckpointToken": "1.1.x"})

    assert f"Invalid Marker {marker!r}" in refused(reply)
    unchanged.check()


@pytest.mark.parametrize("values", [[1e300 * 1e300, "x"], [10**400, "x"]], ids=["infinite", "huge"])
def test_list_marker_with_a_number_out_of_range_is_refused(hosted: Hosted, values: list[Any]) -> None:
    marker = base64.urlsafe_b64encode(json.dumps(values).encode()).decode()

    reply = hosted.http.get("/2025-12-01/functions/steps/durable-executions", params={"Marker": marker})

    assert "Invalid pagination marker" in refused(reply)


@pytest.mark.parametrize("point", ["²", "٣"])
def test_restart_from_a_checkpoint_number_in_other_digits_is_refused(hosted: Hosted, point: str) -> None:
    arn = start(hosted.http, "steps", b"{}")
    assert ended(hosted.http, arn)["Status"] == "SUCCEEDED"
    unchanged = Unchanged(hosted)

    reply = hosted.http.post(action_path(arn, "restart"), json={"FromCheckpoint": point})

    assert f"has no operation {point!r}" in refused(reply)
    unchanged.check()


@pytest.mark.parametrize("token", ["².1.x", "1.².x", "99999999999999999999.1.x", "1.99999999999999999999.x", "1.1.名"])
def test_checkpoint_token_with_odd_digits_is_stale(hosted: Hosted, token: str) -> None:
    unchanged = Unchanged(hosted)
    path = execution_path(hosted.arn)

    checkpoint = hosted.http.post(f"{path}/checkpoint", json={"CheckpointToken": token, "Updates": []})
    state = hosted.http.get(f"{path}/state", params={"CheckpointToken": token})

    for reply in (checkpoint, state):
        assert "Invalid checkpoint token" in refused(reply)
    unchanged.check()


def checkpoint_with_option(hosted: Hosted, options: str, key: str, number: str) -> httpx.Response:
    update = f'{{"Id": "a", "Type": "STEP", "Action": "RETRY", "{options}": {{"{key}": {number}}}}}'
    body = f'{{"CheckpointToken": "1.1.x", "Updates": [{update}]}}'
    return hosted.http.post(f"{execution_path(hosted.arn)}/checkpoint", content=body.encode())


@pytest.mark.parametrize(
    ("options", "key", "number"),
    [
        ("StepOptions", "NextAttemptDelaySeconds", "1e400"),
        ("StepOptions", "NextAttemptDelaySeconds", "-1e400"),
        ("StepOptions", "NextAttemptDelaySeconds", "NaN"),
        ("WaitOptions", "WaitSeconds", "Infinity"),
        ("CallbackOptions", "TimeoutSeconds", "-Infinity"),
    ],
)
def test_checkpoint_number_that_json_cannot_carry_is_refused(hosted: Hosted, options: str, key: str, number: str) -> None:
    unchanged = Unchanged(hosted)

    reply = checkpoint_with_option(hosted, options, key, number)

    message = refused(reply)
    assert message.startswith("Could not parse the request body as JSON") and number.lstrip("-") in message
    unchanged.check()


@pytest.mark.parametrize(
    ("options", "key", "number"),
    [
        ("StepOptions", "NextAttemptDelaySeconds", '"5"'),
        ("WaitOptions", "WaitSeconds", "true"),
        ("CallbackOptions", "HeartbeatTimeoutSeconds", "[1]"),
        ("CallbackOptions", "TimeoutSeconds", "{}"),
    ],
)
def test_checkpoint_duration_that_is_not_a_number_is_refused(hosted: Hosted, options: str, key: str, number: str) -> None:
    unchanged = Unchanged(hosted)

    reply = checkpoint_with_option(hosted, options, key, number)

    assert f"{key} must be a number of seconds" in refused(reply)
    unchanged.check()


@pytest.mark.parametrize("field", ["Payload", "Id", "Name", "ParentId", "SubType", "Error"])
def test_checkpoint_update_field_of_the_wrong_type_is_refused(hosted: Hosted, field: str) -> None:
    unchanged = Unchanged(hosted)
    update: dict[str, Any] = {"Id": "a", "Type": "STEP", "Action": "SUCCEED", field: 5}

    reply = hosted.http.post(
        f"{execution_path(hosted.arn)}/checkpoint", json={"CheckpointToken": "1.1.x", "Updates": [update]}
    )

    assert f"{field} must be" in refused(reply)
    unchanged.check()


def test_checkpoint_with_a_stale_token_is_refused_for_the_token_before_the_payload_size(hosted: Hosted) -> None:
    unchanged = Unchanged(hosted)
    update = {"Id": "a", "Type": "STEP", "Action": "SUCCEED", "Payload": "x" * (6 * 1024 * 1024 + 1)}

    reply = hosted.http.post(
        f"{execution_path(hosted.arn)}/checkpoint", json={"CheckpointToken": "1.1.x", "Updates": [update]}
    )

    assert "Invalid checkpoint token" in refused(reply)
    unchanged.check()


# -- the dashboard ----------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.mark.parametrize(("page", "field"), [("/execution", "arn"), ("/", "name"), ("/", "function"), ("/inbox", "function")])
def test_nul_in_a_dashboard_query_is_refused(hosted: Hosted, page: str, field: str) -> None:
    unchanged = Unchanged(hosted)

    reply = hosted.http.get(page, params={field: "a\0b"})

    assert reply.status_code == 400, reply.text
    assert "NUL" in reply.text
    unchanged.check()


def test_dashboard_shows_a_result_nested_too_deep_to_pretty_print(hosted: Hosted) -> None:
    # A handler's own result may nest as deep as Python's json can write it, deeper than a
    # page rendered a few hundred frames down the stack can read it back.
    arn = start(hosted.http, "deep_result", b'{"depth": 960}')
    assert ended(hosted.http, arn)["Status"] == "SUCCEEDED"

    page = hosted.http.get("/execution", params={"arn": arn})

    assert page.status_code == 200, page.text
    assert "[[[[" in page.text


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        # Deep enough to break Python's json, short enough for the dashboard's 16 KiB cap on a form.
        ("result", deep(2000).decode(), f"nested more than {MAX_JSON_DEPTH} levels deep"),
        ("callback_id", "CALLBACK\0", "NUL"),
        ("error", "a\0b", "NUL"),
    ],
    ids=["deep-result", "nul-callback-id", "nul-error"],
)
def test_dashboard_callback_form_with_a_hostile_value_is_refused_and_the_callback_stays_open(
    hosted: Hosted, field: str, value: str, expected: str
) -> None:
    unchanged = Unchanged(hosted)
    page = hosted.http.get("/execution", params={"arn": hosted.arn})
    found = _CSRF.search(page.text)
    assert found is not None, "the execution page has no form to approve the callback"
    form = {"csrf": found.group(1), "callback_id": hosted.callback_id, "outcome": "approve"}
    if field == "error":
        form["outcome"] = "reject"
    form[field] = value.replace("CALLBACK", hosted.callback_id)

    reply = hosted.http.post("/actions/callback", data=form, headers={"Origin": hosted.server.endpoint})

    assert reply.status_code == 400, reply.text
    assert expected in reply.text
    unchanged.check()


# -- fuzzing every route ------------------------------------------------------------------------

HOSTILE_TEXT = [
    "", "\0", "²", "名", "a" * 5000, "-1", "99999999999999999999", "1e400", "NaN", "true",
    "%00", "../x", "a/b", " ", "\r\n",
]  # fmt: skip
HOSTILE_JSON: list[Any] = [
    None, True, -1, 0, 10**30, 1.5, 1e308, "", "\0", "\ud800", "²", "x" * 5000, [], [1], {}, {"a": 1},
]  # fmt: skip
FIELDS = [
    "CheckpointToken", "Updates", "ClientToken", "ErrorMessage", "ErrorType", "ErrorData", "StackTrace",
    "Reason", "ExecutionTimeoutPaused", "FromCheckpoint", "Name",
]  # fmt: skip
UPDATE_FIELDS = [
    "Id", "Type", "Action", "ParentId", "Name", "SubType", "Payload", "Error", "ContextOptions", "StepOptions",
    "WaitOptions", "CallbackOptions", "ChainedInvokeOptions",
]  # fmt: skip
QUERY = ["Marker", "MaxItems", "ReverseOrder", "IncludeExecutionData", "Statuses", "DurableExecutionName",
         "StartedAfter", "StartedBefore", "CheckpointToken", "Qualifier"]  # fmt: skip
ROUTES = [
    ("POST", "/2015-03-31/functions/{function}/invocations"),
    ("POST", f"{API}/{{arn}}/stop"),
    ("GET", "/2025-12-01/functions/{function}/durable-executions"),
    ("GET", f"{API}/{{arn}}"),
    ("GET", f"{API}/{{arn}}/history"),
    ("GET", f"{API}/{{arn}}/state"),
    ("POST", f"{API}/{{arn}}/checkpoint"),
    ("POST", f"{API}/{{arn}}/pause"),
    ("POST", f"{API}/{{arn}}/resume"),
    ("POST", f"{CALLBACKS}/{{callback}}/fail"),
    ("POST", f"{CALLBACKS}/{{callback}}/heartbeat"),
    ("GET", "/perdure/v1/durable-executions/{arn}/logs"),
    ("POST", "/perdure/v1/durable-executions/{arn}/restart"),
]


def _json_value() -> st.SearchStrategy[Any]:
    scalar = st.sampled_from(HOSTILE_JSON) | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalar,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=6,
    )


_words = st.sampled_from(["STEP", "WAIT", "CALLBACK", "START", "SUCCEED", "RETRY"])
_updates = st.lists(st.dictionaries(st.sampled_from(UPDATE_FIELDS), _json_value() | _words), max_size=2)
_bodies = st.dictionaries(st.sampled_from(FIELDS), _json_value()) | st.fixed_dictionaries(
    {"CheckpointToken": st.sampled_from(HOSTILE_TEXT), "Updates": _updates}
)


@pytest.fixture(scope="module")
def victim(hosted: Hosted) -> tuple[str, str]:
    """An execution of its own for the fuzzer to stop, pause and fail: (ARN, callback ID)."""
    arn = start(hosted.http, "flow", b'{"wait": 1}')
    return arn, open_callback(hosted.http, arn)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    segment=st.sampled_from(HOSTILE_TEXT) | st.text(max_size=30),
    query=st.dictionaries(st.sampled_from(QUERY), st.sampled_from(HOSTILE_TEXT) | st.text(max_size=10), max_size=3),
    body=_bodies | st.sampled_from([b"[]", b"1e400", b"NaN", b'"\\ud800"', b"\xff\xfe", deep(2000)]),
)
def test_no_malformed_request_gets_a_server_error(
    hosted: Hosted, victim: tuple[str, str], route: tuple[str, str], segment: str, query: dict[str, str], body: Any
) -> None:
    method, template = route
    arn, callback = victim
    path = template.format(
        function=quote(segment or "steps", safe=""),
        arn=quote(segment or arn, safe=""),
        callback=quote(segment or callback, safe=""),
    )
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    if method == "GET":
        content = b""

    reply = hosted.http.request(method, path, params=query, content=content, headers={"X-Amz-Invocation-Type": "DryRun"})

    assert reply.status_code < 500, (method, path, query, content[:200], reply.text)
    if reply.status_code >= 400:
        refused(reply, reply.status_code)

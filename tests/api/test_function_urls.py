"""Function URLs against a real `perdure serve --template` with an API key (no --dev).

Requests are sent with ``curl`` where the point is what a webhook sender does, and with httpx
where a test reads the details; each test checks what the server started, not only what it said.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from servers import HANDLERS, PERDURE, Server

from perdure.api.dev_guard import ForbiddenRequestError, UnsupportedMediaTypeError, check
from perdure.client import SigV4

TEMPLATE = f"""\
Globals:
  Function:
    CodeUri: {HANDLERS}
    Timeout: 60
    DurableConfig: {{ExecutionTimeout: 3600}}
Resources:
  Hook:
    Type: AWS::Serverless::Function
    Properties:
      Handler: webhooks.hook
      FunctionUrlConfig: {{AuthType: NONE}}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Handler: webhooks.echo
      FunctionUrlConfig: {{AuthType: NONE, InvokeMode: BUFFERED}}
  Held:
    Type: AWS::Serverless::Function
    Properties:
      Handler: webhooks.held
      FunctionUrlConfig: {{AuthType: AWS_IAM}}
  Failing:
    Type: AWS::Serverless::Function
    Properties:
      Handler: webhooks.failing
      FunctionUrlConfig: {{AuthType: NONE}}
  Quiet:
    Type: AWS::Serverless::Function
    Properties:
      Handler: webhooks.echo
"""


class Site:
    def __init__(self, server: Server, key: dict[str, Any], log: Path) -> None:
        self.server, self.key, self.log = server, key, log
        self.url = server.endpoint

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key['Token']}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def executions(self, function: str) -> list[dict[str, Any]]:
        reply = self.api("GET", f"/2025-12-01/functions/{function}/durable-executions?MaxItems=1000")
        assert reply.status_code == 200, reply.text
        return list(reply.json()["DurableExecutions"])

    def execution(self, arn: str) -> dict[str, Any]:
        reply = self.api("GET", f"/2025-12-01/durable-executions/{quote(arn, safe='')}")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("function-urls")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PERDURE_TOKEN"}
    env["PERDURE_TEST_LOG"] = str(workdir / "side-effects.log")
    (workdir / "template.yaml").write_text(TEMPLATE)
    db_url = f"sqlite:///{workdir / 'perdure.db'}"
    made = subprocess.run(
        [*PERDURE, "keys", "create", "--name", "hooks", "--db", db_url], env=env, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    server = Server(["--template", str(workdir / "template.yaml")], workdir, env, dev=False)
    server.start()
    try:
        yield Site(server, json.loads(made.stdout), workdir / "side-effects.log")
    finally:
        server.stop()


def curl(*args: str) -> tuple[int, dict[str, str], str]:
    """Runs curl; returns the reply's status, headers (lower-case names) and body."""
    done = subprocess.run(["curl", "-sS", "-i", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *lines = head.splitlines()
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def test_curl_with_an_idempotency_key_twice_starts_one_execution(site: Site) -> None:
    key = f"delivery-{uuid.uuid4().hex[:8]}"
    send = ["-X", "POST", "-H", f"Idempotency-Key: {key}", "-H", "Content-Type: application/json"]
    first = curl(*send, "-d", '{"order": "A-1"}', f"{site.url}/url/Hook/orders?source=shop")
    again = curl(*send, "-d", '{"order": "A-1"}', f"{site.url}/url/Hook/orders?source=shop")

    for status, headers, body in (first, again):
        assert status == 201, body
        assert headers["x-hook"] == "yes" and headers["set-cookie"] == "seen=1; Path=/"
        assert json.loads(body) == {"got": '{"order": "A-1"}', "path": "/orders", "query": {"source": "shop"}}
    assert first[1]["x-amz-durable-execution-arn"] == again[1]["x-amz-durable-execution-arn"]
    assert f"/durable-execution/{key}/" in first[1]["x-amz-durable-execution-arn"]
    assert [e["DurableExecutionName"] for e in site.executions("Hook")].count(key) == 1
    assert site.lines().count('started /orders {"order": "A-1"}') == 1

    # The same key with another body is another request: refused, and nothing more starts.
    status, headers, body = curl(*send, "-d", '{"order": "B-2"}', f"{site.url}/url/Hook/orders?source=shop")
    assert status == 409 and headers["x-amzn-errortype"] == "ResourceConflictException"
    assert f"The Idempotency-Key names execution '{key}' of Hook" in body and "send a new key" in body
    assert [e["DurableExecutionName"] for e in site.executions("Hook")].count(key) == 1
    assert not any("B-2" in line for line in site.lines())


def test_a_key_outside_the_name_rule_and_an_explicit_name_each_start_one_execution(site: Site) -> None:
    key = "stripe evt/" + uuid.uuid4().hex + "!" * 80
    replies = [httpx.post(f"{site.url}/url/Hook", content=b"ping", headers={"Idempotency-Key": key}, timeout=30) for _ in range(2)]
    assert [r.status_code for r in replies] == [201, 201]
    arn = replies[0].headers["x-amz-durable-execution-arn"]
    assert arn == replies[1].headers["x-amz-durable-execution-arn"] and "/durable-execution/key-" in arn

    name = f"named-{uuid.uuid4().hex[:8]}"
    for _ in range(2):
        reply = httpx.post(f"{site.url}/url/Hook", content=b"pong", headers={"X-Perdure-Execution-Name": name}, timeout=30)
        assert reply.status_code == 201
    assert [e["DurableExecutionName"] for e in site.executions("Hook")].count(name) == 1

    bad = httpx.post(f"{site.url}/url/Hook", content=b"x", headers={"X-Perdure-Execution-Name": "no spaces"}, timeout=30)
    assert bad.status_code == 400 and "is not a valid execution name" in bad.text
    both = httpx.post(
        f"{site.url}/url/Hook", content=b"x", headers={"X-Perdure-Execution-Name": "a", "Idempotency-Key": "b"}, timeout=30
    )
    assert both.status_code == 400 and "send one" in both.text


def test_the_event_is_lambdas_function_url_event(site: Site) -> None:
    binary = bytes(range(256))
    reply = httpx.post(
        f"{site.url}/url/Echo/a%20b/c?x=1&x=2&y=",
        content=binary,
        headers={
            "Content-Type": "application/octet-stream",
            "Cookie": "theme=dark; perdure_session=v1.secret.mac; lang=en",
            "X-Signature": "sha256=abc",
            "User-Agent": "GitHub-Hookshot/1",
        },
        timeout=30,
    )
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    event = reply.json()["event"]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/a%20b/c" and event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["cookies"] == ["theme=dark", "lang=en"], "the dashboard's session cookie is not kept"
    assert event["headers"]["x-signature"] == "sha256=abc" and "cookie" not in event["headers"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == binary
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST", "path": "/a%20b/c", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "GitHub-Hookshot/1",
    }  # fmt: skip
    assert context["routeKey"] == "$default" and context["stage"] == "$default" and context["apiId"] == "Echo"
    assert isinstance(context["timeEpoch"], int) and context["requestId"]

    text = httpx.post(f"{site.url}/url/Echo", json={"a": "é"}, timeout=30).json()["event"]
    assert text["isBase64Encoded"] is False and json.loads(text["body"]) == {"a": "é"} and text["rawPath"] == "/"
    assert "queryStringParameters" not in text and "cookies" not in text
    empty = httpx.post(f"{site.url}/url/Echo", timeout=30).json()["event"]
    assert "body" not in empty and empty["isBase64Encoded"] is False


def test_an_aws_iam_url_needs_a_key_and_keeps_it_out_of_the_input(site: Site) -> None:
    before = len(site.executions("Held"))
    refused = httpx.post(f"{site.url}/url/Held", content=b"anyone", timeout=30)
    assert refused.status_code == 403 and refused.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    wrong = httpx.post(f"{site.url}/url/Held", content=b"x", headers={"Authorization": "Bearer pdt_nope"}, timeout=30)
    assert wrong.status_code == 403
    assert len(site.executions("Held")) == before

    token = site.key["Token"]
    status, headers, body = curl("-X", "POST", "-H", f"Authorization: Bearer {token}", "-d", "ship it", f"{site.url}/url/Held")
    # It waits for a callback: answered at once with its ARN, not held for the function's timeout.
    assert status == 202, body
    arn = headers["x-amz-durable-execution-arn"]
    assert json.loads(body) == {"DurableExecutionArn": arn, "Status": "RUNNING"}
    stored = site.execution(arn)["InputPayload"]
    assert token not in stored and "authorization" not in json.loads(stored)["headers"]

    signed = SigV4(site.key["AccessKeyId"], site.key["SecretAccessKey"])
    reply = httpx.post(f"{site.url}/url/Held/signed", content=b"signed", auth=signed, timeout=30)
    assert reply.status_code == 202, reply.text
    assert len(site.executions("Held")) == before + 2


def test_an_open_url_answers_without_a_key_while_the_api_needs_one(site: Site) -> None:
    assert httpx.get(f"{site.url}/2015-03-31/functions", timeout=30).status_code == 403
    assert httpx.post(f"{site.url}/url/Hook", content=b"open", timeout=30).status_code == 201


def test_a_failed_execution_is_answered_502_without_its_error(site: Site) -> None:
    reply = httpx.post(f"{site.url}/url/Failing", content=b"{}", timeout=30)
    assert reply.status_code == 502
    assert reply.json()["Status"] == "FAILED" and "hunter2" not in reply.text
    assert site.execution(reply.headers["x-amz-durable-execution-arn"])["Error"]["ErrorType"] == "ValueError"


def test_what_is_not_a_function_url_is_refused_alike(site: Site) -> None:
    missing = httpx.post(f"{site.url}/url/Nowhere", content=b"x", timeout=30)
    quiet = httpx.post(f"{site.url}/url/Quiet", content=b"x", timeout=30)
    assert missing.status_code == quiet.status_code == 404
    assert "no function of that name has a FunctionUrlConfig" in quiet.text
    assert site.executions("Quiet") == []
    got = httpx.get(f"{site.url}/url/Hook", timeout=30)
    assert got.status_code == 405 and got.headers["allow"] == "POST"


def _scope(path: str, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "path": path, "headers": [(b"host", b"127.0.0.1:8500"), (b"content-length", b"3"), *headers]}


def test_in_dev_mode_a_url_takes_any_body_but_not_another_sites_page() -> None:
    form = (b"content-type", b"application/x-www-form-urlencoded")
    check(_scope("/url/Hook", form))
    with pytest.raises(UnsupportedMediaTypeError):
        check(_scope("/2015-03-31/functions/Hook/invocations", form))
    with pytest.raises(ForbiddenRequestError):
        check(_scope("/url/Hook", form, (b"origin", b"https://evil.example")))
    with pytest.raises(ForbiddenRequestError):
        check(_scope("/url/Hook", (b"sec-fetch-site", b"cross-site")))

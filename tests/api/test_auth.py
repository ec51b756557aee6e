"""Authentication: SigV4 (boto3, the AWS CLI, the perdure client) and bearer tokens, and every refusal.

Most tests share one `perdure serve` without --dev (module scope), with keys made by
`perdure keys create` on its database. Each refused request is a write (an invoke, a callback
completion) and the test checks that nothing changed: the function's executions, the waiting
execution's state and history, and the side-effect log the handlers write.

Requests are signed with botocore's own signer, here in the tests only; the server verifies
them with its own code (perdure.api.auth).
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError
from servers import PERDURE, Server, handler_target, wait_for
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.auth import Authenticator, canonical_request
from perdure.api.keys import KeyRing, NewKey
from perdure.client import SigV4
from perdure.errors import InvalidParameterError, NotFoundError
from perdure.store.sqlite import SQLiteStore

FUNCTIONS = {"steps": "steps", "other": "steps", "flow": "step_wait_callback"}
AWS = str(Path(sys.executable).parent / "aws")
# Keep the AWS settings of whoever runs the tests out of the subprocesses.
_CLEAN_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("PERDURE_TOKEN", "PERDURE_SECRET")
}


@dataclass(frozen=True)
class Key:
    """The credentials `perdure keys create` printed."""

    name: str
    access_key_id: str
    secret_access_key: str
    token: str


def keys_command(workdir: Path, db_url: str, *args: str, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [*PERDURE, "keys", *args, "--db", db_url],
        cwd=workdir, env=env or _CLEAN_ENV, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def create_key(workdir: Path, db_url: str, name: str) -> Key:
    made = keys_command(workdir, db_url, "create", "--name", name)
    return Key(name, made["AccessKeyId"], made["SecretAccessKey"], made["Token"])


@dataclass
class Secured:
    server: Server
    key: Key
    side_effects: Path

    def client(self, access_key_id: str | None = None, secret: str | None = None, region: str = "eu-west-3") -> Any:
        """A boto3 ``lambda`` client signing with the key pair (by default the server's key)."""
        return boto3.client(
            "lambda",
            endpoint_url=self.server.endpoint,
            region_name=region,
            aws_access_key_id=access_key_id or self.key.access_key_id,
            aws_secret_access_key=secret or self.key.secret_access_key,
            config=Config(retries={"max_attempts": 1}, read_timeout=60),
        )

    def executions(self, function: str) -> list[str]:
        listed = self.client().list_durable_executions_by_function(FunctionName=function)
        return sorted(e["DurableExecutionArn"] for e in listed["DurableExecutions"])

    def state(self) -> tuple[list[str], list[str], str]:
        """What a refused write must not change: the executions of steps and other, and the side effects."""
        log = self.side_effects.read_text() if self.side_effects.exists() else ""
        return self.executions("steps"), self.executions("other"), log

    def url(self, path: str) -> str:
        return self.server.endpoint + path


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    workdir = tmp_path_factory.mktemp("auth")
    side_effects = workdir / "side-effects.log"
    env = {**_CLEAN_ENV, "PERDURE_TEST_LOG": str(side_effects)}
    targets = [handler_target(name, attribute) for name, attribute in FUNCTIONS.items()]
    server = Server(targets, workdir, env, dev=False)
    key = create_key(workdir, server.db_url, "ci")
    server.start()
    try:
        yield Secured(server, key, side_effects)
    finally:
        server.stop()


def invocation_path(function: str) -> str:
    return f"/2015-03-31/functions/{function}/invocations"


def signed(method: str, url: str, body: bytes, access_key_id: str, secret: str, at: datetime.datetime | None = None) -> dict[str, str]:
    """The headers botocore's signer adds to a request (signed at ``at``, default now)."""
    request = AWSRequest(method=method, url=url, data=body)
    signer = SigV4Auth(BotoCredentials(access_key_id, secret), "lambda", "us-east-1")
    if at is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
            signer.add_auth(request)
    return dict(request.headers.items())


def assert_refused(response: httpx.Response, code: str) -> str:
    """A 403 in Lambda's error shape with this error code; returns the message."""
    assert response.status_code == 403, response.text
    assert response.headers["x-amzn-ErrorType"] == code
    body = response.json()
    assert body["Type"] == "User" and body["message"] == body["Message"]
    return str(body["message"])


def client_error(call: Any, code: str, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    assert error["Code"] == code, error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return str(error["Message"])


def invoke(client: Any, function: str, payload: Any, **kwargs: Any) -> dict[str, Any]:
    reply = client.invoke(FunctionName=function, Payload=json.dumps(payload).encode(), **kwargs)
    raw = reply["Payload"].read()
    reply["Payload"] = json.loads(raw) if raw else None
    return reply  # type: ignore[no-any-return]


# -- what works with authentication on --------------------------------------------------------


def test_boto3_with_a_key_pair_runs_every_kind_of_call(secured: Secured) -> None:
    client = secured.client()
    reply = invoke(client, "steps", {"count": 4})
    assert reply["StatusCode"] == 200 and reply["Payload"] == {"total": 6}
    arn = reply["DurableExecutionArn"]
    # The ARN travels as one path segment with %3A and %2F, which SigV4 signs encoded twice.
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "SUCCEEDED"
    events = client.get_durable_execution_history(DurableExecutionArn=arn, MaxItems=2)
    assert len(events["Events"]) == 2 and events["NextMarker"]
    rest = client.get_durable_execution_history(DurableExecutionArn=arn, Marker=events["NextMarker"])
    assert rest["Events"][-1]["EventType"] == "ExecutionSucceeded"
    assert arn in secured.executions("steps")
    assert {f["FunctionName"] for f in client.list_functions()["Functions"]} == set(FUNCTIONS)


def test_a_callback_completes_over_boto3_and_refused_completions_change_nothing(secured: Secured) -> None:
    client = secured.client(region="ap-southeast-2")
    reply = invoke(client, "flow", {"wait": 1}, InvocationType="Event")
    arn = reply["DurableExecutionArn"]

    def started() -> str | None:
        text = secured.side_effects.read_text() if secured.side_effects.exists() else ""
        found = re.search(r"^callback:(\S+)$", text, re.MULTILINE)
        return found[1] if found else None

    callback_id = str(wait_for(started, timeout=30))
    path = f"/2025-12-01/durable-execution-callbacks/{callback_id.replace('/', '%2F')}/succeed"

    body = b'{"approved": true}'
    unsigned = httpx.post(secured.url(path), content=body)
    assert_refused(unsigned, "MissingAuthenticationTokenException")
    other_path = "/2025-12-01/durable-execution-callbacks/not-this-one/succeed"
    headers = signed("POST", secured.url(other_path), body, secured.key.access_key_id, secured.key.secret_access_key)
    assert_refused(httpx.post(secured.url(path), content=body, headers=headers), "InvalidSignatureException")
    headers = signed("POST", secured.url(path), b'{"approved": false}', secured.key.access_key_id, secured.key.secret_access_key)
    assert_refused(httpx.post(secured.url(path), content=body, headers=headers), "InvalidSignatureException")

    # The execution may still be recording its announce step; what must not be there is the callback's end.
    assert client.get_durable_execution(DurableExecutionArn=arn)["Status"] == "RUNNING"
    events = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    assert [e["EventType"] for e in events if e["EventType"].startswith("Callback")] == ["CallbackStarted"]
    assert "last" not in secured.side_effects.read_text().split()

    client.send_durable_execution_callback_success(CallbackId=callback_id, Result=body)
    execution = wait_for(
        lambda: (e := client.get_durable_execution(DurableExecutionArn=arn))["Status"] != "RUNNING" and e, timeout=30
    )
    assert execution["Status"] == "SUCCEEDED"  # type: ignore[index]
    assert json.loads(execution["Result"])["answer"] == body.decode()  # type: ignore[index]


def aws_cli(secured: Secured, *args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **_CLEAN_ENV,
        "AWS_ACCESS_KEY_ID": secured.key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret or secured.key.secret_access_key,
        "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.run(
        [AWS, "lambda", *args, "--endpoint-url", secured.server.endpoint, "--output", "json"],
        cwd=secured.server.workdir, env=env, capture_output=True, text=True, timeout=120,
    )


def test_the_aws_cli_invokes_and_reads_an_execution(secured: Secured, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = aws_cli(
        secured, "invoke", "--function-name", "steps", "--payload", '{"count": 5}', str(out),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text()) == {"total": 10}
    arn = json.loads(done.stdout)["DurableExecutionArn"]

    done = aws_cli(secured, "get-durable-execution", "--durable-execution-arn", arn)
    assert done.returncode == 0, done.stderr
    execution = json.loads(done.stdout)
    assert (execution["DurableExecutionArn"], execution["Status"]) == (arn, "SUCCEEDED")


def test_the_aws_cli_with_a_wrong_secret_is_refused(secured: Secured, tmp_path: Path) -> None:
    before = secured.state()
    done = aws_cli(secured, "invoke", "--function-name", "steps", str(tmp_path / "out.json"), secret="x" * 40)
    assert done.returncode != 0
    assert "InvalidSignatureException" in done.stderr
    assert secured.state() == before


def perdure_client(secured: Secured, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PERDURE, *args, "--endpoint", secured.server.endpoint],
        cwd=secured.server.workdir, env={**_CLEAN_ENV, **env}, capture_output=True, text=True, timeout=120,
    )


def test_the_perdure_client_commands_use_a_token_or_aws_credentials(secured: Secured) -> None:
    with_token = perdure_client(secured, "invoke", "steps", "--payload", '{"count": 3}', PERDURE_TOKEN=secured.key.token)
    assert with_token.returncode == 0, with_token.stderr
    arn = json.loads(with_token.stdout)["DurableExecutionArn"]

    aws = {"AWS_ACCESS_KEY_ID": secured.key.access_key_id, "AWS_SECRET_ACCESS_KEY": secured.key.secret_access_key}
    shown = perdure_client(secured, "executions", "history", arn, **aws)  # a signed query (MaxItems)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)[-1]["EventType"] == "ExecutionSucceeded"
    listed = perdure_client(secured, "executions", "list", "--function", "steps", "--status", "SUCCEEDED", **aws)
    assert listed.returncode == 0, listed.stderr
    assert arn in [e["DurableExecutionArn"] for e in json.loads(listed.stdout)]

    before = secured.state()
    refused = perdure_client(secured, "invoke", "steps")
    assert refused.returncode == 1
    assert "Missing Authentication Token" in refused.stderr and "set PERDURE_TOKEN" in refused.stderr
    assert secured.state() == before


def test_the_client_signs_queries_as_sigv4_encodes_them(secured: Secured) -> None:
    # httpx writes a space as '+' in the URL; the signature must cover what the server decodes.
    auth = SigV4(secured.key.access_key_id, secured.key.secret_access_key, "us-east-1")
    url = secured.url("/2025-12-01/functions/steps/durable-executions")
    response = httpx.get(url, params={"DurableExecutionName": "a b+c/d~é=&x", "MaxItems": "3"}, auth=auth)
    assert response.status_code == 200, response.text
    assert response.json()["DurableExecutions"] == []


def test_health_is_open(secured: Secured) -> None:
    assert httpx.get(secured.url("/health")).json() == {"status": "ok"}


def test_a_signature_made_four_minutes_ago_still_passes(secured: Secured) -> None:
    at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=4)
    url = secured.url("/2015-03-31/functions/")
    headers = signed("GET", url, b"", secured.key.access_key_id, secured.key.secret_access_key, at)
    assert httpx.get(url, headers=headers).status_code == 200


# -- each refusal changes nothing --------------------------------------------------------------


def test_no_credentials_are_refused(secured: Secured) -> None:
    before = secured.state()
    response = httpx.post(secured.url(invocation_path("steps")), content=b'{"count": 1}')
    message = assert_refused(response, "MissingAuthenticationTokenException")
    assert "perdure keys create" in message
    assert secured.state() == before


def test_a_wrong_secret_is_refused(secured: Secured) -> None:
    before = secured.state()
    client = secured.client(secret="w" * 40)
    message = client_error(client.invoke, "InvalidSignatureException", FunctionName="steps", Payload=b"{}")
    assert "signature we calculated does not match" in message
    assert secured.state() == before


def test_an_unknown_key_id_is_refused(secured: Secured) -> None:
    before = secured.state()
    client = secured.client(access_key_id="PERDAAAAAAAAAAAAAAAA")
    message = client_error(client.invoke, "UnrecognizedClientException", FunctionName="steps", Payload=b"{}")
    assert "PERDAAAAAAAAAAAAAAAA" in message
    assert secured.state() == before


def test_a_body_changed_after_signing_is_refused(secured: Secured) -> None:
    before = secured.state()
    url = secured.url(invocation_path("steps"))
    headers = signed("POST", url, b'{"count": 1}', secured.key.access_key_id, secured.key.secret_access_key)
    response = httpx.post(url, content=b'{"count": 9}', headers=headers)
    assert_refused(response, "InvalidSignatureException")
    # With the body's hash sent along (as S3 clients do), the mismatch is named.
    tampered = {**headers, "X-Amz-Content-SHA256": hashlib.sha256(b'{"count": 1}').hexdigest()}
    assert "X-Amz-Content-SHA256" in assert_refused(
        httpx.post(url, content=b'{"count": 9}', headers=tampered), "InvalidSignatureException"
    )
    assert secured.state() == before


def test_a_path_changed_after_signing_is_refused(secured: Secured) -> None:
    before = secured.state()
    headers = signed(
        "POST", secured.url(invocation_path("steps")), b"{}", secured.key.access_key_id, secured.key.secret_access_key
    )
    assert_refused(
        httpx.post(secured.url(invocation_path("other")), content=b"{}", headers=headers), "InvalidSignatureException"
    )
    # Paths SigV4 normalizes to the signed one are refused too (sent raw: httpx would normalize them).
    for path in ("/2015-03-31/functions/x/../steps/invocations", "/2015-03-31//functions/steps/invocations"):
        connection = http.client.HTTPConnection("127.0.0.1", secured.server.port, timeout=30)
        try:
            connection.request("POST", path, body=b"{}", headers=headers)
            reply = connection.getresponse()
            assert reply.status == 403 and reply.getheader("x-amzn-ErrorType") == "InvalidSignatureException"
            assert "'.' or '..' segments" in json.loads(reply.read())["message"]
        finally:
            connection.close()
    assert secured.state() == before


def test_a_query_changed_after_signing_is_refused(secured: Secured) -> None:
    url = secured.url("/2025-12-01/functions/steps/durable-executions")
    headers = signed("GET", url + "?MaxItems=1", b"", secured.key.access_key_id, secured.key.secret_access_key)
    assert httpx.get(url + "?MaxItems=1", headers=headers).status_code == 200
    assert_refused(httpx.get(url + "?MaxItems=2", headers=headers), "InvalidSignatureException")


@pytest.mark.parametrize("minutes", [-6, 6, -60 * 24])
def test_a_stale_or_future_date_is_refused(secured: Secured, minutes: int) -> None:
    before = secured.state()
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
    url = secured.url(invocation_path("steps"))
    headers = signed("POST", url, b"{}", secured.key.access_key_id, secured.key.secret_access_key, at)
    message = assert_refused(httpx.post(url, content=b"{}", headers=headers), "InvalidSignatureException")
    assert message.startswith("Signature expired")
    assert secured.state() == before


@pytest.mark.parametrize(
    "authorization",
    ["Bearer pdt_not-a-real-token", "Bearer", "bearer x"],
)
def test_a_bad_bearer_token_is_refused(secured: Secured, authorization: str) -> None:
    before = secured.state()
    response = httpx.post(secured.url(invocation_path("steps")), content=b"{}", headers={"Authorization": authorization})
    assert_refused(response, "UnrecognizedClientException")
    assert secured.state() == before


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Basic dXNlcjpwYXNz", "IncompleteSignatureException"),
        ("AWS4-HMAC-SHA256 Credential=PERDX/20250101/us-east-1/lambda/aws4_request", "IncompleteSignatureException"),
    ],
)
def test_a_malformed_authorization_is_refused(secured: Secured, authorization: str, code: str) -> None:
    before = secured.state()
    response = httpx.post(secured.url(invocation_path("steps")), content=b"{}", headers={"Authorization": authorization})
    assert_refused(response, code)
    assert secured.state() == before


def test_a_revoked_key_is_refused_at_once(secured: Secured) -> None:
    server = secured.server
    temporary = create_key(server.workdir, server.db_url, "temporary")
    client = secured.client(temporary.access_key_id, temporary.secret_access_key)
    bearer = {"Authorization": f"Bearer {temporary.token}"}
    assert client.list_functions()["Functions"]
    assert httpx.get(secured.url("/2015-03-31/functions/"), headers=bearer).status_code == 200

    revoked = keys_command(server.workdir, server.db_url, "revoke", "temporary")
    assert (revoked["AccessKeyId"], revoked["Status"]) == (temporary.access_key_id, "REVOKED")

    before = secured.state()
    client_error(client.invoke, "UnrecognizedClientException", FunctionName="steps", Payload=b"{}")
    response = httpx.post(secured.url(invocation_path("steps")), content=b"{}", headers=bearer)
    assert_refused(response, "UnrecognizedClientException")
    assert secured.state() == before
    listed = {k["Name"]: k["Status"] for k in keys_command(server.workdir, server.db_url, "list")}
    assert listed == {"ci": "ACTIVE", "temporary": "REVOKED"}


# -- starting the server -----------------------------------------------------------------------


def serve_once(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Runs `perdure serve` that is expected to refuse to start."""
    return subprocess.run(
        [*PERDURE, "serve", handler_target("steps", "steps"), "--db", f"sqlite:///{workdir / 'p.db'}", *args],
        cwd=workdir, env=env or _CLEAN_ENV, capture_output=True, text=True, timeout=60,
    )


def test_without_keys_and_without_dev_the_server_refuses_to_start(tmp_path: Path) -> None:
    done = serve_once(tmp_path)
    assert done.returncode == 1
    assert "No API keys exist" in done.stderr and "perdure keys create --name NAME" in done.stderr
    assert "--dev" in done.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
def test_dev_is_refused_beyond_loopback(tmp_path: Path, host: str) -> None:
    done = serve_once(tmp_path, "--dev", "--host", host)
    assert done.returncode == 2
    assert "allowed only on a loopback --host" in done.stderr


def test_dev_on_loopback_runs_open_and_says_so(tmp_path: Path) -> None:
    server = Server([handler_target("steps", "steps")], tmp_path, {**_CLEAN_ENV, "PERDURE_TEST_LOG": str(tmp_path / "log")})
    server.start()
    try:
        response = httpx.post(server.endpoint + invocation_path("steps"), content=b'{"count": 2}')
        assert response.status_code == 200 and response.json() == {"total": 1}, (response.text, server.log.read_text())
    finally:
        server.stop()
    assert "Development mode (--dev): the API is open" in server.log.read_text()


def test_a_server_under_another_secret_accepts_tokens_but_not_signatures(tmp_path: Path) -> None:
    env = {**_CLEAN_ENV, "PERDURE_TEST_LOG": str(tmp_path / "log"), "PERDURE_SECRET": "another secret, of 32 bytes or more"}
    server = Server([handler_target("steps", "steps")], tmp_path, env, dev=False)
    key = create_key(tmp_path, server.db_url, "elsewhere")  # under the data folder's secret file
    server.start()
    try:
        assert "was made under another server secret" in server.log.read_text()
        assert "Authentication on" in server.log.read_text()
        url = server.endpoint + "/2015-03-31/functions/"
        headers = signed("GET", url, b"", key.access_key_id, key.secret_access_key)
        assert_refused(httpx.get(url, headers=headers), "InvalidSignatureException")
        assert httpx.get(url, headers={"Authorization": f"Bearer {key.token}"}).status_code == 200
    finally:
        server.stop()


# -- the canonical request is the one botocore signed ------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8500/2015-03-31/functions/",
        (
            "http://127.0.0.1:8500/2025-12-01/durable-executions/"
            "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Asteps%3A%24LATEST%2Fdurable-execution%2Fa%20b/history"
            "?MaxItems=5&Marker=a%20b%2Fc%2Bd~&IncludeExecutionData=true"
        ),
        "http://localhost/2025-12-01/durable-execution-callbacks/abc~_-.%2B%3D/succeed?Empty=&B=2&A=1&A=0",
    ],
)
def test_the_canonical_request_is_what_botocore_signs(url: str) -> None:
    request = AWSRequest(method="POST", url=url, data=b'{"x": 1}', headers={"X-Amz-Date": "20250101T000000Z", "Content-Type": "  a   b "})
    signer = SigV4Auth(BotoCredentials("id", "secret"), "lambda", "us-east-1")
    expected = signer.canonical_request(request)
    names = tuple(signer.headers_to_sign(request))
    host = httpx.URL(url).netloc.decode()
    headers = {"host": [host], "x-amz-date": ["20250101T000000Z"], "content-type": ["  a   b "]}
    raw = httpx.URL(url)
    ours = canonical_request(
        "POST", raw.raw_path.decode().split("?")[0], raw.query.decode(), headers, tuple(sorted(names)),
        hashlib.sha256(b'{"x": 1}').hexdigest(),
    )
    assert ours == expected


# -- the authenticator in-process: what reaches the app ---------------------------------------

SIGNED_AT = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@dataclass
class AsgiClient:
    """Sends requests to an ASGI app in this process, each in its own event loop."""

    app: Any

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


@dataclass
class InProcess:
    """An ``Authenticator`` over an app that records what reaches it, on a SQLite store."""

    client: AsgiClient
    ring: KeyRing
    key: NewKey
    reached: list[tuple[str, bytes]]
    clock: list[datetime.datetime]

    def send(self, method: str, path: str, body: bytes = b"", sign_path: str | None = None, **headers: str) -> httpx.Response:
        signed_url = "http://testserver" + (sign_path or path)
        auth = signed(method, signed_url, body, self.key.key.access_key_id, self.key.secret_access_key, SIGNED_AT)
        return self.client.request(method, path, content=body, headers={**auth, **headers})


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[InProcess]:
    store = SQLiteStore(tmp_path / "perdure.db")
    ring = KeyRing(store, b"the server secret")
    reached: list[tuple[str, bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        reached.append((scope["path"], await request.body()))
        await Response("ok")(scope, receive, send)

    clock = [SIGNED_AT]
    client = AsgiClient(Authenticator(app, ring, clock=lambda: clock[0]))
    yield InProcess(client, ring, ring.create("unit"), reached, clock)
    store.close()


def test_a_signed_request_reaches_the_app_with_its_body(in_process: InProcess) -> None:
    response = in_process.send("POST", "/2015-03-31/functions/f/invocations?Qualifier=%24LATEST", b'{"a": 1}')
    assert response.status_code == 200
    assert in_process.reached == [("/2015-03-31/functions/f/invocations", b'{"a": 1}')]


@pytest.mark.parametrize(("skew", "passes"), [(300, True), (-300, True), (301, False), (-301, False)])
def test_the_date_may_be_five_minutes_off_and_no_more(in_process: InProcess, skew: int, passes: bool) -> None:
    in_process.clock[0] = SIGNED_AT + datetime.timedelta(seconds=skew)
    response = in_process.send("POST", "/2015-03-31/functions/f/invocations", b"{}")
    assert (response.status_code == 200) is passes
    assert len(in_process.reached) == (1 if passes else 0)


def sigv4(in_process: InProcess, scope: str, signed_headers: str = "host;x-amz-date") -> str:
    key_id = in_process.key.key.access_key_id
    return f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed_headers}, Signature={'0' * 64}"


@pytest.mark.parametrize(
    ("headers", "code", "words"),
    [
        ({}, "MissingAuthenticationTokenException", "no Authorization header"),
        ({"Authorization": "Bearer nope"}, "UnrecognizedClientException", "bearer token is not valid"),
        ({"Authorization": "Digest x"}, "IncompleteSignatureException", "'Digest' is not supported"),
        (
            {"Authorization": "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00"},
            "IncompleteSignatureException",
            "The credential 'a/b' is malformed",
        ),
        ({"Authorization": "AWS4-HMAC-SHA256 Nonsense=1"}, "IncompleteSignatureException", "malformed near"),
        ({"Authorization": "AWS4-HMAC-SHA256 Signature=00"}, "IncompleteSignatureException", "no Credential or SignedHeaders"),
    ],
)
def test_requests_without_usable_credentials_never_reach_the_app(
    in_process: InProcess, headers: dict[str, str], code: str, words: str
) -> None:
    response = in_process.client.post("/2015-03-31/functions/f/invocations", content=b"{}", headers=headers)
    assert words in assert_refused(response, code)
    assert in_process.reached == []


@pytest.mark.parametrize(
    ("scope", "signed_headers", "date", "words"),
    [
        ("20300102/us-east-1/s3/aws4_request", "host;x-amz-date", "20300102T030405Z", "names the service 's3'"),
        ("20300102/us-east-1/lambda/aws4_request", "x-amz-date", "20300102T030405Z", "must include 'host'"),
        ("20300102/us-east-1/lambda/aws4_request", "host", "20300102T030405Z", "must include 'x-amz-date'"),
        ("20300101/us-east-1/lambda/aws4_request", "host;x-amz-date", "20300102T030405Z", "is not the date of X-Amz-Date"),
        ("20300102/us-east-1/lambda/aws4_request", "host;x-amz-date", "2030-01-02", "X-Amz-Date must be"),
    ],
)
def test_a_signature_with_a_wrong_scope_or_date_never_reaches_the_app(
    in_process: InProcess, scope: str, signed_headers: str, date: str, words: str
) -> None:
    headers = {"Authorization": sigv4(in_process, scope, signed_headers), "X-Amz-Date": date}
    response = in_process.client.post("/2015-03-31/functions/f/invocations", content=b"{}", headers=headers)
    assert words in response.json()["message"]
    assert response.status_code == 403 and in_process.reached == []


def test_tampering_and_revocation_never_reach_the_app(in_process: InProcess) -> None:
    path = "/2015-03-31/functions/f/invocations"
    assert_refused(in_process.send("POST", path, b"{}", sign_path="/2015-03-31/functions/g/invocations"), "InvalidSignatureException")
    assert_refused(in_process.send("POST", path + "?Qualifier=1", b"{}", sign_path=path), "InvalidSignatureException")
    assert_refused(in_process.send("POST", path, b"{}", **{"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}), "InvalidSignatureException")
    assert in_process.reached == []
    in_process.ring.revoke("unit")
    assert_refused(in_process.send("POST", path, b"{}"), "UnrecognizedClientException")
    response = in_process.client.post(path, headers={"Authorization": f"Bearer {in_process.key.token}"})
    assert_refused(response, "UnrecognizedClientException")
    assert in_process.reached == []


def test_a_bearer_token_reaches_the_app_and_health_needs_nothing(in_process: InProcess) -> None:
    response = in_process.client.post("/x", content=b"body", headers={"Authorization": f"Bearer {in_process.key.token}"})
    assert response.status_code == 200
    assert in_process.client.get("/health").status_code == 200
    assert in_process.reached == [("/x", b"body"), ("/health", b"")]


def test_a_key_made_under_another_server_secret_is_refused_and_logged(
    in_process: InProcess, caplog: pytest.LogCaptureFixture
) -> None:
    other = KeyRing(in_process.ring.store, b"another server secret")
    assert other.signing_secret(in_process.key.key) is None
    assert other.split_verifiable() == ([], [in_process.key.key])
    client = AsgiClient(Authenticator(in_process.client.app, other, clock=lambda: SIGNED_AT))
    auth = signed(
        "GET", "http://testserver/a", b"", in_process.key.key.access_key_id, in_process.key.secret_access_key, SIGNED_AT
    )
    with caplog.at_level("WARNING", logger="perdure.auth"):
        assert "cannot be verified by this server" in assert_refused(client.get("/a", headers=auth), "InvalidSignatureException")
    assert "made under another server secret" in caplog.text


def test_key_names_are_checked_and_revoking_an_unknown_key_says_how_to_list_them(in_process: InProcess) -> None:
    with pytest.raises(InvalidParameterError, match="cannot name a key"):
        in_process.ring.create("no spaces")
    with pytest.raises(NotFoundError, match="perdure keys list"):
        in_process.ring.revoke("nobody")

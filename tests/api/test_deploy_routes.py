"""Deploying code without a restart: CreateFunction, UpdateFunctionCode, versions and aliases, by boto3 and the AWS CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from servers import Server, handler_target, lambda_client, shared_server, wait_for

from perdure.runtime.bundles import MAX_UNPACKED_BYTES

HANDLER = """
from aws_durable_execution_sdk_python import DurableContext, durable_execution

VERSION = "{version}"


@durable_execution
def handler(event, context: DurableContext):
    if event.get("wait_for_approval"):
        context.create_callback(name="approval").result()
    return {{"version": VERSION, "step": context.step(lambda _: 1, name="one")}}
"""
AWS = str(Path(sys.executable).parent / "aws")


def zipped(version: str, extra: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", HANDLER.format(version=version))
        for name, text in (extra or {}).items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with shared_server(tmp_path_factory, "deploy", [handler_target("steps", "steps")]) as server:
        yield server


@pytest.fixture(scope="module")
def client(server: Server) -> Any:
    return lambda_client(server.endpoint)


def name() -> str:
    return f"deployed-{uuid.uuid4().hex[:8]}"


def create(client: Any, function: str, code: bytes, handler: str = "app.handler") -> dict[str, Any]:
    return client.create_function(  # type: ignore[no-any-return]
        FunctionName=function,
        Runtime="python3.13",
        Role="arn:aws:iam::000000000000:role/durable",
        Handler=handler,
        Code={"ZipFile": code},
        Timeout=30,
        DurableConfig={"ExecutionTimeout": 3600},
    )


def run(client: Any, function: str, payload: Any = None, **kwargs: Any) -> Any:
    reply = client.invoke(FunctionName=function, Payload=json.dumps(payload or {}).encode(), **kwargs)
    assert "FunctionError" not in reply, reply["Payload"].read()
    return json.loads(reply["Payload"].read())


def error_of(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


def test_code_deployed_runs_at_once_and_versions_and_aliases_name_what_runs(client: Any) -> None:
    fn = name()
    created = create(client, fn, zipped("v1"))
    assert (created["Version"], created["Handler"], created["DurableConfig"]) == ("$LATEST", "app.handler", {"ExecutionTimeout": 3600})
    assert run(client, fn) == {"version": "v1", "step": 1}

    updated = client.update_function_code(FunctionName=fn, ZipFile=zipped("v2"))
    assert updated["CodeSha256"] != created["CodeSha256"]
    assert run(client, fn) == {"version": "v2", "step": 1}
    assert client.publish_version(FunctionName=fn)["Version"] == "2"
    # The same code again is the same version.
    client.update_function_code(FunctionName=fn, ZipFile=zipped("v2"))
    versions = client.list_versions_by_function(FunctionName=fn)["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]

    alias = client.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    assert alias["AliasArn"].endswith(f":function:{fn}:live")
    assert run(client, fn, Qualifier="live") == {"version": "v1", "step": 1}
    assert run(client, fn, Qualifier="2") == {"version": "v2", "step": 1}
    client.update_alias(FunctionName=fn, Name="live", FunctionVersion="2")
    assert run(client, fn, Qualifier="live") == {"version": "v2", "step": 1}
    assert client.get_function(FunctionName=fn, Qualifier="1")["Configuration"]["Version"] == "1"
    assert [a["Name"] for a in client.list_aliases(FunctionName=fn)["Aliases"]] == ["live"]
    assert error_of(lambda: run(client, fn, Qualifier="banana"))[0] == "ResourceNotFoundException"


def test_an_execution_in_flight_finishes_on_its_version_and_blocks_deleting_the_function(client: Any) -> None:
    fn = name()
    create(client, fn, zipped("v1"))
    arn = client.invoke(FunctionName=fn, InvocationType="Event", Payload=b'{"wait_for_approval": true}')["DurableExecutionArn"]

    def callback_id() -> str | None:
        events = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
        started = [e["CallbackStartedDetails"]["CallbackId"] for e in events if e["EventType"] == "CallbackStarted"]
        return started[0] if started else None

    approval = wait_for(callback_id)
    client.update_function_code(FunctionName=fn, ZipFile=zipped("v2"))
    code, message = error_of(lambda: client.delete_function(FunctionName=fn))
    assert code == "ResourceConflictException" and "1 execution(s) of it have not ended" in message

    client.send_durable_execution_callback_success(CallbackId=approval, Result=b'"ok"')
    ended = wait_for(lambda: (e := client.get_durable_execution(DurableExecutionArn=arn))["Status"] != "RUNNING" and e)
    assert json.loads(ended["Result"]) == {"version": "v1", "step": 1}  # type: ignore[index]
    assert ended["Version"] == "1"  # type: ignore[index]
    client.delete_function(FunctionName=fn)
    assert error_of(lambda: client.get_function(FunctionName=fn))[0] == "ResourceNotFoundException"


def test_a_synchronous_invoke_answers_once_the_execution_waits_for_a_callback(server: Server) -> None:
    fn = name()
    quick = boto3.client(
        "lambda", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}, read_timeout=20),
    )  # fmt: skip
    quick.create_function(
        FunctionName=fn, Runtime="python3.13", Role="arn:aws:iam::000000000000:role/durable", Handler="app.handler",
        Code={"ZipFile": zipped("v1")}, Timeout=900, DurableConfig={"ExecutionTimeout": 3600},
    )  # fmt: skip
    # Held until the function's 900-s timeout, this call would time out on the client's 20 s.
    reply = quick.invoke(FunctionName=fn, Payload=b'{"wait_for_approval": true}')
    body = json.loads(reply["Payload"].read())
    assert body["Status"] == "RUNNING" and body["DurableExecutionArn"] == reply["DurableExecutionArn"]
    quick.stop_durable_execution(DurableExecutionArn=body["DurableExecutionArn"])


@pytest.mark.parametrize(
    ("code", "handler", "message"),
    [
        (zipped("v1", {"../escape.py": "x"}), "app.handler", "points outside its folder"),
        (zipped("v1"), "missing.handler", "needs the file missing.py in the zip"),
        (b"not a zip", "app.handler", "not a readable zip archive"),
    ],
    ids=["escaping-path", "missing-handler", "not-a-zip"],
)
def test_bad_code_is_refused_and_nothing_is_stored(client: Any, code: bytes, handler: str, message: str) -> None:
    fn = name()
    status, text = error_of(lambda: create(client, fn, code, handler))
    assert status == "InvalidParameterValueException" and message in text
    assert error_of(lambda: client.get_function(FunctionName=fn))[0] == "ResourceNotFoundException"


def test_code_that_unpacks_past_the_cap_is_refused_and_the_version_in_use_stays(client: Any) -> None:
    fn = name()
    create(client, fn, zipped("v1"))
    # A quarter of a megabyte that unpacks to more than 250 MB.
    bomb = zipped("v2", {"zeros.bin": "\0" * (MAX_UNPACKED_BYTES + 1)})
    assert len(bomb) < 1024 * 1024
    status, text = error_of(lambda: client.update_function_code(FunctionName=fn, ZipFile=bomb))
    assert status == "InvalidParameterValueException" and "unpacks to more than" in text
    assert [v["Version"] for v in client.list_versions_by_function(FunctionName=fn)["Versions"]] == ["$LATEST", "1"]
    assert run(client, fn) == {"version": "v1", "step": 1}


def test_the_aws_cli_updates_a_functions_code(client: Any, server: Server, tmp_path: Path) -> None:
    fn = name()
    create(client, fn, zipped("v1"))
    (tmp_path / "code.zip").write_bytes(zipped("from the cli"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    done = subprocess.run(
        [AWS, "lambda", "update-function-code", "--function-name", fn, "--zip-file", f"fileb://{tmp_path / 'code.zip'}",
         "--endpoint-url", server.endpoint],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["FunctionName"] == fn
    assert run(client, fn) == {"version": "from the cli", "step": 1}


def test_listing_by_qualifier_gives_the_executions_of_the_version_it_names(client: Any) -> None:
    fn = name()
    create(client, fn, zipped("v1"))
    first = client.invoke(FunctionName=fn, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]
    client.update_function_code(FunctionName=fn, ZipFile=zipped("v2"))
    client.create_alias(FunctionName=fn, Name="old", FunctionVersion="1")
    second = client.invoke(FunctionName=fn, InvocationType="Event", Payload=b"{}")["DurableExecutionArn"]

    def listed(**qualifier: str) -> list[str]:
        page = client.list_durable_executions_by_function(FunctionName=fn, **qualifier)
        return [e["DurableExecutionArn"] for e in page["DurableExecutions"]]

    assert listed(Qualifier="1") == listed(Qualifier="old") == [first]
    assert listed(Qualifier="2") == listed(Qualifier="$LATEST") == [second]
    assert sorted(listed()) == sorted([first, second])
    assert error_of(lambda: listed(Qualifier="7"))[0] == "ResourceNotFoundException"


def test_perdure_deploy_of_a_template_publishes_and_points_its_auto_publish_alias(client: Any, server: Server, tmp_path: Path) -> None:
    fn = name()
    (tmp_path / "src").mkdir()
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Flow:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        f"      FunctionName: {fn}\n"
        "      Runtime: python3.13\n"
        "      Handler: app.handler\n"
        "      CodeUri: ./src\n"
        "      AutoPublishAlias: live\n"
        "      DurableConfig: {ExecutionTimeout: 3600}\n"
    )
    for version in ("one", "two"):
        (tmp_path / "src" / "app.py").write_text(HANDLER.format(version=version))
        deployed = server.cli("deploy", "--template", str(tmp_path / "template.yaml"))
        assert deployed.returncode == 0, deployed.stderr
    assert [d["Version"] for d in json.loads(deployed.stdout)] == ["2"]
    assert client.get_alias(FunctionName=fn, Name="live")["FunctionVersion"] == "2"
    assert run(client, fn, Qualifier="live") == {"version": "two", "step": 1}

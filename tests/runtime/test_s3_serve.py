"""`perdure serve --blobs s3://…` and `perdure purge` against an S3-compatible server (moto, on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from servers import HANDLERS, PERDURE, lambda_client
from s3_server import S3_ENV, S3Server

from perdure.cli import main
from perdure.errors import ExecutionNotFoundError
from perdure.store.blobs import blob_key
from perdure.store.s3_blobs import S3BlobStore
from perdure.testing import DurableTestRunner

APP = HANDLERS / "big_payloads.py"
TEXT = "payload " * 12_000  # 96,000 characters: the input, the step's result and the result are blobs


def invoke(endpoint: str, function: str) -> dict[str, Any]:
    response = lambda_client(endpoint).invoke(FunctionName=function, Payload=json.dumps({"text": TEXT}))
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read())  # type: ignore[no-any-return]


def test_payloads_over_the_inline_limit_round_trip_through_the_s3_server(
    s3: S3Server, serve: Any, tmp_path: Path
) -> None:
    bucket = s3.create_bucket()
    server = serve(str(APP), "--blobs", f"s3://{bucket}/perdure", "--s3-endpoint", s3.endpoint, **S3_ENV)

    result = invoke(server.endpoint, "echo_twice")

    assert result == {"length": 2 * len(TEXT), "text": TEXT * 2}
    keys = s3.keys(bucket)
    assert f"perdure/{blob_key(json.dumps({'text': TEXT}).encode())}" in keys  # the input
    assert len(keys) >= 3 and all(k.startswith("perdure/") for k in keys)
    assert not (tmp_path / "blobs").exists()
    # A new server process reads the execution back from the bucket.
    server.kill()
    server.start()
    listed = json.loads(server.cli("executions", "list").stdout)
    arn = listed[0]["DurableExecutionArn"]
    execution = json.loads(server.cli("executions", "get", arn).stdout)
    assert execution["Result"] == result


def test_a_template_bucket_with_a_name_holds_the_blobs(s3: S3Server, serve: Any, tmp_path: Path) -> None:
    bucket = s3.create_bucket()
    template = tmp_path / "template.yaml"
    template.write_text(f"""
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Handler: big_payloads.aws_echo_twice
      CodeUri: {HANDLERS}
      DurableFunction:
        CheckpointStorage: {{Type: S3, BucketArn: !GetAtt Checkpoints.Arn}}
  Checkpoints:
    Type: AWS::S3::Bucket
    Properties: {{BucketName: {bucket}}}
""")
    server = serve("--template", str(template), "--s3-endpoint", s3.endpoint, **S3_ENV)

    assert invoke(server.endpoint, "Echo") == {"length": 2 * len(TEXT), "text": TEXT * 2}
    assert len(s3.keys(bucket)) >= 3
    assert f"Note: Large payloads of every function go to s3://{bucket}" in server.log.read_text()


def test_serve_refuses_a_bucket_that_does_not_exist(s3: S3Server, tmp_path: Path) -> None:
    result = subprocess.run(
        [*PERDURE, "serve", str(APP), "--db", f"sqlite:///{tmp_path / 'p.db'}", "--blobs", "s3://no-such-bucket",
         "--s3-endpoint", s3.endpoint],
        capture_output=True, text=True, timeout=60, env={**S3_ENV, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip

    assert result.returncode == 1
    assert f"Error: The bucket no-such-bucket does not exist on {s3.endpoint}." in result.stderr


def test_purge_removes_expired_executions_and_their_blobs_and_prints_them(s3: S3Server, tmp_path: Path) -> None:
    from handlers.big_payloads import echo_twice

    bucket = s3.create_bucket()
    with DurableTestRunner(tmp_path, blobs=S3BlobStore(bucket, "p", s3.endpoint)) as runner:
        runner.clock.now = time.time() - 40 * 86400  # ended 40 days ago: past the default 30
        old = runner.run(echo_twice, {"text": TEXT}, name="old")
        runner.clock.now = time.time()
        recent = runner.run(echo_twice, {"text": TEXT + "!"}, name="recent")
    recent_keys = set(s3.keys(bucket))
    options = ["--db", f"sqlite:///{tmp_path / 'perdure.db'}", "--blobs", f"s3://{bucket}/p", "--s3-endpoint", s3.endpoint]

    dry = CliRunner().invoke(main, ["purge", *options, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert (planned["DryRun"], planned["PurgedExecutions"]) == (True, 1)
    assert set(s3.keys(bucket)) == recent_keys

    done = CliRunner().invoke(main, ["purge", *options])

    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert [e["DurableExecutionArn"] for e in report["Executions"]] == [old.arn]
    assert report["Executions"][0]["RetentionPeriodInDays"] == 30
    assert report["BlobStorage"] == f"s3://{bucket}/p at {s3.endpoint}"
    assert report["Blobs"] == planned["Blobs"] and report["DeletedBlobs"] >= 3
    assert set(s3.keys(bucket)) == recent_keys - {f"p/{key}" for key in report["Blobs"]}
    with DurableTestRunner(tmp_path, blobs=S3BlobStore(bucket, "p", s3.endpoint)) as runner:
        kept = runner.service.get_execution(recent.arn)
        assert json.loads(kept.result or "null") == {"length": 2 * len(TEXT) + 2, "text": (TEXT + "!") * 2}
        try:
            runner.service.get_execution(old.arn)
        except ExecutionNotFoundError:
            pass
        else:
            raise AssertionError("the expired execution is still there")

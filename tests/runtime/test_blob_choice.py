"""A template's CheckpointStorage bucket, and how it chooses the one blob store of a server."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from perdure.errors import InvalidParameterError
from perdure.runtime.registry import CheckpointBucket, FunctionSpec
from perdure.runtime.storage import choose_blobs
from perdure.runtime.template import load_template
from perdure.store.blobs import BlobConfig

SEED_TEMPLATE = """\
Resources:
  OrderProcessor:
    Type: AWS::Serverless::Function
    Properties:
      Handler: handler.process_order
      CodeUri: ./src
      DurableFunction:
        Enabled: true
        CheckpointStorage:
          Type: S3
          BucketArn: !GetAtt CheckpointBucket.Arn
  CheckpointBucket:
    Type: AWS::S3::Bucket
    Properties:
      LifecycleConfiguration:
        Rules:
          - ExpirationInDays: 30
            Status: Enabled
"""


def bucket_of(tmp_path: Path, template: str) -> CheckpointBucket | None:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "handler.py").write_text("def process_order(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(template))
    (spec,) = load_template(path).functions
    return spec.checkpoint_bucket


def spec(name: str, bucket: CheckpointBucket | None = None) -> FunctionSpec:
    return FunctionSpec(name, Path("app.py"), name, checkpoint_bucket=bucket)


def test_the_seed_template_names_a_bucket_that_has_no_name_here(tmp_path: Path) -> None:
    assert bucket_of(tmp_path, SEED_TEMPLATE) == CheckpointBucket("CheckpointBucket", None)


@pytest.mark.parametrize(
    "name", ["perdure-checkpoints", "!Ref BucketParameter", "!Sub '${Prefix}-checkpoints'"]
)
def test_a_bucket_name_that_resolves_here_is_used(tmp_path: Path, name: str) -> None:
    template = SEED_TEMPLATE.replace(
        "    Properties:\n      LifecycleConfiguration", f"    Properties:\n      BucketName: {name}\n      LifecycleConfiguration"
    )
    template = "Parameters:\n  BucketParameter: {Type: String, Default: perdure-checkpoints}\n" \
        "  Prefix: {Type: String, Default: perdure}\n" + template

    assert bucket_of(tmp_path, template) == CheckpointBucket("CheckpointBucket", "perdure-checkpoints")


def test_a_computed_bucket_name_counts_as_no_name(tmp_path: Path) -> None:
    template = SEED_TEMPLATE.replace(
        "    Properties:\n      LifecycleConfiguration",
        "    Properties:\n      BucketName: !Sub '${AWS::StackName}-checkpoints'\n      LifecycleConfiguration",
    )

    assert bucket_of(tmp_path, template) == CheckpointBucket("CheckpointBucket", None)


def test_a_plain_bucket_arn_gives_the_name(tmp_path: Path) -> None:
    template = SEED_TEMPLATE.replace("!GetAtt CheckpointBucket.Arn", "arn:aws:s3:::orders-checkpoints")

    assert bucket_of(tmp_path, template) == CheckpointBucket("arn:aws:s3:::orders-checkpoints", "orders-checkpoints")


def test_a_bucket_arn_that_is_not_one_is_refused(tmp_path: Path) -> None:
    template = SEED_TEMPLATE.replace("!GetAtt CheckpointBucket.Arn", "my-bucket")

    with pytest.raises(InvalidParameterError) as caught:
        bucket_of(tmp_path, template)

    assert caught.value.message.endswith(
        "Resource OrderProcessor: DurableFunction.CheckpointStorage.BucketArn must be an S3 bucket ARN, "
        "such as arn:aws:s3:::my-checkpoints, or !GetAtt CheckpointBucket.Arn, not 'my-bucket'."
    )


def test_the_one_named_bucket_holds_every_functions_blobs() -> None:
    specs = [spec("orders", CheckpointBucket("Bucket", "checkpoints")), spec("plain")]

    config, notes = choose_blobs(None, "http://127.0.0.1:9000", specs)

    assert config == BlobConfig("s3://checkpoints", "http://127.0.0.1:9000")
    assert notes == [
        "Large payloads of every function go to s3://checkpoints, the checkpoint bucket that orders names in the template."
    ]


def test_an_unnamed_bucket_leaves_blobs_in_the_folder_and_says_so() -> None:
    config, notes = choose_blobs(None, None, [spec("orders", CheckpointBucket("CheckpointBucket", None))])

    assert config == BlobConfig()
    assert notes == [
        "Function orders keeps its checkpoints in S3 in its template, but its bucket CheckpointBucket has no "
        "BucketName to use outside CloudFormation, so large payloads go to the blob folder. Give the bucket a "
        "BucketName, or pass --blobs s3://bucket/prefix, to keep them in S3."
    ]


def test_blobs_given_win_over_the_template_with_a_note() -> None:
    specs = [spec("orders", CheckpointBucket("Bucket", "checkpoints")), spec("same", CheckpointBucket("B", "mine"))]

    config, notes = choose_blobs("s3://mine/perdure", None, specs)

    assert config == BlobConfig("s3://mine/perdure")
    assert notes == [
        "Function orders keeps its checkpoints in the S3 bucket checkpoints in its template, but --blobs "
        "s3://mine/perdure applies to every function: its large payloads go there."
    ]


def test_two_named_buckets_are_refused() -> None:
    specs = [spec("a", CheckpointBucket("A", "one")), spec("b", CheckpointBucket("B", "two"))]

    with pytest.raises(InvalidParameterError) as caught:
        choose_blobs(None, None, specs)

    assert caught.value.message == (
        "The template's functions keep their checkpoints in 2 different S3 buckets (one for a; two for b), but a "
        "Perdure database keeps its large payloads in one place. Choose it with --blobs s3://bucket/prefix."
    )

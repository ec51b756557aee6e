"""Reading durable functions from SAM and CloudFormation templates."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from perdure.errors import InvalidParameterError
from perdure.protocol.limits import FunctionLimits, Rate
from perdure.runtime.template import load_template

SEED_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  OrderProcessor:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.14
      Handler: handler.process_order
      CodeUri: ./src
      Timeout: 900
      MemorySize: 256
      DurableFunction:
        Enabled: true
        MaxSuspensionSeconds: 86400
        CheckpointStorage:
          Type: S3
          BucketArn: !GetAtt CheckpointBucket.Arn
      Policies:
        - S3CrudPolicy:
            BucketName: !Ref CheckpointBucket
  CheckpointBucket:
    Type: AWS::S3::Bucket
    Properties:
      LifecycleConfiguration:
        Rules:
          - ExpirationInDays: 30
            Status: Enabled
"""


def write(tmp_path: Path, template: str, *handlers: str) -> Path:
    for handler in handlers or ("src/handler.py",):
        (tmp_path / handler).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / handler).write_text("def process_order(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(template))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(InvalidParameterError) as caught:
        load_template(path)
    return caught.value.message


def test_seed_template_registers_order_processor_with_retention_from_its_bucket(tmp_path: Path) -> None:
    loaded = load_template(write(tmp_path, SEED_TEMPLATE))

    assert loaded.skipped == []
    (spec,) = loaded.functions
    assert spec.name == "OrderProcessor"
    assert spec.file == (tmp_path / "src" / "handler.py").resolve()
    assert spec.attribute == "process_order"
    assert spec.timeout_seconds == 900
    assert spec.memory_mb == 256
    assert spec.execution_timeout_seconds == 86400
    assert spec.retention_days == 30


def test_aws_durable_config_sets_execution_timeout_and_retention(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        Resources:
          Orders:
            Type: AWS::Serverless::Function
            Properties:
              Handler: handler.process_order
              CodeUri: src
              Role: !GetAtt MissingRole.Arn
              Environment:
                Variables:
                  TABLE: !ImportValue shared-table
              DurableConfig:
                ExecutionTimeout: 3600
                RetentionPeriodInDays: 7
        """)

    (spec,) = load_template(path).functions

    assert (spec.name, spec.timeout_seconds, spec.memory_mb) == ("Orders", 900, None)
    assert (spec.execution_timeout_seconds, spec.retention_days) == (3600, 7)


def test_retention_period_wins_over_bucket_lifecycle(tmp_path: Path) -> None:
    template = SEED_TEMPLATE.replace(
        "      Policies:", "      DurableConfig:\n        RetentionPeriodInDays: 3\n      Policies:"
    )

    (spec,) = load_template(write(tmp_path, template)).functions

    assert spec.retention_days == 3


def test_lambda_function_reads_code_from_a_local_path(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        Resources:
          Orders:
            Type: AWS::Lambda::Function
            Properties:
              Handler: handler.process_order
              Code: ./src
              Timeout: "60"
              DurableConfig: {ExecutionTimeout: 600}
        """)

    (spec,) = load_template(path).functions

    assert (spec.file, spec.timeout_seconds) == ((tmp_path / "src" / "handler.py").resolve(), 60)


def test_lambda_function_with_s3_code_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        Resources:
          Orders:
            Type: AWS::Lambda::Function
            Properties:
              Handler: handler.process_order
              Code: {S3Bucket: my-code, S3Key: orders.zip}
              DurableConfig: {ExecutionTimeout: 600}
        """)

    message = error_of(path)

    assert "Resource Orders: Code is a mapping of S3Bucket, S3Key" in message
    assert "Write Code: ./src" in message


def test_globals_provide_defaults_that_a_function_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        Globals:
          Function:
            Handler: handler.process_order
            CodeUri: src/
            Runtime: python3.13
            Timeout: 120
            MemorySize: 512
        Resources:
          First:
            Type: AWS::Serverless::Function
            Properties:
              DurableConfig: {ExecutionTimeout: 600}
          Second:
            Type: AWS::Serverless::Function
            Properties:
              MemorySize: 1024
              DurableConfig: {ExecutionTimeout: 600}
        """)

    first, second = load_template(path).functions

    assert (first.attribute, first.timeout_seconds, first.memory_mb) == ("process_order", 120, 512)
    assert (second.timeout_seconds, second.memory_mb) == (120, 1024)


def test_dotted_handler_module_maps_to_a_nested_file(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        Resources:
          Process:
            Type: AWS::Serverless::Function
            Properties:
              Handler: pkg.handlers.process
              DurableConfig: {}
        """, "pkg/handlers.py")

    (spec,) = load_template(path).functions

    assert (spec.file, spec.attribute) == ((tmp_path / "pkg" / "handlers.py").resolve(), "process")


def test_function_name_property_names_the_function_unless_it_is_computed(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        Resources:
          Named:
            Type: AWS::Serverless::Function
            Properties:
              FunctionName: orders-v2
              Handler: handler.process_order
              CodeUri: src
              DurableConfig: {}
          Computed:
            Type: AWS::Serverless::Function
            Properties:
              FunctionName: !Sub "${AWS::StackName}-orders"
              Handler: handler.process_order
              CodeUri: src
              DurableConfig: {}
        """)

    assert [spec.name for spec in load_template(path).functions] == ["orders-v2", "Computed"]


def test_functions_without_durable_config_are_skipped_with_a_reason(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        Resources:
          Plain:
            Type: AWS::Serverless::Function
            Properties: {Handler: handler.process_order, CodeUri: src}
          Disabled:
            Type: AWS::Serverless::Function
            Properties:
              Handler: handler.process_order
              CodeUri: src
              DurableFunction: {Enabled: false}
          Java:
            Type: AWS::Serverless::Function
            Properties: {Handler: example.Handler, Runtime: java21, DurableConfig: {}}
          Bucket:
            Type: AWS::S3::Bucket
        """)

    loaded = load_template(path)

    assert loaded.functions == []
    plain, disabled, java = loaded.skipped
    assert "Resource Plain is not registered because it has no DurableConfig or DurableFunction section" in plain
    assert "Resource Disabled is not registered because DurableFunction.Enabled is false" in disabled
    assert "Resource Java is not registered because its Runtime is java21; Perdure runs Python handlers and Node.js ones" in java


def test_json_template_with_long_form_intrinsics_and_parameter_defaults(tmp_path: Path) -> None:
    template = {
        "Parameters": {
            "Suspension": {"Type": "Number", "Default": 7200},
            "Folder": {"Type": "String", "Default": "src"},
        },
        "Resources": {
            "Orders": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "handler.process_order",
                    "CodeUri": {"Fn::Sub": "./${Folder}"},
                    "DurableFunction": {
                        "Enabled": "true",
                        "MaxSuspensionSeconds": {"Ref": "Suspension"},
                        "CheckpointStorage": {"Type": "S3", "BucketArn": {"Fn::GetAtt": ["Bucket", "Arn"]}},
                    },
                },
            },
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"LifecycleConfiguration": {"Rules": [
                    {"ExpirationInDays": 5, "Status": "Disabled"},
                    {"ExpirationInDays": 14, "Status": "Enabled"},
                ]}},
            },
        },
    }
    path = write(tmp_path, "")
    path.write_text(json.dumps(template))

    (spec,) = load_template(path).functions

    assert (spec.execution_timeout_seconds, spec.retention_days) == (7200, 14)


def test_missing_handler_file_names_resource_handler_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, SEED_TEMPLATE.replace("CodeUri: ./src", "CodeUri: ./code"))

    message = error_of(path)

    assert f"{path}: Resource OrderProcessor:" in message
    assert "Handler 'handler.process_order' needs the file" in message
    assert str((tmp_path / "code" / "handler.py").resolve()) in message


def test_timeout_that_is_not_a_number_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, SEED_TEMPLATE.replace("Timeout: 900", "Timeout: abc")))

    assert "Resource OrderProcessor: Timeout must be a whole number of seconds, not 'abc'." in message
    assert "Timeout: 900" in message


@pytest.mark.parametrize("digits", ["'²'", "'٣'", "'9²'"])
def test_a_number_in_digits_other_than_ascii_is_refused(tmp_path: Path, digits: str) -> None:
    # str.isdigit takes all three; int() then failed on '²' with a traceback, and read '٣' as 3.
    message = error_of(write(tmp_path, SEED_TEMPLATE.replace("Timeout: 900", f"Timeout: {digits}")))

    assert f"Resource OrderProcessor: Timeout must be a whole number of seconds, not {digits}." in message
    assert "Timeout: 900" in message


def test_a_bucket_expiration_in_digits_other_than_ascii_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, SEED_TEMPLATE.replace("ExpirationInDays: 30", "ExpirationInDays: '³'")))

    assert "Resource CheckpointBucket: ExpirationInDays must be a whole number of days, not '³'." in message


def test_zero_memory_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, SEED_TEMPLATE.replace("MemorySize: 256", "MemorySize: 0")))

    assert "Resource OrderProcessor: MemorySize must be at least 1, not 0." in message


def test_get_att_to_a_missing_bucket_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, SEED_TEMPLATE.replace("CheckpointBucket.Arn", "Elsewhere.Arn")))

    assert "Resource OrderProcessor: DurableFunction.CheckpointStorage.BucketArn refers to Elsewhere.Arn" in message
    assert "but Elsewhere is not a resource in this template" in message
    assert "!GetAtt CheckpointBucket.Arn" in message


def test_get_att_to_a_resource_that_is_not_a_bucket_is_refused(tmp_path: Path) -> None:
    template = SEED_TEMPLATE.replace("Type: AWS::S3::Bucket", "Type: AWS::SQS::Queue")

    message = error_of(write(tmp_path, template))

    assert "CheckpointBucket is a resource of type AWS::SQS::Queue, not an AWS::S3::Bucket" in message


def test_import_value_where_a_value_is_needed_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, SEED_TEMPLATE.replace("Timeout: 900", "Timeout: !ImportValue shared-timeout")))

    assert "Resource OrderProcessor: Timeout uses !ImportValue shared-timeout" in message
    assert "Write a plain value instead, for example Timeout: 900." in message


def test_sub_with_unknown_variable_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, SEED_TEMPLATE.replace("CodeUri: ./src", 'CodeUri: !Sub "./${Stage}"')))

    assert "Resource OrderProcessor: CodeUri uses !Sub with ${Stage}" in message


def test_missing_handler_is_refused(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, SEED_TEMPLATE.replace("      Handler: handler.process_order\n", "")))

    assert "Resource OrderProcessor: Handler is missing." in message
    assert "Handler: handler.process_order" in message


def test_file_without_resources_is_refused(tmp_path: Path) -> None:
    assert "has no Resources section" in error_of(write(tmp_path, "Description: nothing here\n"))


LIMITED = SEED_TEMPLATE.replace(
    "  OrderProcessor:\n    Type: AWS::Serverless::Function\n",
    "  OrderProcessor:\n    Type: AWS::Serverless::Function\n"
    "    Metadata:\n      Perdure:\n        TenantConcurrency: 2\n        RateLimit: 50/minute\n        TenantRateLimit: 5/second\n",
).replace("      MemorySize: 256\n", "      MemorySize: 256\n      ReservedConcurrentExecutions: 3\n")


def test_reserved_concurrency_and_perdure_limits_are_read(tmp_path: Path) -> None:
    (spec,) = load_template(write(tmp_path, LIMITED)).functions

    assert spec.limits == FunctionLimits(3, 2, Rate(50, 60.0), Rate(5, 1.0))


def test_reserved_concurrency_comes_from_globals_and_may_be_zero(tmp_path: Path) -> None:
    template = "Globals:\n  Function:\n    ReservedConcurrentExecutions: 0\n" + SEED_TEMPLATE
    (spec,) = load_template(write(tmp_path, template)).functions

    assert spec.limits == FunctionLimits(concurrency=0)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (
            "ReservedConcurrentExecutions: 3",
            "ReservedConcurrentExecutions: -1",
            "ReservedConcurrentExecutions must be a whole number from 0 to 1000000, not -1. "
            "Write, for example, ReservedConcurrentExecutions: 10.",
        ),
        (
            "ReservedConcurrentExecutions: 3",
            "ReservedConcurrentExecutions: [3]",
            "ReservedConcurrentExecutions must be a whole number from 0 to 1000000, not [3].",
        ),
        (
            "TenantConcurrency: 2",
            "TenantConcurrency: 0",
            "Metadata.Perdure.TenantConcurrency must be a whole number from 1 to 1000000, not 0.",
        ),
        (
            "RateLimit: 50/minute",
            "RateLimit: fast",
            'Metadata.Perdure.RateLimit must be a whole number of starts per second, minute, hour or day, such as '
            '"50/minute" or "10/second", not \'fast\'.',
        ),
        ("TenantRateLimit: 5/second", "TenantRateLimit: 5/week", "Metadata.Perdure.TenantRateLimit must be"),
        (
            "RateLimit: 50/minute",
            "Ratelimit: 50/minute",
            "Metadata.Perdure.Ratelimit is not a Perdure setting; use TenantConcurrency, RateLimit or TenantRateLimit.",
        ),
        (
            "      Perdure:\n        TenantConcurrency: 2\n        RateLimit: 50/minute\n        TenantRateLimit: 5/second\n",
            "      Perdure: 10/second\n",
            "Metadata.Perdure must be a mapping of settings, not '10/second'.",
        ),
    ],
    ids=["negative", "list", "tenant-zero", "rate-word", "rate-unit", "unknown-key", "not-a-mapping"],
)
def test_a_limit_that_cannot_be_used_is_refused_naming_the_resource_and_property(
    tmp_path: Path, before: str, after: str, expected: str
) -> None:
    path = write(tmp_path, LIMITED.replace(before, after))

    message = error_of(path)

    assert message.startswith(f"{path}: Resource OrderProcessor: "), message
    assert expected in message

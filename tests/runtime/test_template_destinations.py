"""Destinations in templates and decorators: read, and refused at load time when they name no served function."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from perdure.errors import InvalidParameterError
from perdure.protocol.destinations import EventInvokeConfig
from perdure.runtime import destinations
from perdure.runtime.registry import seed_functions
from perdure.runtime.template import load_template

HANDLER = "def handler(event, context):\n    return event\n"

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    CodeUri: ./src
    DurableConfig:
      ExecutionTimeout: 3600
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      EventInvokeConfig:
        MaximumRetryAttempts: 0
        MaximumEventAgeInSeconds: 3600
        DestinationConfig:
          OnSuccess:
            Type: Lambda
            Destination: !GetAtt Receipts.Arn
          OnFailure:
            Type: Lambda
            Destination: {on_failure}
  Receipts:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: receipts
      Handler: app.handler
  Alerts:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
"""


def write(tmp_path: Path, template: str) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "app.py").write_text(HANDLER)
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(template))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(InvalidParameterError) as caught:
        destinations.check(load_template(path).functions)
    return caught.value.message


@pytest.mark.parametrize(
    "on_failure",
    ["!Ref Alerts", "!GetAtt Alerts.Arn", "Alerts", "arn:aws:lambda:us-east-1:123456789012:function:Alerts"],
)
def test_event_invoke_config_names_the_functions_ended_executions_start(tmp_path: Path, on_failure: str) -> None:
    functions = {spec.name: spec for spec in load_template(write(tmp_path, TEMPLATE.format(on_failure=on_failure))).functions}
    orders = functions["Orders"].destinations
    assert orders is not None
    assert orders.config == EventInvokeConfig(
        on_success="receipts", on_failure="Alerts", maximum_retry_attempts=0, maximum_event_age_seconds=3600
    )
    assert functions["Alerts"].destinations is None
    destinations.check(functions.values())


def test_a_destination_that_names_no_served_function_is_refused_with_its_template_and_property(tmp_path: Path) -> None:
    path = write(tmp_path, TEMPLATE.format(on_failure="Alertz"))
    message = error_of(path)
    assert message.startswith(f"{path}: Resource Orders: EventInvokeConfig.DestinationConfig.OnFailure.Destination")
    assert "'Alertz', which is not served here (the functions are Alerts, Orders, receipts)" in message


@pytest.mark.parametrize(
    ("on_failure", "complaint"),
    [
        ("!GetAtt Missing.Arn", "refers to Missing.Arn, which is not the ARN of a function in this template"),
        ("arn:aws:sqs:us-east-1:123456789012:dead-letters", "an sqs ARN: Perdure sends an execution's end to another function"),
        ("'not a name'", "which is not a function"),
    ],
)
def test_a_destination_that_is_not_a_function_is_refused_as_the_template_is_read(
    tmp_path: Path, on_failure: str, complaint: str
) -> None:
    path = write(tmp_path, TEMPLATE.format(on_failure=on_failure))
    with pytest.raises(InvalidParameterError) as caught:
        load_template(path)
    assert caught.value.message.startswith(f"{path}: Resource Orders: ")
    assert complaint in caught.value.message


def test_a_destination_of_another_type_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, TEMPLATE.format(on_failure="Alerts").replace("Type: Lambda\n            Destination: Alerts", "Type: SQS\n            Destination: Alerts"))
    with pytest.raises(InvalidParameterError, match="OnFailure.Type is SQS, but Perdure sends an execution's end to another function"):
        load_template(path)


def test_retry_settings_out_of_lambdas_range_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, TEMPLATE.format(on_failure="Alerts").replace("MaximumRetryAttempts: 0", "MaximumRetryAttempts: 5"))
    with pytest.raises(InvalidParameterError, match=r"Resource Orders: MaximumRetryAttempts must be from 0 to 2, not 5"):
        load_template(path)


RESOURCE_TEMPLATE = """\
Resources:
  Orders:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      CodeUri: ./src
      DurableConfig: {ExecutionTimeout: 3600}
  Alerts:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      CodeUri: ./src
      DurableConfig: {ExecutionTimeout: 3600}
  OrdersDestinations:
    Type: AWS::Lambda::EventInvokeConfig
    Properties:
      FunctionName: !Ref Orders
      Qualifier: $LATEST
      DestinationConfig:
        OnFailure:
          Destination: !GetAtt Alerts.Arn
"""


def test_an_event_invoke_config_resource_gives_its_function_destinations(tmp_path: Path) -> None:
    functions = {spec.name: spec for spec in load_template(write(tmp_path, RESOURCE_TEMPLATE)).functions}
    orders = functions["Orders"].destinations
    assert orders is not None and orders.config == EventInvokeConfig(on_failure="Alerts")
    assert functions["Alerts"].destinations is None
    live = write(tmp_path, RESOURCE_TEMPLATE.replace("Qualifier: $LATEST", "Qualifier: live"))
    with pytest.raises(InvalidParameterError, match="Resource OrdersDestinations: Qualifier is 'live'"):
        load_template(live)


def test_a_decorators_destination_that_names_no_function_of_its_file_is_refused(tmp_path: Path) -> None:
    app = tmp_path / "shop.py"
    app.write_text(
        "import perdure as durable\n\n"
        "@durable.function(on_failure='alertz')\n"
        "def pay(ctx, event):\n    return event\n\n"
        "@durable.function\n"
        "def alert(ctx, event):\n    return event\n"
    )
    specs = seed_functions(app)
    with pytest.raises(InvalidParameterError) as caught:
        destinations.check(specs)
    assert caught.value.message.startswith("shop.py: @durable.function pay, on_failure names the function 'alertz'")


def test_a_decorator_refuses_a_destination_that_is_not_a_function_name() -> None:
    import perdure as durable

    with pytest.raises(ValueError, match=r"on_failure is 'two words', which is not a function"):
        durable.function(on_failure="two words")

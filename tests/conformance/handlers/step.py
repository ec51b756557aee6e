"""Suite 1, step: a handler for each case, written from the case's description.

Each ``case_S_N`` is the handler of requirement ``S-N`` (served as the function of that name).
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.retries import (
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    create_retry_strategy,
)
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


def retry_every_second(max_attempts: int) -> StepConfig:
    """Retries after exactly one second, up to ``max_attempts`` attempts in all."""
    return StepConfig(
        retry_strategy=create_retry_strategy(
            RetryStrategyConfig(
                max_attempts=max_attempts,
                initial_delay=Duration.from_seconds(1),
                backoff_rate=1,
                jitter_strategy=JitterStrategy.NONE,
            )
        )
    )


@durable_step
def greet(step_context: StepContext, name: str) -> str:
    return f"Hello, {name}!"


@durable_execution
def case_1_1(event: Any, context: DurableContext) -> str:
    return context.step(greet(event))


@durable_execution
def case_1_2(event: Any, context: DurableContext) -> str:
    return context.step(lambda _: f"Hello, {event}!", name="custom_step_name")


@durable_execution
def case_1_3(event: Any, context: DurableContext) -> str:
    first = context.step(lambda _: "first", name="step_one")
    return context.step(lambda _: f"{first}_second", name="step_two")


@durable_step
def build_response(step_context: StepContext, event: dict[str, Any]) -> dict[str, Any]:
    return {"user": {"name": event["name"], "tags": list(event["tags"])}, "count": len(event["tags"])}


@durable_execution
def case_1_4(event: Any, context: DurableContext) -> dict[str, Any]:
    return context.step(build_response(event))


@durable_execution
def case_1_5(event: Any, context: DurableContext) -> None:
    return context.step(lambda _: None, name="do_nothing")


class UppercaseSerDes(SerDes[Any]):
    """Writes every string in the value in upper case; reads JSON back as is."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        def upper(item: Any) -> Any:
            if isinstance(item, str):
                return item.upper()
            if isinstance(item, list):
                return [upper(x) for x in item]
            if isinstance(item, dict):
                return {k: upper(v) for k, v in item.items()}
            return item

        return json.dumps(upper(value))

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return json.loads(data)


@durable_execution
def case_1_6(event: Any, context: DurableContext) -> Any:
    return context.step(lambda _: event, name="return_input", config=StepConfig(serdes=UppercaseSerDes()))


@durable_execution
def case_1_7(event: Any, context: DurableContext) -> str:
    def greet_with_logs(step_context: StepContext) -> str:
        step_context.logger.info(f"Greeting step started for: {event}")
        greeting = f"Hello, {event}!"
        step_context.logger.info(f"Greeting step completed with: {greeting}")
        return greeting

    return context.step(greet_with_logs, name="greet")


@durable_execution
def case_1_8(event: Any, context: DurableContext) -> str:
    result = context.step(lambda _: "computed", name="compute")
    context.wait(Duration.from_seconds(2))
    return result


@durable_execution
def case_1_9(event: Any, context: DurableContext) -> str:
    def compute(step_context: StepContext) -> str:
        step_context.logger.info("step executed")
        return "cached_value"

    result = context.step(compute, name="compute")
    context.wait(Duration.from_seconds(1))
    return result


@durable_execution
def case_1_10(event: Any, context: DurableContext) -> str:
    def fail(step_context: StepContext) -> str:
        step_context.logger.info("step executed")
        raise RuntimeError("permanent failure")

    try:
        context.step(fail, name="fail", config=NO_RETRY)
    except Exception:  # noqa: BLE001 - the case catches the step's error
        pass
    context.wait(Duration.from_seconds(1))
    return "caught"


@durable_execution
def case_1_11(event: Any, context: DurableContext) -> str:
    def unreliable(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            raise RuntimeError("first attempt fails")
        return "Operation succeeded"

    return context.step(unreliable, name="unreliable", config=retry_every_second(3))


@durable_execution
def case_1_12(event: Any, context: DurableContext) -> str:
    def always_fail(step_context: StepContext) -> str:
        raise RuntimeError(f"attempt {step_context.attempt} failed")

    return context.step(always_fail, name="always_fail", config=retry_every_second(4))


@durable_execution
def case_1_13(event: Any, context: DurableContext) -> str:
    def unreliable(step_context: StepContext) -> str:
        if step_context.attempt <= 2:
            raise RuntimeError(f"attempt {step_context.attempt} fails")
        return "succeeded on third attempt"

    # No config: the SDK's default retry strategy.
    return context.step(unreliable, name="unreliable")


@durable_execution
def case_1_14(event: Any, context: DurableContext) -> str:
    # The attempt number comes from the step context (the AWS example keeps it in DynamoDB).
    def unreliable(step_context: StepContext) -> str:
        if step_context.attempt <= 2:
            raise RuntimeError(f"attempt {step_context.attempt} fails")
        return "succeeded on third attempt"

    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=5,
            initial_delay=Duration.from_seconds(2),
            backoff_rate=3,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return context.step(unreliable, name="unreliable", config=StepConfig(retry_strategy=strategy))


class TransientError(Exception):
    pass


@durable_execution
def case_1_15(event: Any, context: DurableContext) -> str:
    def retry_on_transient(error: Exception, attempts_made: int) -> RetryDecision:
        if isinstance(error, TransientError) and attempts_made < 3:
            return RetryDecision.retry(Duration.from_seconds(1))
        return RetryDecision.no_retry()

    def flaky(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            raise TransientError("temporary glitch")
        return "recovered"

    return context.step(flaky, name="flaky", config=StepConfig(retry_strategy=retry_on_transient))


@durable_execution
def case_1_16(event: Any, context: DurableContext) -> str:
    def no_retry_on_transient_error(error: Exception, attempts_made: int) -> RetryDecision:
        if isinstance(error, TransientError):
            return RetryDecision.no_retry()
        return RetryDecision.retry(Duration.from_seconds(1))

    def flaky(step_context: StepContext) -> str:
        raise TransientError("temporary glitch")

    return context.step(flaky, name="flaky", config=StepConfig(retry_strategy=no_retry_on_transient_error))


def crash() -> None:
    """Ends the process at once, as a Lambda runtime crash (process.exit) does."""
    os._exit(1)


@durable_execution
def case_1_17(event: Any, context: DurableContext) -> str:
    def flaky(step_context: StepContext) -> str:
        step_context.logger.info(f"at most once step running for {event}")
        crash()
        return "unreachable"

    return context.step(
        flaky,
        name="at_most_once_flaky_step",
        config=StepConfig(retry_strategy=RetryPresets.none(), step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY),
    )


@durable_execution
def case_1_18(event: Any, context: DurableContext) -> str:
    def flaky(step_context: StepContext) -> str:
        step_context.logger.info(f"at most once step running for {event}")
        if step_context.attempt == 1:
            crash()
        return "succeeded on second attempt"

    config = retry_every_second(3)
    return context.step(
        flaky,
        name="at_most_once_flaky_step",
        config=StepConfig(retry_strategy=config.retry_strategy, step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY),
    )


@durable_execution
def case_1_19(event: Any, context: DurableContext) -> str:
    def failing(step_context: StepContext) -> str:
        raise RuntimeError("step failed")

    return context.step(failing, name="failing", config=NO_RETRY)


@durable_execution
def case_1_20(event: Any, context: DurableContext) -> str:
    def failing(step_context: StepContext) -> str:
        raise RuntimeError("step failed")

    try:
        value = context.step(failing, name="failing", config=NO_RETRY)
    except Exception:  # noqa: BLE001 - the case catches the step's error
        value = "fallback"
    return context.step(lambda _: f"{value}_result", name="use_value")


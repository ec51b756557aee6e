"""Suite 7, wait_for_callback: a handler for each case, written from the case's description.

Each submitter receives the generated callback id and does nothing durable (the harness plays the
external system and completes the callback as the case's CallbackActions say).
"""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import CallbackError, DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, WaitForCallbackConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.serdes import JsonSerDes
from aws_durable_execution_sdk_python.types import WaitForCallbackContext


def register(callback_id: str, context: WaitForCallbackContext) -> None:
    """Hands the callback id to the external system (which the conformance harness plays)."""
    context.logger.info(f"waiting for callback {callback_id}")


@durable_execution
def case_7_1(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event)


@durable_execution
def case_7_2(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name="approval")


@durable_execution
def case_7_3(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(lambda callback_id, ctx: None)


@durable_execution
def case_7_4(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event)


@durable_execution
def case_7_5(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event, config=WaitForCallbackConfig(timeout=Duration.from_seconds(3)))


@durable_execution
def case_7_6(event: Any, context: DurableContext) -> Any:
    try:
        return context.wait_for_callback(register, name=event)
    except CallbackError:
        return "recovered"


@durable_execution
def case_7_7(event: Any, context: DurableContext) -> Any:
    def failing_submitter(callback_id: str, ctx: WaitForCallbackContext) -> None:
        raise RuntimeError("the external system refused the request")

    retry = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=2,
            initial_delay=Duration.from_seconds(1),
            backoff_rate=1,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    return context.wait_for_callback(failing_submitter, name=event, config=WaitForCallbackConfig(retry_strategy=retry))


@durable_execution
def case_7_8(event: Any, context: DurableContext) -> Any:
    def wrapper(ctx: DurableContext) -> Any:
        return ctx.wait_for_callback(register, name=event)

    return context.run_in_child_context(wrapper, name="wrapper")


@durable_execution
def case_7_9(event: Any, context: DurableContext) -> Any:
    context.wait_for_callback(register, name="first")
    return context.wait_for_callback(register, name="second")


@durable_execution
def case_7_10(event: Any, context: DurableContext) -> Any:
    context.wait(Duration.from_seconds(1))
    context.step(lambda _: {"prepared": True}, name="prepare")
    return context.wait_for_callback(register, name=event)


@durable_execution
def case_7_11(event: Any, context: DurableContext) -> Any:
    result = context.wait_for_callback(register, name=event, config=WaitForCallbackConfig(serdes=JsonSerDes()))
    return result["status"]


@durable_execution
def case_7_12(event: Any, context: DurableContext) -> Any:
    config = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
    return context.wait_for_callback(register, name=event, config=config)


@durable_execution
def case_7_13(event: Any, context: DurableContext) -> Any:
    config = WaitForCallbackConfig(heartbeat_timeout=Duration.from_seconds(10))
    return context.wait_for_callback(register, name=event, config=config)


@durable_execution
def case_7_14(event: Any, context: DurableContext) -> Any:
    try:
        return context.wait_for_callback(register, name=event, config=WaitForCallbackConfig(timeout=Duration.from_seconds(3)))
    except CallbackError:
        return "timed-out-handled"


@durable_execution
def case_7_15(event: Any, context: DurableContext) -> Any:
    return context.wait_for_callback(register, name=event)

"""Suite 3, child context: a handler for each case, written from the case's description."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import ChildConfig, Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.logger import Logger
from aws_durable_execution_sdk_python.retries import RetryPresets, RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())


def retry_every_second(max_attempts: int) -> StepConfig:
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


def replay_logger(context: DurableContext) -> Logger:
    """The context's logger with replay logging enabled: it also logs while the context replays."""
    return context.logger.with_is_replaying(lambda: False)


@durable_execution
def case_3_1(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        return ctx.step(lambda _: event, name="return_input")

    return context.run_in_child_context(child, name="child")


@durable_execution
def case_3_2(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        return ctx.step(lambda _: event["value"], name="return_value")

    return context.run_in_child_context(child, name=event["name"])


@durable_execution
def case_3_3(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        first = ctx.step(lambda _: event, name="first")
        return ctx.step(lambda _: first, name="second")

    return context.run_in_child_context(child, name="sequential")


@durable_execution
def case_3_4(event: Any, context: DurableContext) -> Any:
    def failing(step_context: StepContext) -> str:
        raise RuntimeError("inner step failed")

    def child(ctx: DurableContext) -> Any:
        return ctx.step(failing, name="failing", config=NO_RETRY)

    return context.run_in_child_context(child, name="failing_child")


@durable_execution
def case_3_5(event: Any, context: DurableContext) -> Any:
    def failing(step_context: StepContext) -> str:
        raise RuntimeError("inner step failed")

    def child(ctx: DurableContext) -> Any:
        return ctx.step(failing, name="failing", config=NO_RETRY)

    try:
        context.run_in_child_context(child, name="failing_child")
    except Exception:  # noqa: BLE001 - the case catches the child's error
        pass
    return context.step(lambda _: event, name="recover")


@durable_execution
def case_3_6(event: Any, context: DurableContext) -> Any:
    def inner(ctx: DurableContext) -> Any:
        return ctx.step(lambda _: event, name="inner_step")

    def outer(ctx: DurableContext) -> Any:
        ctx.step(lambda _: event, name="outer_step")
        return ctx.run_in_child_context(inner, name="inner")

    return context.run_in_child_context(outer, name="outer")


@durable_execution
def case_3_7(event: Any, context: DurableContext) -> Any:
    def flaky(step_context: StepContext) -> Any:
        if step_context.attempt == 1:
            raise RuntimeError("first attempt fails")
        return event

    def child(ctx: DurableContext) -> Any:
        return ctx.step(flaky, name="flaky", config=retry_every_second(3))

    return context.run_in_child_context(child, name="retrying_child")


@durable_execution
def case_3_8(event: Any, context: DurableContext) -> Any:
    def always_fail(step_context: StepContext) -> Any:
        raise RuntimeError(f"attempt {step_context.attempt} failed")

    def child(ctx: DurableContext) -> Any:
        return ctx.step(always_fail, name="always_fail", config=retry_every_second(2))

    return context.run_in_child_context(child, name="exhausted_child")


@durable_execution
def case_3_9(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        return ctx.step(lambda _: event, name="return_input")

    result = context.run_in_child_context(child, name="cached_child")
    context.wait(Duration.from_seconds(1))
    return result


@durable_execution
def case_3_10(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        result = ctx.step(lambda _: event, name="return_input")
        ctx.wait(Duration.from_seconds(1))
        return result

    return context.run_in_child_context(child, name="step_and_wait")


@durable_execution
def case_3_11(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> str:
        replay_logger(ctx).info(f"large child context running for {event}")
        small = ctx.step(lambda _: event, name="small")
        # Over the 256 KB checkpoint limit: the child is checkpointed with ReplayChildren.
        return small * (300 * 1024 // len(small) + 1)

    large = context.run_in_child_context(child, name="large_child")
    context.wait(Duration.from_seconds(1))
    return {"length": len(large), "starts_with_input": large.startswith(event)}


def _crash_marker(case: str, key: str) -> Path:
    return Path(tempfile.gettempdir()) / f"perdure-conformance-{case}-{key}"


@durable_execution
def case_3_12(event: Any, context: DurableContext) -> Any:
    def crashes_once(step_context: StepContext) -> Any:
        marker = _crash_marker("3-12", str(event))
        if not marker.exists():
            marker.touch()
            # The START checkpoint is sent without waiting (at-least-once step): give it time to be
            # recorded, then end the process as a runtime crash (process.exit) does.
            time.sleep(2)
            os._exit(1)
        marker.unlink()
        return event

    def child(ctx: DurableContext) -> Any:
        return ctx.step(crashes_once, name="crashes_once")

    return context.run_in_child_context(child, name="interrupted_child")


@durable_execution
def case_3_13(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        ctx.wait(Duration.from_seconds(1))
        return event

    context.run_in_child_context(child, name="waiting_child")
    return context.step(lambda _: event, name="after_child")


class UppercaseText(SerDes[str]):
    """Writes the value as its upper-case text; reads the text back as is."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return value.upper()

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        return data


@durable_execution
def case_3_14(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        return ctx.step(lambda _: event, name="return_input")

    return context.run_in_child_context(child, name="uppercase_child", config=ChildConfig(serdes=UppercaseText()))


@durable_execution
def case_3_15(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        raise RuntimeError("thrown directly in the child body")

    return context.run_in_child_context(child, name="throwing_child")


@durable_execution
def case_3_16(event: Any, context: DurableContext) -> Any:
    return context.run_in_child_context(lambda ctx: None, name="null_child")


@durable_execution
def case_3_17(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        replay_logger(ctx).info(f"logging child running for {event}")
        return event

    result = context.run_in_child_context(child, name="logging_child")
    context.wait(Duration.from_seconds(1))
    return result


@durable_execution
def case_3_18(event: Any, context: DurableContext) -> Any:
    def child(ctx: DurableContext) -> Any:
        result = ctx.step(lambda _: event, name="inner_step")
        ctx.wait(Duration.from_seconds(1))
        return result

    result = context.run_in_child_context(child, name="mixed_child")
    context.step(lambda _: event, name="outer_step")
    context.wait(Duration.from_seconds(1))
    return result

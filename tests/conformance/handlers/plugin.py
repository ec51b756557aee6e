"""Suite 10, plugin: a handler for each case, written from the case's description.

The instrumentation plugins write one JSON object per hook to plain stdout, each carrying the
``durableExecutionArn`` the invocation-start hook received, as the cases ask.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.plugin import (
    DurableInstrumentationPlugin,
    InvocationEndInfo,
    InvocationStartInfo,
    OperationEndInfo,
    OperationStartInfo,
    OperationType,
    UserFunctionEndInfo,
    UserFunctionStartInfo,
)
from aws_durable_execution_sdk_python.retries import RetryPresets, RetryStrategyConfig, create_retry_strategy

_print_lock = threading.Lock()


class RecordingPlugin(DurableInstrumentationPlugin):
    """Writes a JSON record for the hooks its case asks for."""

    def __init__(self, name: str, hooks: frozenset[str], *, raises: bool = False) -> None:
        self.name = name
        self.hooks = hooks
        self.raises = raises
        self.arn: str | None = None

    def emit(self, hook: str, **fields: Any) -> None:
        if hook not in self.hooks:
            return
        record = {"plugin": self.name, "hook": hook, **fields, "durableExecutionArn": self.arn}
        # One write per record, so lines of concurrent hooks never interleave.
        with _print_lock:
            sys.stdout.write(json.dumps(record) + "\n")
            sys.stdout.flush()
        if self.raises:
            raise RuntimeError(f"{self.name} fails in {hook} on purpose")

    def on_invocation_start(self, info: InvocationStartInfo) -> None:
        self.arn = info.execution_arn
        self.emit("invocation-start", first=info.is_first_invocation)

    def on_invocation_end(self, info: InvocationEndInfo) -> None:
        self.emit("invocation-end", status=info.status.value)

    def on_operation_start(self, info: OperationStartInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit("operation-start", op=info.operation_id)

    def on_operation_end(self, info: OperationEndInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit("operation-end", op=info.operation_id, status=info.status.value)

    def on_user_function_start(self, info: UserFunctionStartInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit("attempt-start", n=info.attempt, op=info.operation_id)

    def on_user_function_end(self, info: UserFunctionEndInfo) -> None:
        if info.operation_type is OperationType.STEP:
            self.emit("attempt-end", n=info.attempt, outcome=info.outcome.value, op=info.operation_id)


class Factory:
    """Builds one plugin per invocation, as the SDK's plugin API asks."""

    def __init__(self, name: str, *hooks: str, raises: bool = False) -> None:
        self.name = name
        self.hooks = frozenset(hooks)
        self.raises = raises

    def create_plugin(self, info: InvocationStartInfo) -> RecordingPlugin:
        return RecordingPlugin(self.name, self.hooks, raises=self.raises)


INVOCATION_HOOKS = ("invocation-start", "invocation-end")
ALL_HOOKS = ("invocation-start", "invocation-end", "operation-start", "operation-end", "attempt-start", "attempt-end")


def greet(event: Any) -> Any:
    def step(step_context: StepContext) -> str:
        step_context.logger.info(f"Greeting step running for: {event}")
        return f"Hello, {event}!"

    return step


@durable_execution(plugins=[Factory("CONFPLUGIN", *INVOCATION_HOOKS)])
def case_10_1(event: Any, context: DurableContext) -> Any:
    return context.step(greet(event), name="greet")


@durable_execution(plugins=[Factory("CONFPLUGIN", "operation-start", "operation-end")])
def case_10_2(event: Any, context: DurableContext) -> Any:
    return context.step(greet(event), name="greet")


@durable_execution(plugins=[Factory("CONFPLUGIN", "attempt-start", "attempt-end")])
def case_10_3(event: Any, context: DurableContext) -> Any:
    def unreliable(step_context: StepContext) -> str:
        if step_context.attempt == 1:
            raise RuntimeError("first attempt fails")
        return "Operation succeeded"

    retry = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=3, initial_delay=Duration.from_seconds(1), backoff_rate=1, jitter_strategy=JitterStrategy.NONE
        )
    )
    return context.step(unreliable, name="unreliable", config=StepConfig(retry_strategy=retry))


@durable_execution(plugins=[Factory("CONFPLUGIN-FAULTY", *ALL_HOOKS, raises=True)])
def case_10_4(event: Any, context: DurableContext) -> Any:
    return context.step(greet(event), name="greet")


@durable_execution(plugins=[Factory("CONFPLUGIN-A", *INVOCATION_HOOKS), Factory("CONFPLUGIN-B", *INVOCATION_HOOKS)])
def case_10_5(event: Any, context: DurableContext) -> Any:
    return context.step(greet(event), name="greet")


@durable_execution(plugins=[Factory("CONFPLUGIN", *INVOCATION_HOOKS)])
def case_10_6(event: Any, context: DurableContext) -> Any:
    context.wait(Duration.from_seconds(2))
    return "waited"


@durable_execution(plugins=[Factory("CONFPLUGIN", *INVOCATION_HOOKS)])
def case_10_7(event: Any, context: DurableContext) -> Any:
    def failing(step_context: StepContext) -> str:
        raise RuntimeError("step failed")

    return context.step(failing, name="failing", config=StepConfig(retry_strategy=RetryPresets.none()))

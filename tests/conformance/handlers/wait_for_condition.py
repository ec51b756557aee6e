"""Suite 6, wait_for_condition: a handler for each case, written from the case's description."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, WaitForConditionError, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext
from aws_durable_execution_sdk_python.types import WaitForConditionCheckContext
from aws_durable_execution_sdk_python.waits import (
    WaitForConditionConfig,
    WaitForConditionDecision,
    WaitStrategyConfig,
    create_wait_strategy,
)


def every(seconds: int, keep_polling: Callable[[Any], bool], max_attempts: int = 60) -> Any:
    """A fixed-delay wait strategy: no jitter, no backoff."""
    return create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=keep_polling,
            max_attempts=max_attempts,
            initial_delay=Duration.from_seconds(seconds),
            max_delay=Duration.from_seconds(seconds),
            backoff_rate=1,
            jitter_strategy=JitterStrategy.NONE,
        )
    )


def increment(state: int, check_context: WaitForConditionCheckContext) -> int:
    return state + 1


@durable_execution
def case_6_1(event: Any, context: DurableContext) -> Any:
    threshold = int(event)
    config = WaitForConditionConfig(wait_strategy=every(1, lambda state: state < threshold), initial_state=0)
    return context.wait_for_condition(increment, config=config)


@durable_execution
def case_6_2(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=every(1, lambda state: state < 5), initial_state=5)
    return context.wait_for_condition(lambda state, _: state, config=config)


@durable_execution
def case_6_3(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=every(1, lambda state: state < 2), initial_state=0)
    return context.wait_for_condition(increment, config=config, name="poll-status")


@durable_execution
def case_6_4(event: Any, context: DurableContext) -> Any:
    threshold = int(event)
    config = WaitForConditionConfig(wait_strategy=every(1, lambda state: state < threshold), initial_state=5)
    return context.wait_for_condition(increment, config=config)


@durable_execution
def case_6_5(event: Any, context: DurableContext) -> Any:
    threshold = int(event)
    config = WaitForConditionConfig(wait_strategy=every(2, lambda state: state < threshold), initial_state=0)
    return context.wait_for_condition(increment, config=config)


@durable_execution
def case_6_6(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=every(1, lambda state: True, max_attempts=3), initial_state=int(event or 0))
    return context.wait_for_condition(increment, config=config)


def failing_check(state: Any, check_context: WaitForConditionCheckContext) -> Any:
    raise RuntimeError(f"the status service is down (attempt {check_context.attempt})")


@durable_execution
def case_6_7(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=every(1, lambda state: True), initial_state=0)
    return context.wait_for_condition(failing_check, config=config)


@durable_execution
def case_6_8(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(wait_strategy=every(1, lambda state: True), initial_state=0)
    try:
        return context.wait_for_condition(failing_check, config=config)
    except WaitForConditionError:
        return "recovered"
    except Exception:  # noqa: BLE001 - the case catches whatever the failed poll raises
        return "recovered"


@durable_execution
def case_6_9(event: Any, context: DurableContext) -> Any:
    def check(state: dict[str, Any], check_context: WaitForConditionCheckContext) -> dict[str, Any]:
        attempts = state["attempts"] + 1
        return {"status": "DONE" if attempts >= 2 else "PENDING", "attempts": attempts}

    config = WaitForConditionConfig(
        wait_strategy=every(1, lambda state: state["status"] == "PENDING"),
        initial_state={"status": "PENDING", "attempts": 0},
    )
    return context.wait_for_condition(check, config=config)


@durable_execution
def case_6_10(event: Any, context: DurableContext) -> Any:
    def stop_at_once(state: Any, attempts_made: int) -> WaitForConditionDecision:
        return WaitForConditionDecision.stop_polling()

    config = WaitForConditionConfig(wait_strategy=stop_at_once, initial_state=None)
    return context.wait_for_condition(lambda state, _: None, config=config)


class Base64Text(SerDes[str]):
    """Checkpoints the state as base64 of its JSON, and decodes it back on resume."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return json.dumps(base64.b64encode(json.dumps(value).encode()).decode())

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        decoded: str = json.loads(base64.b64decode(json.loads(data)).decode())
        return decoded


@durable_execution
def case_6_11(event: Any, context: DurableContext) -> Any:
    config = WaitForConditionConfig(
        wait_strategy=every(1, lambda state: len(state) < 2),
        initial_state="",
        serdes=Base64Text(),
    )
    return context.wait_for_condition(lambda state, _: state + "x", config=config)


@durable_execution
def case_6_12(event: Any, context: DurableContext) -> Any:
    threshold = int(event)
    config = WaitForConditionConfig(wait_strategy=every(1, lambda state: state < threshold), initial_state=0)
    final = context.wait_for_condition(increment, config=config)
    return context.step(lambda _: final * 10, name="multiply")


@durable_execution
def case_6_13(event: Any, context: DurableContext) -> Any:
    first = context.wait_for_condition(
        increment, config=WaitForConditionConfig(wait_strategy=every(1, lambda state: state < 2), initial_state=0)
    )
    return context.wait_for_condition(
        increment, config=WaitForConditionConfig(wait_strategy=every(1, lambda state: state < 4), initial_state=first)
    )

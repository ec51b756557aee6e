"""Suite 4, callback: a handler for each case, written from the case's description.

The harness completes the callbacks as each case's CallbackActions say, matching them by name.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from aws_durable_execution_sdk_python import CallbackError, DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext


@durable_execution
def case_4_1(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    return callback.result()


@durable_execution
def case_4_2(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name="approval")
    return callback.result()


@durable_execution
def case_4_3(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(timeout=Duration.from_seconds(5)))
    return callback.result()


@durable_execution
def case_4_4(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(heartbeat_timeout=Duration.from_seconds(5)))
    return callback.result()


@durable_execution
def case_4_5(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(heartbeat_timeout=Duration.from_seconds(10)))
    return callback.result()


@durable_execution
def case_4_6(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    return callback.result()


@durable_execution
def case_4_7(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    context.step(lambda _: "prepared", name="prepare")
    return callback.result()


@durable_execution
def case_4_8(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(timeout=Duration.from_seconds(5)))
    context.step(lambda _: "prepared", name="prepare")
    return callback.result()


@durable_execution
def case_4_9(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@durable_execution
def case_4_10(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@durable_execution
def case_4_11(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(timeout=Duration.from_seconds(3)))
    context.wait(Duration.from_seconds(6))
    return callback.result()


@durable_execution
def case_4_12(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    result = callback.result()
    context.wait(Duration.from_seconds(2))
    return result


@durable_execution
def case_4_13(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event)
    try:
        message = callback.result()
    except CallbackError as error:
        message = f"callback failed: {error}"
    context.wait(Duration.from_seconds(2))
    return message


@durable_execution
def case_4_14(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(timeout=Duration.from_seconds(3)))
    try:
        message = callback.result()
    except CallbackError as error:
        message = f"callback timed out: {error}"
    context.wait(Duration.from_seconds(2))
    return message


class ReceivedMessage(SerDes[dict[str, Any]]):
    """Reads the JSON payload into a typed message whose ISO timestamp becomes epoch seconds."""

    def serialize(self, value: dict[str, Any], serdes_context: SerDesContext) -> str:
        return json.dumps(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> dict[str, Any]:
        raw = json.loads(data)
        when = datetime.datetime.fromisoformat(raw["timestamp"].replace("Z", "+00:00"))
        return {"id": raw["id"], "message": raw["message"], "timestamp": int(when.timestamp())}


@durable_execution
def case_4_15(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(serdes=ReceivedMessage()))
    return {"received": callback.result()}


class Number(SerDes[int]):
    def serialize(self, value: int, serdes_context: SerDesContext) -> str:
        return str(value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> int:
        return int(json.loads(data))


@durable_execution
def case_4_16(event: Any, context: DurableContext) -> Any:
    callback = context.create_callback(name=event, config=CallbackConfig(serdes=Number()))
    count = callback.result()
    assert count is not None
    return {"count": count, "doubled": count * 2}


@durable_execution
def case_4_17(event: Any, context: DurableContext) -> Any:
    first = context.create_callback(name=event[0]).result()
    second = context.create_callback(name=event[1]).result()
    return [first, second]


@durable_execution
def case_4_18(event: Any, context: DurableContext) -> Any:
    a = context.create_callback(name=event[0])
    b = context.create_callback(name=event[1])
    first = a.result()
    second = b.result()
    return [first, second]


@durable_execution
def case_4_19(event: Any, context: DurableContext) -> Any:
    a = context.create_callback(name=event[0])
    b = context.create_callback(name=event[1])
    second = b.result()
    first = a.result()
    return [first, second]

"""Suite 5, invoke (chained invoke): a handler for each case, written from the case's description.

The functions the cases invoke are served from the same template: ``target_echo`` returns its
input, ``target_greet`` greets it, ``target_size`` measures a large payload and ``target_fail``
fails.
"""

from __future__ import annotations

import json
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, InvokeError, durable_execution
from aws_durable_execution_sdk_python.config import Duration, InvokeConfig
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

ECHO = "target_echo"
GREET = "target_greet"
SIZE = "target_size"
FAIL = "target_fail"


@durable_execution
def target_echo(event: Any, context: DurableContext) -> Any:
    return event


@durable_execution
def target_greet(event: Any, context: DurableContext) -> Any:
    return f"Hello, {event}!"


@durable_execution
def target_size(event: Any, context: DurableContext) -> Any:
    return {"length": len(event["data"])}


@durable_execution
def target_fail(event: Any, context: DurableContext) -> Any:
    raise RuntimeError("the invoked function failed")


@durable_execution
def case_5_1(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event)


@durable_execution
def case_5_2(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event["payload"], name=event["name"])


@durable_execution
def case_5_3(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event)


@durable_execution
def case_5_4(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, None)


@durable_execution
def case_5_5(event: Any, context: DurableContext) -> Any:
    return context.invoke(FAIL, event)


@durable_execution
def case_5_6(event: Any, context: DurableContext) -> Any:
    try:
        return context.invoke(FAIL, event)
    except InvokeError:
        return "fallback"


@durable_execution
def case_5_7(event: Any, context: DurableContext) -> Any:
    # Near the 256 KB limit of an asynchronous invocation's payload.
    payload = {"data": "x" * (240 * 1024)}
    return context.invoke(SIZE, payload)


@durable_execution
def case_5_8(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event["payload"], config=InvokeConfig(tenant_id=event["tenantId"]))


@durable_execution
def case_5_9(event: Any, context: DurableContext) -> Any:
    result = context.invoke(ECHO, "cached")
    context.wait(Duration.from_seconds(1))
    return result


@durable_execution
def case_5_10(event: Any, context: DurableContext) -> Any:
    try:
        result = context.invoke(FAIL, event)
    except InvokeError:
        result = "caught"
    context.wait(Duration.from_seconds(1))
    return result


@durable_execution
def case_5_11(event: Any, context: DurableContext) -> Any:
    value = context.step(lambda _: "from the step", name="prepare")
    return context.invoke(ECHO, value)


@durable_execution
def case_5_12(event: Any, context: DurableContext) -> Any:
    result = context.invoke(ECHO, "from the invoke")
    return context.step(lambda _: f"processed {result}", name="process")


@durable_execution
def case_5_13(event: Any, context: DurableContext) -> Any:
    return context.run_in_child_context(lambda ctx: ctx.invoke(ECHO, "inside the child"), name="child")


@durable_execution
def case_5_14(event: Any, context: DurableContext) -> Any:
    first = context.invoke(ECHO, "first")
    second = context.invoke(GREET, first)
    return [first, second]


class UppercasePayload(SerDes[Any]):
    """Sends the payload with its strings in upper case."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        if isinstance(value, dict):
            return json.dumps({k: v.upper() if isinstance(v, str) else v for k, v in value.items()})
        return json.dumps(value.upper() if isinstance(value, str) else value)

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return json.loads(data)


@durable_execution
def case_5_15(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event, config=InvokeConfig(serdes_payload=UppercasePayload()))


class UppercaseResult(SerDes[str]):
    """Reads the result as its raw text in upper case (no JSON parsing)."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return value

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        return data.upper()


@durable_execution
def case_5_16(event: Any, context: DurableContext) -> Any:
    return context.invoke(ECHO, event, config=InvokeConfig(serdes_result=UppercaseResult()))

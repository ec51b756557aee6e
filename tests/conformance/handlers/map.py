"""Suite 9, map: a handler for each case, written from the case's description.

A map function receives the iteration's context, the item, its index and all the items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aws_durable_execution_sdk_python import BatchResult, DurableContext, durable_execution
from aws_durable_execution_sdk_python.concurrency.models import BatchItem, CompletionReason
from aws_durable_execution_sdk_python.config import (
    BatchItemStatus,
    CompletionConfig,
    Duration,
    MapConfig,
    NestingType,
)
from aws_durable_execution_sdk_python.serdes import JsonSerDes, SerDes, SerDesContext

MapFunction = Callable[[DurableContext, Any, int, Sequence[Any]], Any]


def sequential(completion: CompletionConfig | None = None, **options: Any) -> MapConfig[Any]:
    """One item at a time, in index order (a deterministic history)."""
    if completion is not None:
        options["completion_config"] = completion
    return MapConfig(max_concurrency=1, **options)


def projection(result: BatchResult[Any], *fields: str) -> dict[str, Any]:
    values = {
        "completionReason": result.completion_reason.value,
        "status": result.status.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }
    return {name: values[name] for name in fields}


def fail_on(bad: set[Any], value: Any = "ok") -> MapFunction:
    """Fails the iterations whose item is in ``bad``; the others return ``value``."""

    def iteration(ctx: DurableContext, item: Any, index: int, items: Sequence[Any]) -> Any:
        if item in bad:
            raise RuntimeError(f"item {index} ({item}) failed")
        return value

    return iteration


def upper(ctx: DurableContext, item: str, index: int, items: Sequence[Any]) -> str:
    return item.upper()


@durable_execution
def case_9_1(event: Any, context: DurableContext) -> Any:
    def greet(ctx: DurableContext, item: str, index: int, items: Sequence[Any]) -> str:
        return ctx.step(lambda _: f"Hello, {item}!", name=f"greet-{index}")

    return context.map(event, greet, name="map", config=sequential()).get_results()


@durable_execution
def case_9_2(event: Any, context: DurableContext) -> Any:
    return context.map(event, lambda ctx, item, index, items: item * 2, config=sequential()).get_results()


@durable_execution
def case_9_3(event: Any, context: DurableContext) -> Any:
    result = context.map(event, lambda ctx, item, index, items: item + index, name="indexed", config=sequential())
    return result.get_results()


@durable_execution
def case_9_4(event: Any, context: DurableContext) -> Any:
    return context.map(event or [], upper, name="empty").get_results()


@durable_execution
def case_9_5(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=0))
    result = context.map(["i0", "i1", "i2"], fail_on({"i1"}), name="failfast", config=config)
    return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount")


@durable_execution
def case_9_6(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=0))
    result = context.map(["i0", "i1"], fail_on({"i0"}), name="throwing", config=config)
    result.throw_if_error()
    return result.get_results()


@durable_execution
def case_9_7(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(min_successful=2))
    result = context.map(["i0", "i1", "i2", "i3"], fail_on(set()), name="min-successful", config=config)
    return projection(result, "completionReason", "successCount", "totalCount")


@durable_execution
def case_9_8(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=1))
    result = context.map(["i0", "i1", "i2"], fail_on({"i1"}), name="tolerated", config=config)
    return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount")


@durable_execution
def case_9_9(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=1))
    result = context.map(["i0", "i1", "i2"], fail_on({"i0", "i1"}), name="tolerated-exceeded", config=config)
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def case_9_10(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_percentage=25))
    result = context.map(["i0", "i1", "i2", "i3"], fail_on({"i0", "i1"}), name="tolerated-pct", config=config)
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def case_9_11(event: Any, context: DurableContext) -> Any:
    config = MapConfig(max_concurrency=2)
    return context.map(["r0", "r1", "r2"], lambda ctx, item, i, items: item, name="concurrent", config=config).get_results()


@durable_execution
def case_9_12(event: Any, context: DurableContext) -> Any:
    def in_step(ctx: DurableContext, item: str, index: int, items: Sequence[Any]) -> str:
        return ctx.step(lambda _: item, name=f"item-{index}")

    config = sequential(nesting_type=NestingType.FLAT)
    return context.map(["fa", "fb"], in_step, name="flat", config=config).get_results()


@durable_execution
def case_9_13(event: Any, context: DurableContext) -> Any:
    config = sequential(item_namer=lambda item, index: f"item-{item}")
    return context.map(event, lambda ctx, item, i, items: item * 10, name="named-items", config=config).get_results()


class WrappedText(SerDes[str]):
    """Writes an item's result as ``wrapped:<value>`` and reads the value back."""

    def serialize(self, value: str, serdes_context: SerDesContext) -> str:
        return f"wrapped:{value}"

    def deserialize(self, data: str, serdes_context: SerDesContext) -> str:
        return data.removeprefix("wrapped:")


@durable_execution
def case_9_14(event: Any, context: DurableContext) -> Any:
    config = sequential(item_serdes=WrappedText())
    return context.map(["x", "y"], upper, name="serdes", config=config).get_results()


@durable_execution
def case_9_15(event: Any, context: DurableContext) -> Any:
    def iteration(ctx: DurableContext, item: str, index: int, items: Sequence[Any]) -> str:
        if index == 1:
            ctx.wait(Duration.from_seconds(1))
        return ctx.step(lambda _: item, name=f"produce-{index}")

    return context.map(["r0", "r1"], iteration, name="suspend", config=sequential()).get_results()


@durable_execution
def case_9_16(event: Any, context: DurableContext) -> Any:
    def large(ctx: DurableContext, item: int, index: int, items: Sequence[Any]) -> str:
        return f"{index}" * (70 * 1024)

    result = context.map([0, 1, 2, 3], large, name="large", config=sequential())
    return projection(result, "successCount", "totalCount")


@durable_execution
def case_9_17(event: Any, context: DurableContext) -> Any:
    result = context.map(["a", "b"], upper, name="then-wait", config=sequential())
    context.wait(Duration.from_seconds(1))
    return result.get_results()


@durable_execution
def case_9_18(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=1))
    result = context.map(["ok", "fail"], fail_on({"fail"}), name="fail-then-wait", config=config)
    context.wait(Duration.from_seconds(1))
    return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount")


class OperationSerDes(SerDes[BatchResult[str]]):
    """Writes the whole map result as ``OPSERDE:`` and its comma-joined results, and reads it back."""

    def serialize(self, value: BatchResult[str], serdes_context: SerDesContext) -> str:
        return "OPSERDE:" + ",".join(value.get_results())

    def deserialize(self, data: str, serdes_context: SerDesContext) -> BatchResult[str]:
        body = data.removeprefix("OPSERDE:")
        results = body.split(",") if body else []
        items = [BatchItem(index=i, status=BatchItemStatus.SUCCEEDED, result=r) for i, r in enumerate(results)]
        return BatchResult(items, CompletionReason.ALL_COMPLETED)


def operation_serdes_config() -> MapConfig[Any]:
    # item_serdes is given too: alone, serdes would also apply to each item.
    return sequential(serdes=OperationSerDes(), item_serdes=JsonSerDes())


@durable_execution
def case_9_19(event: Any, context: DurableContext) -> Any:
    return context.map(["x", "y"], upper, name="op-serde", config=operation_serdes_config()).get_results()


@durable_execution
def case_9_20(event: Any, context: DurableContext) -> Any:
    result = context.map(["x", "y"], upper, name="op-serde-replay", config=operation_serdes_config())
    context.wait(Duration.from_seconds(1))
    return result.get_results()

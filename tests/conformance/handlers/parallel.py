"""Suite 8, parallel: a handler for each case, written from the case's description."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python import BatchResult, DurableContext, ParallelBranch, durable_execution
from aws_durable_execution_sdk_python.config import CompletionConfig, Duration, NestingType, ParallelConfig
from aws_durable_execution_sdk_python.serdes import SerDes, SerDesContext

Branch = Callable[[DurableContext], Any]


def returns(value: Any) -> Branch:
    return lambda ctx: value


def step_returning(value: Any) -> Branch:
    return lambda ctx: ctx.step(lambda _: value, name=f"task-{value}")


def fails(message: str = "branch failed") -> Branch:
    def branch(ctx: DurableContext) -> Any:
        raise RuntimeError(message)

    return branch


def sequential(completion: CompletionConfig | None = None, **options: Any) -> ParallelConfig:
    """One branch at a time, in index order (a deterministic history)."""
    if completion is not None:
        options["completion_config"] = completion
    return ParallelConfig(max_concurrency=1, **options)


def projection(result: BatchResult[Any], *fields: str) -> dict[str, Any]:
    values = {
        "completionReason": result.completion_reason.value,
        "status": result.status.value,
        "successCount": result.success_count,
        "failureCount": result.failure_count,
        "totalCount": result.total_count,
    }
    return {name: values[name] for name in fields}


@durable_execution
def case_8_1(event: Any, context: DurableContext) -> Any:
    result = context.parallel([step_returning("task-1"), step_returning("task-2")], name="parallel", config=sequential())
    return result.get_results()


@durable_execution
def case_8_2(event: Any, context: DurableContext) -> Any:
    return context.parallel([returns("alpha"), returns("beta")], config=sequential()).get_results()


@durable_execution
def case_8_3(event: Any, context: DurableContext) -> Any:
    branches = [ParallelBranch(func=returns("one"), name="first"), ParallelBranch(func=returns("two"), name="second")]
    return context.parallel(branches, name="named", config=sequential()).get_results()


@durable_execution
def case_8_4(event: Any, context: DurableContext) -> Any:
    branches = [returns("hello"), returns(42), returns({"k": "v"})]
    return context.parallel(branches, name="hetero", config=sequential()).get_results()


@durable_execution
def case_8_5(event: Any, context: DurableContext) -> Any:
    return context.parallel([], name="empty").get_results()


@durable_execution
def case_8_6(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=0))
    result = context.parallel([returns("ok"), fails(), returns("never")], name="failfast", config=config)
    return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount")


@durable_execution
def case_8_7(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=0))
    result = context.parallel([fails("branch 0 failed"), returns("never")], name="throwing", config=config)
    result.throw_if_error()
    return result.get_results()


@durable_execution
def case_8_8(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(min_successful=2))
    branches = [returns("b0"), returns("b1"), returns("b2"), returns("b3")]
    result = context.parallel(branches, name="min-successful", config=config)
    return projection(result, "completionReason", "successCount", "totalCount")


@durable_execution
def case_8_9(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=1))
    result = context.parallel([returns("b0"), fails(), returns("b2")], name="tolerated", config=config)
    return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount")


@durable_execution
def case_8_10(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=1))
    result = context.parallel([fails(), fails(), returns("never")], name="tolerated-exceeded", config=config)
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def case_8_11(event: Any, context: DurableContext) -> Any:
    branches = [returns("r0"), returns("r1"), returns("r2")]
    return context.parallel(branches, name="concurrent", config=ParallelConfig(max_concurrency=2)).get_results()


@durable_execution
def case_8_12(event: Any, context: DurableContext) -> Any:
    config = sequential(nesting_type=NestingType.FLAT)
    return context.parallel([step_returning("fa"), step_returning("fb")], name="flat", config=config).get_results()


@durable_execution
def case_8_13(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_percentage=25))
    branches = [fails(), fails(), returns("b2"), returns("b3")]
    result = context.parallel(branches, name="tolerated-pct", config=config)
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def case_8_14(event: Any, context: DurableContext) -> Any:
    def waits_then_returns(ctx: DurableContext) -> str:
        ctx.wait(Duration.from_seconds(2))
        return "b1"

    branches = [lambda ctx: ctx.step(lambda _: "b0", name="b0"), waits_then_returns]
    return context.parallel(branches, name="replay", config=sequential()).get_results()


class Wrapped(SerDes[Any]):
    """Writes v as {"wrapped": v} and reads it back as v."""

    def serialize(self, value: Any, serdes_context: SerDesContext) -> str:
        return json.dumps({"wrapped": value})

    def deserialize(self, data: str, serdes_context: SerDesContext) -> Any:
        return json.loads(data)["wrapped"]


@durable_execution
def case_8_15(event: Any, context: DurableContext) -> Any:
    config = sequential(item_serdes=Wrapped())
    return context.parallel([returns("x"), returns("y")], name="serde", config=config).get_results()


@durable_execution
def case_8_16(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=3))
    result = context.parallel([fails(), fails(), fails()], name="all-fail", config=config)
    return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount")


@durable_execution
def case_8_17(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(min_successful=3))
    result = context.parallel([returns("b0"), fails(), returns("b2")], name="min-not-reached", config=config)
    return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount")


@durable_execution
def case_8_18(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(min_successful=3, tolerated_failure_count=1))
    branches = [fails(), fails(), returns("b2"), returns("b3")]
    result = context.parallel(branches, name="combined", config=config)
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def case_8_19(event: Any, context: DurableContext) -> Any:
    # max_concurrency must be positive: the config itself raises ValidationError.
    config = ParallelConfig(max_concurrency=0)
    return context.parallel([returns("b0"), returns("b1")], name="bad-concurrency", config=config).get_results()


@durable_execution
def case_8_20(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_count=1))
    result = context.parallel([returns("b0"), fails(), returns("b2")], name="accessors", config=config)
    return {
        "hasFailure": result.has_failure,
        "successCount": len(result.succeeded()),
        "failureCount": len(result.failed()),
        "errorCount": len(result.get_errors()),
    }


@durable_execution
def case_8_21(event: Any, context: DurableContext) -> Any:
    def branch_a(ctx: DurableContext) -> Any:
        inner = ctx.parallel([step_returning("i1"), step_returning("i2")], name="inner", config=sequential())
        return inner.get_results()

    return context.parallel([branch_a], name="outer", config=sequential()).get_results()


@durable_execution
def case_8_22(event: Any, context: DurableContext) -> Any:
    config = sequential(CompletionConfig(tolerated_failure_percentage=25))
    branches = [fails(), returns("b1"), returns("b2"), returns("b3")]
    result = context.parallel(branches, name="pct-boundary", config=config)
    return projection(result, "completionReason", "status", "successCount", "failureCount", "totalCount")

"""An order workflow written for AWS Lambda Durable Functions with the official SDK.

It validates the order, charges the payment, waits for a human to approve the shipment
through a callback, fulfils the order and sends a confirmation. Each step's result is
checkpointed, so a crash at any point never charges the customer twice.
"""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import (
    DurableContext,
    StepContext,
    durable_execution,
    durable_step,
)
from aws_durable_execution_sdk_python.config import Duration, WaitForCallbackConfig
from aws_durable_execution_sdk_python.serdes import JsonSerDes
from aws_durable_execution_sdk_python.types import WaitForCallbackContext

PRICES = {"book": 12.5, "lamp": 40.0, "mug": 8.0}


@durable_step
def validate_order(step_context: StepContext, order: dict[str, Any]) -> dict[str, Any]:
    items = order.get("items") or []
    unknown = [item for item in items if item not in PRICES]
    if not items or unknown:
        raise ValueError(f"Order {order.get('order_id')} has no items or unknown items: {unknown}")
    return {"order_id": order["order_id"], "total": sum(PRICES[item] for item in items)}


@durable_step
def charge_payment(step_context: StepContext, order_id: str, total: float) -> dict[str, Any]:
    step_context.logger.info(f"Charging {total:.2f} for order {order_id}")
    return {"transaction_id": f"txn-{order_id}", "amount": total}


@durable_step
def fulfill_order(step_context: StepContext, order_id: str, transaction_id: str) -> dict[str, Any]:
    return {"tracking_number": f"TRACK-{order_id}", "transaction_id": transaction_id}


@durable_step
def send_confirmation(step_context: StepContext, order_id: str, tracking_number: str) -> str:
    return f"Order {order_id} shipped with tracking number {tracking_number}"


def request_approval(callback_id: str, context: WaitForCallbackContext) -> None:
    # A real workflow would email or page someone; this one prints how to approve.
    print(f"Order needs approval: perdure callback succeed {callback_id} --result '{{\"approved\": true}}'")


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    order = context.step(validate_order(event), name="validate")
    payment = context.step(charge_payment(order["order_id"], order["total"]), name="charge")
    approval = context.wait_for_callback(
        request_approval,
        name="approval",
        # The approver answers with JSON such as {"approved": true}.
        config=WaitForCallbackConfig(timeout=Duration.from_days(3), serdes=JsonSerDes()),
    )
    if not approval or not approval.get("approved"):
        return {"status": "rejected", "order_id": order["order_id"]}
    fulfillment = context.step(
        fulfill_order(order["order_id"], payment["transaction_id"]), name="fulfill"
    )
    confirmation = context.step(
        send_confirmation(order["order_id"], fulfillment["tracking_number"]), name="confirm"
    )
    return {
        "status": "completed",
        "order_id": order["order_id"],
        "charged": payment["amount"],
        "tracking_number": fulfillment["tracking_number"],
        "message": confirmation,
    }

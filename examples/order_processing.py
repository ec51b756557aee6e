"""The seed's order workflow, as written there, plus a human approval before fulfilment.

    perdure run examples/order_processing.py:process_order --payload '{"order_id": "A-1"}' --name A-1

Each ctx.checkpoint() saves the function's state: if the process dies after the payment's
checkpoint, the run resumes after it and the customer is not charged twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import perdure as durable
from ledger import record

CATALOGUE = {"A-1": 52.5, "A-2": 8.0, "B-7": 129.0}


def validate_order(order_id: str) -> dict[str, Any]:
    if order_id not in CATALOGUE:
        raise ValueError(f"Unknown order {order_id}")
    record(f"validated {order_id}")
    return {"order_id": order_id, "total": CATALOGUE[order_id]}


def charge_payment(order_id: str, total: float) -> dict[str, Any]:
    record(f"charged {order_id} {total:.2f}")
    return {"transaction_id": f"txn-{order_id}", "amount": total}


def request_approval(callback_id: str) -> None:
    record(f"approval requested {callback_id}")


def fulfill_order(order_id: str, transaction_id: str) -> dict[str, Any]:
    record(f"fulfilled {order_id} {transaction_id}")
    return {"tracking_number": f"TRACK-{order_id}"}


def send_confirmation(order_id: str, tracking_number: str) -> None:
    record(f"confirmed {order_id} {tracking_number}")


@durable.function
def process_order(ctx, event):
    order_id = event['order_id']
    # Step 1: Validate the order
    validation = validate_order(order_id)
    ctx.checkpoint()
    # Step 2: Charge payment (might take seconds or days for approval)
    payment = charge_payment(order_id, validation['total'])
    ctx.checkpoint()
    # A person approves the shipment; the function holds no process while it waits.
    approval = ctx.wait_for_callback(request_approval, name="approval", timeout=timedelta(days=3))
    if not approval.get('approved'):
        return {'status': 'rejected', 'order_id': order_id}
    # Step 3: Fulfill the order
    fulfillment = fulfill_order(order_id, payment['transaction_id'])
    ctx.checkpoint()
    # Step 4: Send confirmation
    send_confirmation(order_id, fulfillment['tracking_number'])
    return {'status': 'completed', 'order_id': order_id}

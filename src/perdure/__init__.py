"""Perdure: self-hosted durable functions for Python.

    import perdure as durable

    @durable.function
    def process_order(ctx, event):
        ...
        ctx.checkpoint()
"""

from perdure.client import Client
from perdure.errors import CallbackTimedOutError, NonDeterministicError, OperationFailedError, PerdureError
from perdure.sdk.context import Callback, Context, RetryPolicy
from perdure.sdk.function import function

__all__ = [
    "Callback",
    "CallbackTimedOutError",
    "Client",
    "Context",
    "NonDeterministicError",
    "OperationFailedError",
    "PerdureError",
    "RetryPolicy",
    "function",
]

__version__ = "0.1.0"

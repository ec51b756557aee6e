"""The seed-style API under the name the Lambda Durable Functions article imports it by.

    import aws_lambda_durable as durable

    @durable.function
    def process_order(ctx, event):
        ...
        ctx.checkpoint()

It is ``perdure``'s own API, so code written either way runs on Perdure unchanged.
"""

from perdure import *  # noqa: F403 - the same names, by design
from perdure import __all__ as __all__

"""``@durable.function``'s concurrency and rate options: read into the function's spec, or refused as its file loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from perdure.errors import FunctionLoadError
from perdure.protocol.limits import FunctionLimits, Rate
from perdure.runtime.registry import seed_functions

APP = """\
import perdure as durable


@durable.function(name="orders", {options})
def orders(ctx, event):
    return event
"""


def load(tmp_path: Path, options: str) -> FunctionLimits:
    path = tmp_path / f"limits_{abs(hash(options))}.py"
    path.write_text(APP.format(options=options))
    (spec,) = seed_functions(path)
    return spec.limits


def test_limits_are_read_into_the_spec(tmp_path: Path) -> None:
    options = 'concurrency=3, tenant_concurrency=1, rate_limit="50/minute", tenant_rate_limit="2 / seconds"'
    assert load(tmp_path, options) == FunctionLimits(3, 1, Rate(50, 60.0), Rate(2, 1.0))
    assert load(tmp_path, "concurrency=0") == FunctionLimits(concurrency=0), "0 holds every invocation, as Lambda's"
    assert load(tmp_path, "timeout=60") == FunctionLimits()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("concurrency=-1", "concurrency must be a whole number from 0 to 1000000, not -1"),
        ("concurrency='3'", "concurrency must be a whole number from 0 to 1000000, not '3'"),
        ("concurrency=True", "concurrency must be a whole number from 0 to 1000000, not True"),
        ("tenant_concurrency=0", "tenant_concurrency must be a whole number from 1 to 1000000, not 0"),
        ("rate_limit='fast'", 'rate_limit must be a whole number of starts per second, minute, hour or day, such as "50/minute"'),
        ("tenant_rate_limit='0/second'", "tenant_rate_limit must be a whole number of starts"),
        ("rate_limit=50", "rate_limit must be a whole number of starts per second, minute, hour or day, such as \"50/minute\" or \"10/second\", not 50"),
    ],
    ids=["negative", "text", "bool", "tenant-zero", "rate-word", "rate-zero", "rate-number"],
)
def test_a_limit_that_cannot_be_used_fails_the_load_naming_the_function_and_option(
    tmp_path: Path, options: str, message: str
) -> None:
    with pytest.raises(FunctionLoadError) as caught:
        load(tmp_path, options)
    assert f"@durable.function orders: {message}" in caught.value.message

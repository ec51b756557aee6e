"""``Metadata: {Perdure: {MaxConcurrency: N}}``: how many invocations of a template's function one worker process runs at once.

A bad value is refused at load time, naming the template file, line, resource and property.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_template import SEED_TEMPLATE, error_of, write

from perdure.runtime.template import load_template

BLOCK = "    Metadata:\n      Perdure:\n        MaxConcurrency: {value}\n"


def template(value: str) -> str:
    # The Metadata block sits right under the resource's Type: MaxConcurrency is on line 8.
    return SEED_TEMPLATE.replace(
        "    Type: AWS::Serverless::Function\n", "    Type: AWS::Serverless::Function\n" + BLOCK.format(value=value), 1
    )


def test_max_concurrency_is_read_from_perdures_metadata(tmp_path: Path) -> None:
    (spec,) = load_template(write(tmp_path, template("50"))).functions

    assert spec.max_concurrency == 50
    assert spec.config("handler.py:process_order").max_concurrency == 50, "kept with the function's version"


def test_without_it_the_pool_default_holds(tmp_path: Path) -> None:
    (spec,) = load_template(write(tmp_path, SEED_TEMPLATE)).functions

    assert spec.max_concurrency is None


@pytest.mark.parametrize("value", ["0", "-3", "many", "2.5", "true", "[4]", "2000000"])
def test_a_bad_max_concurrency_is_refused_naming_file_line_resource_and_property(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, template(value))

    message = error_of(path)

    assert message.startswith(f"{path}, line 8: Resource OrderProcessor: Metadata.Perdure.MaxConcurrency must be a whole number "
                              "from 1 to 1000000, not "), message
    assert message.endswith("Write, for example, MaxConcurrency: 50."), message


def test_a_misspelt_setting_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, template("4").replace("MaxConcurrency", "MaxConcurency"))

    message = error_of(path)

    assert message.startswith(f"{path}, line 8: Resource OrderProcessor: Metadata.Perdure.MaxConcurency is not a Perdure setting"), message
    assert "MaxConcurrency" in message

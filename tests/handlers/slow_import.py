"""A handler whose module takes PERDURE_TEST_IMPORT_SECONDS to import, as one with heavy imports does."""

from __future__ import annotations

import os
import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution

time.sleep(float(os.environ.get("PERDURE_TEST_IMPORT_SECONDS", "0")))


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> str:
    return "imported"

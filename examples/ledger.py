"""A side-effect ledger for the examples: each helper that does real work appends a line.

Set PERDURE_EXAMPLE_LEDGER to a file path to keep it; the tests read it to prove that no
payment or tool call ran twice when a process was killed and the execution resumed.
"""

from __future__ import annotations

import os


def record(line: str) -> None:
    print(line, flush=True)
    path = os.environ.get("PERDURE_EXAMPLE_LEDGER")
    if path:
        with open(path, "a", encoding="utf-8") as ledger:
            ledger.write(line + "\n")
            ledger.flush()
            os.fsync(ledger.fileno())

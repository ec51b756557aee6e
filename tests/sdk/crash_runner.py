"""Runs (or resumes) the `flow` function of a module with perdure.testing, in its own process.

    python crash_runner.py MODULE.py FOLDER [CRASH_AFTER]

With CRASH_AFTER the process exits for real (os._exit) right after that many checkpoints of
this run; otherwise it runs the execution to its end and prints the result as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from perdure.testing import DurableTestRunner


def main() -> None:
    module_path, folder = Path(sys.argv[1]), Path(sys.argv[2])
    spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_path.stem] = module
    spec.loader.exec_module(module)
    with DurableTestRunner(folder) as runner:
        if len(sys.argv) > 3:
            runner.crash_after_checkpoints(int(sys.argv[3]))
        run = runner.run(module.flow, {"seed": 1}, name="generated")
    print(json.dumps({"status": run.status, "result": run.result}))


if __name__ == "__main__":
    main()

"""A function's code fingerprint changes only with what resuming depends on.

Resuming jumps to a checkpoint's label inside the blocks that hold it and restores the saved
locals: the fingerprint covers the checkpoints, the blocks around them and the locals' names,
so a changed log line, constant or step argument is not a code change, and a moved checkpoint is.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from perdure.sdk.function import MARKER, DurableFunction
from perdure.sdk.resumable import make_resumable
from perdure.testing import DurableTestRunner

BASE = """
def flow(ctx, event):
    total = event["n"] * 2
    print("starting")
    for item in range(3):
        total += item
        ctx.checkpoint()
    if total > 3:
        ctx.checkpoint()
    else:
        total = 0
    return total
"""

_modules = itertools.count()


def fingerprint(tmp_path: Path, source: str) -> str:
    path = tmp_path / f"flow_{next(_modules)}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return make_resumable(module.flow).fingerprint


def test_changes_that_leave_checkpoints_and_locals_alone_keep_the_fingerprint(tmp_path: Path) -> None:
    base = fingerprint(tmp_path, BASE)
    for changed in (
        BASE.replace('print("starting")', 'print("starting up", total)'),
        BASE.replace('event["n"] * 2', 'event["n"] * 3 + 1'),
        BASE.replace("range(3)", "range(30)"),
        BASE.replace("total > 3", "total > 30"),
        BASE.replace("        total = 0\n", "        total = -1\n        print('none')\n"),
        "\n\n# a comment\n" + BASE,
    ):
        assert fingerprint(tmp_path, changed) == base, changed


def test_changes_to_checkpoints_blocks_or_saved_locals_change_the_fingerprint(tmp_path: Path) -> None:
    base = fingerprint(tmp_path, BASE)
    for changed in (
        # A checkpoint added before the others: every label after it moves.
        BASE.replace('    print("starting")\n', '    print("starting")\n    ctx.checkpoint()\n'),
        # A checkpoint moved from one branch to the other.
        BASE.replace("        ctx.checkpoint()\n    else:\n        total = 0\n", "        total = 1\n    else:\n        ctx.checkpoint()\n"),
        # The loop around a checkpoint is now a while loop.
        BASE.replace("    for item in range(3):\n        total += item\n", "    item = 0\n    while item < 3:\n        item += 1\n"),
        # A new local is saved with the checkpoints.
        BASE.replace('    print("starting")\n', '    label = "x"\n    print(label)\n'),
        # A suspending call before a checkpoint adds an implicit one.
        BASE.replace("        total += item\n", "        total += item\n        ctx.wait(1)\n"),
    ):
        assert fingerprint(tmp_path, changed) != base, changed


SUSPENDED = """
import perdure as durable


def send(callback_id):
    pass


@durable.function
def approval(ctx, event):
    print("VERSION")
    answer = ctx.wait_for_callback(send)
    return {"answer": answer, "version": "VERSION"}
"""


def load(tmp_path: Path, source: str) -> ModuleType:
    path = tmp_path / f"approval_{next(_modules)}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_execution_suspended_on_one_version_resumes_on_code_of_the_same_shape(tmp_path: Path) -> None:
    first = load(tmp_path, SUSPENDED.replace("VERSION", "v1"))
    second = load(tmp_path, SUSPENDED.replace("VERSION", "v2"))
    with DurableTestRunner(tmp_path) as runner:
        run = runner.run(first.approval, {})
        assert run.status == "RUNNING"
        runner.register(second.approval)
        runner.succeed_callback(run.callbacks[0], "yes")
        assert runner.resume(run).result == {"answer": "yes", "version": "v2"}


def test_a_snapshot_with_the_fingerprint_of_earlier_releases_still_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Executions suspended before the fingerprint covered only checkpoints and locals resume after the upgrade."""
    module = load(tmp_path, SUSPENDED.replace("VERSION", "v1"))
    durable: DurableFunction = getattr(module.approval, MARKER)
    earlier = dataclasses.replace(durable.resumable, fingerprint=durable.resumable.whole_code_fingerprint)
    with DurableTestRunner(tmp_path) as runner:
        monkeypatch.setattr(module.approval, MARKER, dataclasses.replace(durable, resumable=earlier))
        run = runner.run(module.approval, {})
        monkeypatch.undo()
        runner.register(module.approval)
        runner.succeed_callback(run.callbacks[0], "yes")
        assert runner.resume(run).result == {"answer": "yes", "version": "v1"}

"""Every seed-style misuse gets an error that names the file, the line and the fix."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from perdure.errors import InvalidParameterError
from perdure.protocol.snapshots import Snapshot, SnapshotCodec, SnapshotError
from perdure.testing import DurableTestRunner


def load(tmp_path: Path, body: str, name: str = "flow") -> Any:
    """Writes a module with the given source, imports it and returns the module."""
    module_name = f"m_{abs(hash(body))}_{name}"
    path = tmp_path / f"{module_name}.py"
    path.write_text("import threading\nimport perdure as durable\n\n" + textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("with open('f') as f:\n        ctx.checkpoint()", 7, "inside a `with` block cannot be resumed. Move the checkpoint before or after the `with` block."),
        ("try:\n        pass\n    except ValueError:\n        ctx.checkpoint()", 9, "inside an `except` block cannot be resumed."),
        ("try:\n        pass\n    finally:\n        ctx.checkpoint()", 9, "inside a `finally` block cannot be resumed. Move it before or after the `try` statement."),
        ("def helper():\n        ctx.checkpoint()", 7, "inside a nested function cannot be resumed. Checkpoints belong in the durable function itself."),
        ("f = lambda: ctx.checkpoint()", 6, "inside a lambda cannot be resumed."),
        ("xs = [ctx.checkpoint() for _ in range(3)]", 6, "inside a comprehension cannot be resumed. Write the comprehension as a `for` loop"),
        ("match event:\n        case _:\n            ctx.checkpoint()", 8, "inside a `match` statement cannot be resumed."),
        ("x = ctx.checkpoint()", 6, "used inside an expression cannot be resumed. Write it as a statement of its own"),
        ("ctx.checkpoint('now')", 6, "ctx.checkpoint() takes no arguments."),
        ("yield 1", 6, "A durable function cannot be a generator."),
        ("__p_x = 1", 6, "The name '__p_x' is reserved by Perdure."),
    ],
)
def test_a_checkpoint_that_cannot_be_resumed_is_refused_at_decoration(
    tmp_path: Path, body: str, line: int, message: str
) -> None:
    source = f"@durable.function\ndef flow(ctx, event):\n    {body}\n    return 1\n"
    with pytest.raises(InvalidParameterError) as caught:
        load(tmp_path, source)
    assert f".py:{line}: " in caught.value.message
    assert message in caught.value.message


def test_a_durable_function_needs_ctx_and_event(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"takes exactly two arguments, \(ctx, event\)"):
        load(tmp_path, "@durable.function\ndef flow(ctx):\n    return 1\n")


def test_a_checkpoint_from_a_helper_is_refused_when_called(tmp_path: Path) -> None:
    module = load(
        tmp_path,
        """
        def helper(ctx):
            ctx.checkpoint()

        @durable.function
        def flow(ctx, event):
            helper(ctx)
            return 1
        """,
    )
    with DurableTestRunner(tmp_path) as runner:
        run = runner.run(module.flow, {})
    assert run.status == "FAILED"
    assert run.error is not None
    assert "ctx.checkpoint() was called from a helper function" in (run.error.message or "")


def test_a_local_that_cannot_be_saved_names_the_variable_its_type_and_line(tmp_path: Path) -> None:
    module = load(
        tmp_path,
        """
        @durable.function
        def flow(ctx, event):
            lock = threading.Lock()
            ctx.checkpoint()
            return 1
        """,
    )
    with DurableTestRunner(tmp_path) as runner:
        run = runner.run(module.flow, {})
    assert run.status == "FAILED" and run.error is not None
    message = run.error.message or ""
    assert ".py:8: the checkpoint cannot save the local variable 'lock' of type lock" in message
    assert "delete it (`del lock`) before the checkpoint" in message


def test_a_tampered_snapshot_is_refused_and_never_unpickled() -> None:
    codec = SnapshotCodec(b"key")
    text = codec.encode(Snapshot("abc", {"x": 1}, 1, 3), "arn", "1", "f.py", 1).text
    nothing_stored = {}.get
    assert codec.decode(text, "arn", "1", nothing_stored)[0].locals == {"x": 1}
    forged = text[:-8] + ("A" * 8 if not text.endswith("A" * 8) else "B" * 8)
    with pytest.raises(SnapshotError, match="not signed with this server's key"):
        codec.decode(forged, "arn", "1", nothing_stored)
    with pytest.raises(SnapshotError, match="not signed with this server's key"):
        SnapshotCodec(b"another key").decode(text, "arn", "1", nothing_stored)


def test_an_unsigned_snapshot_in_the_journal_fails_the_execution_clearly(tmp_path: Path) -> None:
    source = """
    @durable.function
    def flow(ctx, event):
        count = 1
        ctx.checkpoint()
        ctx.wait_for_callback(print, name="approval")
        return count
    """
    module = load(tmp_path, source)
    with DurableTestRunner(tmp_path, secret=b"first") as runner:
        waiting = runner.run(module.flow, {}, name="x")
    with DurableTestRunner(tmp_path, secret=b"second") as runner:
        runner.succeed_callback(waiting.callbacks[0], "yes")
        run = runner.run(module.flow, {}, name="x")
    assert run.status == "FAILED" and run.error is not None
    assert "is not signed with this server's key" in (run.error.message or "")


def test_resuming_under_changed_code_pauses_naming_both_versions_until_the_code_is_back(tmp_path: Path) -> None:
    waits = "@durable.function\ndef flow(ctx, event):\n    answer = ctx.wait_for_callback(print)\n    return 1\n"
    before = load(tmp_path, waits, "v1")
    # A local saved with the checkpoint that the suspended execution's snapshot does not have.
    after = load(tmp_path, waits.replace("    answer", "    note = 'new'\n    answer"), "v2")
    with DurableTestRunner(tmp_path) as runner:
        waiting = runner.run(before.flow, {}, name="x")
        runner.succeed_callback(waiting.callbacks[0], "ok")
        run = runner.run(after.flow, {}, name="x")
        paused = runner.service.get_execution(run.arn)
        old = before.flow.__perdure_function__.resumable.fingerprint
        new = after.flow.__perdure_function__.resumable.fingerprint
        assert run.status == "PAUSED" and run.error is None
        assert f"checkpointed by code version {old} and the code now is version {new}" in (paused.pause_reason or "")
        assert runner.run(before.flow, {}, name="x").result == 1


def test_calling_a_durable_function_directly_says_how_to_start_it(tmp_path: Path) -> None:
    module = load(tmp_path, "@durable.function\ndef flow(ctx, event):\n    return 1\n")
    with pytest.raises(TypeError, match="start it with `perdure run`"):
        module.flow(None, {})


def test_a_function_without_source_says_where_durable_functions_must_live() -> None:
    import perdure as durable

    namespace: dict[str, object] = {"durable": durable}
    with pytest.raises(InvalidParameterError, match=r"Define durable functions in a \.py file"):
        exec("@durable.function\ndef flow(ctx, event):\n    return 1\n", namespace)


def test_a_for_loop_over_a_generator_names_the_loop_when_it_cannot_be_saved(tmp_path: Path) -> None:
    module = load(
        tmp_path,
        """
        @durable.function
        def flow(ctx, event):
            for item in (n * 2 for n in range(3)):
                ctx.checkpoint()
            return 1
        """,
    )
    with DurableTestRunner(tmp_path) as runner:
        run = runner.run(module.flow, {})
    assert run.status == "FAILED" and run.error is not None
    message = run.error.message or ""
    assert ".py:8: the checkpoint cannot save the iterator of the `for` loop at line 7, of type generator" in message
    assert "Loop over a list, a range or a dict" in message

"""For every kind of statement: a checkpoint the decorator accepts there resumes correctly, and
one it refuses is refused at decoration with the file, the line and the fix.

An accepted function runs once straight through, then again in a chain of processes, each
killed right after its first checkpoint and the next resuming it (as in
test_resume_property.py). Its result and its side effects must match the straight run; a
header (an ``if`` test, a loop's iterable) that ran again on resume would show as an effect
logged twice.
"""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest
from crash_chain import run_straight_and_crashing

from perdure.sdk.resumable import DecorationError


HEADER = '''\
import os
import perdure as durable


def effect(tag, value=None):
    with open(os.environ["PERDURE_TEST_LOG"], "a") as log:
        log.write(tag + "\\n")
    return value


'''

ACCEPTED = {
    "if/elif/else": """
        acc = []
        if effect("if test", event["seed"] == 1):
            effect("if")
            ctx.checkpoint()
            acc.append("if")
        if effect("elif test 1", event["seed"] == 2):
            acc.append("unreached")
        elif effect("elif test 2", event["seed"] == 1):
            effect("elif")
            ctx.checkpoint()
            acc.append("elif")
        if effect("else test", event["seed"] == 2):
            acc.append("unreached")
        else:
            effect("else")
            ctx.checkpoint()
            acc.append("else")
        return acc
    """,
    "for/else": """
        acc = []
        for n in effect("for iterable", range(3)):
            effect(f"for {n}")
            ctx.checkpoint()
            acc.append(n)
        else:
            effect("for else")
            ctx.checkpoint()
            acc.append("else")
        for n in range(3):
            if n == 1:
                ctx.checkpoint()
                break
        else:
            acc.append("unreached")
        return acc
    """,
    "while/else": """
        acc = []
        n = 0
        while effect(f"while test {n}", n < 2):
            n += 1
            ctx.checkpoint()
            effect(f"while {n}")
            acc.append(n)
        else:
            effect("while else")
            ctx.checkpoint()
            acc.append("else")
        return acc
    """,
    "try/except/else/finally": """
        acc = []
        try:
            effect("try")
            ctx.checkpoint()
            acc.append("try")
            raise ValueError("planned")
        except effect("except type", ValueError):
            effect("except")
            acc.append("except")
        else:
            acc.append("unreached")
        finally:
            effect("finally")
            acc.append("finally")
        try:
            ctx.checkpoint()
            acc.append("try 2")
        except ValueError:
            acc.append("unreached")
        else:
            effect("else 2")
            acc.append("else 2")
        finally:
            effect("finally 2")
            acc.append("finally 2")
        return acc
    """,
    "try*/except*/else/finally": """
        acc = []
        try:
            effect("try")
            ctx.checkpoint()
            acc.append("try")
            raise ValueError("planned")
        except* effect("except type", ValueError):
            effect("except")
            acc.append("except")
        else:
            acc.append("unreached")
        finally:
            effect("finally")
            acc.append("finally")
        try:
            ctx.checkpoint()
            acc.append("try 2")
        except* ValueError:
            acc.append("unreached")
        else:
            effect("else 2")
            acc.append("else 2")
        finally:
            effect("finally 2")
            acc.append("finally 2")
        return acc
    """,
}


@pytest.mark.parametrize("kind", list(ACCEPTED))
def test_a_checkpoint_the_decorator_accepts_resumes_after_a_crash(tmp_path: Path, kind: str) -> None:
    module = tmp_path / "flow_statements.py"
    body = textwrap.indent(textwrap.dedent(ACCEPTED[kind]).strip(), "    ")
    module.write_text(HEADER + "@durable.function\ndef flow(ctx, event):\n" + body + "\n")

    runs = run_straight_and_crashing(module, tmp_path, max_crashes=20)
    assert runs.straight["status"] == "SUCCEEDED", runs.straight
    assert runs.crashes >= 2
    assert runs.resumed == runs.straight
    assert runs.resumed_effects == runs.straight_effects


TRY_FIX = "Checkpoint inside the `try` body or after the statement."
FINALLY_FIX = "Move it before or after the `try` statement."
OWN_FUNCTION_FIX = "Checkpoints belong in the durable function itself."
LOOP_FIX = "Write the comprehension as a `for` loop to checkpoint in it."
EXPRESSION_FIX = "Write it as a statement of its own: `ctx.checkpoint()`."

# Each body marks the refused checkpoint's line with `# here`.
REFUSED = {
    "with": ("""
        with open(__file__) as f:
            ctx.checkpoint()  # here
    """, "inside a `with` block", "Move the checkpoint before or after the `with` block."),
    "async with, in a nested async def": ("""
        async def helper(lock):
            async with lock:
                ctx.checkpoint()  # here
    """, "inside a nested function", OWN_FUNCTION_FIX),
    "match/case": ("""
        match event:
            case {"seed": 1}:
                ctx.checkpoint()  # here
    """, "inside a `match` statement", "Rewrite the `match` as `if`/`elif`, or checkpoint before it."),
    "except": ("""
        try:
            pass
        except ValueError:
            ctx.checkpoint()  # here
    """, "inside an `except` block", TRY_FIX),
    "except*": ("""
        try:
            pass
        except* ValueError:
            ctx.checkpoint()  # here
    """, "inside an `except*` block", TRY_FIX),
    "try else": ("""
        try:
            pass
        except ValueError:
            pass
        else:
            ctx.checkpoint()  # here
    """, "inside a `try` statement's `else` block", "Move it after the `try` statement."),
    "try* else": ("""
        try:
            pass
        except* ValueError:
            pass
        else:
            ctx.checkpoint()  # here
    """, "inside a `try` statement's `else` block", "Move it after the `try` statement."),
    "finally": ("""
        try:
            pass
        finally:
            ctx.checkpoint()  # here
    """, "inside a `finally` block", FINALLY_FIX),
    "try* finally": ("""
        try:
            pass
        except* ValueError:
            pass
        finally:
            ctx.checkpoint()  # here
    """, "inside a `finally` block", FINALLY_FIX),
    "nested def": ("""
        def helper():
            ctx.checkpoint()  # here
    """, "inside a nested function", OWN_FUNCTION_FIX),
    "nested class": ("""
        class Helper:
            ctx.checkpoint()  # here
    """, "inside a class body", OWN_FUNCTION_FIX),
    "lambda": ("""
        helper = lambda: ctx.checkpoint()  # here
    """, "inside a lambda", OWN_FUNCTION_FIX),
    "list comprehension": ("""
        xs = [ctx.checkpoint() for _ in range(3)]  # here
    """, "inside a comprehension", LOOP_FIX),
    "set comprehension": ("""
        xs = {ctx.checkpoint() for _ in range(3)}  # here
    """, "inside a comprehension", LOOP_FIX),
    "dict comprehension": ("""
        xs = {n: ctx.checkpoint() for n in range(3)}  # here
    """, "inside a comprehension", LOOP_FIX),
    "generator expression": ("""
        xs = list(ctx.checkpoint() for _ in range(3))  # here
    """, "inside a generator expression", "Write it as a `for` loop to checkpoint in it."),
    "expression": ("""
        x = ctx.checkpoint()  # here
    """, "used inside an expression", EXPRESSION_FIX),
    "if test": ("""
        if ctx.checkpoint():  # here
            pass
    """, "used inside an expression", EXPRESSION_FIX),
    "while test": ("""
        while ctx.checkpoint():  # here
            pass
    """, "used inside an expression", EXPRESSION_FIX),
    "for iterable": ("""
        for n in ctx.checkpoint():  # here
            pass
    """, "used inside an expression", EXPRESSION_FIX),
    "except type": ("""
        try:
            pass
        except ctx.checkpoint():  # here
            pass
    """, "inside an `except` block", TRY_FIX),
    "with inside except: the outer place is named": ("""
        try:
            pass
        except ValueError:
            with open(__file__) as f:
                ctx.checkpoint()  # here
    """, "inside an `except` block", TRY_FIX),
    "if inside with: the outer place is named": ("""
        with open(__file__) as f:
            if f:
                ctx.checkpoint()  # here
    """, "inside a `with` block", "Move the checkpoint before or after the `with` block."),
}


def _decorate(folder: Path, source: str) -> None:
    """Writes the source as a module and imports it, which decorates its function."""
    path = folder / f"refused_{abs(hash(source))}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


@pytest.mark.parametrize("kind", list(REFUSED))
def test_a_checkpoint_the_decorator_refuses_names_the_file_the_line_and_the_fix(tmp_path: Path, kind: str) -> None:
    body, place, fix = REFUSED[kind]
    source = "import perdure as durable\n\n\n@durable.function\ndef flow(ctx, event):\n"
    source += textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n    return 1\n"
    line = next(n for n, text in enumerate(source.splitlines(), 1) if text.endswith("# here"))
    with pytest.raises(DecorationError) as caught:
        _decorate(tmp_path, source)
    assert caught.value.filename.startswith(str(tmp_path))
    assert caught.value.line == line
    assert caught.value.message == f"{caught.value.filename}:{line}: ctx.checkpoint() {place} cannot be resumed. {fix}"

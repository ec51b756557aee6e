"""Compiles a seed-style function into a generator that can resume right after any checkpoint.

Every ``ctx.checkpoint()`` statement becomes ``yield LABEL``; while the generator is paused
there, its frame's locals are the snapshot. A new generator started with a label and saved
locals restores the locals, then skips every statement that does not contain that label and
enters compound statements that do without evaluating their headers (an ``if`` takes the
branch holding the label, a loop enters its body), until the checkpoint is reached and normal
execution takes over. ``for`` loops keep their iterator in a hidden local, so it is saved too.
Statements that can suspend (``ctx.wait(...)`` and the like) get an implicit checkpoint just
before them, so the code before them runs once.

An ``async def`` function compiles the same way into an async generator. An async generator
cannot return a value, so its ``return x`` statements raise ``ResumableReturn(x)`` instead: a
BaseException, which the user's ``except Exception`` does not catch.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from collections.abc import AsyncGenerator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from perdure.errors import InvalidParameterError
from perdure.protocol.snapshots import HIDDEN

SUSPENDING_METHODS = frozenset({"wait", "wait_for_callback", "wait_for_condition", "invoke"})
_PROTOCOL_NAMES = frozenset({"__p_label", "__p_locals", "__p_r", "__p_S"})

Resumable = Callable[[Any, Any, int | None, dict[str, Any] | None], Generator[int, None, Any] | AsyncGenerator[int, None]]


class ResumableReturn(BaseException):
    """What ``return value`` of an ``async def`` durable function raises in its compiled form."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


class DecorationError(InvalidParameterError):
    """A durable function uses a checkpoint where it cannot be resumed."""

    def __init__(self, filename: str, line: int, problem: str, fix: str) -> None:
        super().__init__(f"{filename}:{line}: {problem} {fix}")
        self.filename = filename
        self.line = line


@dataclass(frozen=True)
class CheckpointSite:
    """Where a checkpoint is: its label, source line, and whether the transform added it."""

    label: int
    line: int
    implicit: bool


@dataclass(frozen=True)
class ResumableFunction:
    """The compiled generator function and what the engine needs to know about it."""

    generator: Resumable
    sites: dict[int, CheckpointSite]
    saved_names: frozenset[str]
    # A hash of the checkpoints, the blocks around them and the saved locals' names: snapshots
    # carry it, and resume only under code with the same one.
    fingerprint: str
    # A hash of the whole function, which snapshots carried before: still accepted, so an
    # execution suspended before the upgrade resumes on the same code after it.
    whole_code_fingerprint: str
    filename: str
    for_loop_lines: dict[str, int]
    # Compiled from an ``async def``: ``generator`` makes an async generator.
    is_async: bool = False


class _Sentinel:
    def __repr__(self) -> str:
        return "<end of iterator>"

    def __reduce__(self) -> str:
        return "SENTINEL"


SENTINEL = _Sentinel()


def _is_ctx_call(node: ast.AST, ctx: str, methods: frozenset[str]) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == ctx
        and node.func.attr in methods
    )


def _is_checkpoint_statement(node: ast.stmt, ctx: str) -> bool:
    return isinstance(node, ast.Expr) and _is_ctx_call(node.value, ctx, frozenset({"checkpoint"}))


def _walk_same_scope(node: ast.AST) -> Iterator[ast.AST]:
    """Walks ``node`` without entering nested functions, lambdas, classes or comprehensions."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef | ast.comprehension):
            continue
        yield from _walk_same_scope(child)


@dataclass(frozen=True)
class _Resumable:
    """A compound statement the transform can resume inside."""

    blocks: tuple[str, ...]
    refused: dict[str, tuple[str, str]]


_TRY_REFUSED = {
    "orelse": ("inside a `try` statement's `else` block", "Move it after the `try` statement."),
    "finalbody": ("inside a `finally` block", "Move it before or after the `try` statement."),
}

# The statements the transform can resume inside, the fields of each holding the blocks it
# can resume in (it enters them on resume without evaluating the statement's header), and
# why a checkpoint anywhere else in the statement cannot be resumed. The checker and the
# transformer both walk by this table alone, so every checkpoint the checker accepts is one
# the transformer rewrites: walking separately, they once disagreed on `try*` (issue 12).
# A `try*` body resumes like a `try` body: a generator may yield in it, and on resume its
# statements are skipped up to the checkpoint, so an exception raised after it is grouped
# and matched against the `except*` clauses just as in a straight run.
RESUMABLE: dict[type[ast.stmt], _Resumable] = {
    ast.If: _Resumable(("body", "orelse"), {}),
    ast.While: _Resumable(("body", "orelse"), {}),
    ast.For: _Resumable(("body", "orelse"), {}),
    ast.Try: _Resumable(
        ("body",), {"handlers": ("inside an `except` block", "Checkpoint inside the `try` body or after the statement."), **_TRY_REFUSED}
    ),
    ast.TryStar: _Resumable(
        ("body",), {"handlers": ("inside an `except*` block", "Checkpoint inside the `try` body or after the statement."), **_TRY_REFUSED}
    ),
}


class _Checker:
    """Finds checkpoints in places they cannot be resumed from, and other unsupported code."""

    # Places that hold code but cannot be resumed in: compound statements not in RESUMABLE,
    # and the expressions that run code of their own.
    _PLACES: dict[type, tuple[str, str]] = {
        ast.With: ("inside a `with` block", "Move the checkpoint before or after the `with` block."),
        ast.AsyncWith: ("inside an `async with` block", "Move the checkpoint out of the block."),
        ast.AsyncFor: ("inside an `async for` loop", "Collect the items first and checkpoint in a plain `for` loop."),
        ast.Match: ("inside a `match` statement", "Rewrite the `match` as `if`/`elif`, or checkpoint before it."),
        ast.FunctionDef: ("inside a nested function", "Checkpoints belong in the durable function itself."),
        ast.AsyncFunctionDef: ("inside a nested function", "Checkpoints belong in the durable function itself."),
        ast.Lambda: ("inside a lambda", "Checkpoints belong in the durable function itself."),
        ast.ClassDef: ("inside a class body", "Checkpoints belong in the durable function itself."),
        ast.ListComp: ("inside a comprehension", "Write the comprehension as a `for` loop to checkpoint in it."),
        ast.SetComp: ("inside a comprehension", "Write the comprehension as a `for` loop to checkpoint in it."),
        ast.DictComp: ("inside a comprehension", "Write the comprehension as a `for` loop to checkpoint in it."),
        ast.GeneratorExp: ("inside a generator expression", "Write it as a `for` loop to checkpoint in it."),
    }

    def __init__(self, filename: str, ctx: str) -> None:
        self.filename = filename
        self.ctx = ctx

    def fail(self, node: ast.AST, problem: str, fix: str) -> DecorationError:
        return DecorationError(self.filename, getattr(node, "lineno", 0), problem, fix)

    def check_function(self, function: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for node in _walk_same_scope(function):
            if isinstance(node, ast.Yield | ast.YieldFrom):
                raise self.fail(node, "A durable function cannot be a generator.", "Remove the `yield`; return a list instead.")
            if isinstance(node, ast.Name) and node.id.startswith(HIDDEN):
                raise self.fail(node, f"The name {node.id!r} is reserved by Perdure.", f"Rename it so it does not start with {HIDDEN!r}.")
        for node in ast.walk(function):
            if _is_ctx_call(node, self.ctx, frozenset({"checkpoint"})):
                call = node
                assert isinstance(call, ast.Call)
                if call.args or call.keywords:
                    raise self.fail(call, "ctx.checkpoint() takes no arguments.", "Write it as `ctx.checkpoint()`.")
        for statement in function.body:
            self._check_statement(statement)

    def _check_statement(self, node: ast.stmt) -> None:
        """Checks a statement in a block the transform can resume in."""
        if _is_checkpoint_statement(node, self.ctx):
            return
        kind = RESUMABLE.get(type(node))
        if kind is None:
            self._refuse(node, None)
            return
        for name, value in ast.iter_fields(node):
            for child in value if isinstance(value, list) else [value]:
                if name in kind.blocks:
                    self._check_statement(child)
                elif isinstance(child, ast.AST):
                    self._refuse(child, kind.refused.get(name))

    def _refuse(self, node: ast.AST, why: tuple[str, str] | None) -> None:
        """Refuses any checkpoint in ``node``, naming the outermost place that holds it: the
        one to move it out of."""
        place = why or self._PLACES.get(type(node))
        if _is_ctx_call(node, self.ctx, frozenset({"checkpoint"})):
            problem, fix = place or ("used inside an expression", "Write it as a statement of its own: `ctx.checkpoint()`.")
            raise self.fail(node, f"ctx.checkpoint() {problem} cannot be resumed.", fix)
        for child in ast.iter_child_nodes(node):
            self._refuse(child, place)


def _template(source: str, **nodes: Any) -> list[ast.stmt]:
    """Parses statements and replaces ``Name`` placeholders with the given nodes or lists."""
    tree = ast.parse(textwrap.dedent(source))

    class Fill(ast.NodeTransformer):
        def visit_Expr(self, node: ast.Expr) -> Any:
            if isinstance(node.value, ast.Name) and node.value.id in nodes:
                value = nodes[node.value.id]
                return value if isinstance(value, list) else node
            return self.generic_visit(node)

        def visit_Name(self, node: ast.Name) -> Any:
            if node.id in nodes and not isinstance(nodes[node.id], list):
                return nodes[node.id]
            return node

    filled = Fill().visit(tree)
    assert isinstance(filled, ast.Module)
    return filled.body


class _Transformer:
    """Rewrites a checked function body into the resumable form."""

    def __init__(self, ctx: str) -> None:
        self.ctx = ctx
        self.sites: dict[int, CheckpointSite] = {}
        self._labels: dict[int, frozenset[int]] = {}
        self._label_of: dict[int, int] = {}
        self._loops = 0
        self.for_loop_lines: dict[str, int] = {}

    # -- labelling --------------------------------------------------------------------------

    def prepare(self, body: list[ast.stmt]) -> list[ast.stmt]:
        """Labels checkpoints and inserts an implicit one before each statement that can suspend."""
        result: list[ast.stmt] = []
        for statement in body:
            kind = RESUMABLE.get(type(statement))
            if kind is not None:
                for name in kind.blocks:
                    setattr(statement, name, self.prepare(getattr(statement, name)))
            elif _is_checkpoint_statement(statement, self.ctx):
                self._label(statement, implicit=False)
            elif (
                not isinstance(statement, ast.With | ast.AsyncWith | ast.Match)
                and not (result and _is_checkpoint_statement(result[-1], self.ctx))
                and any(_is_ctx_call(node, self.ctx, SUSPENDING_METHODS) for node in _walk_same_scope(statement))
            ):
                # (Right after an explicit checkpoint, that checkpoint already does the job.)
                implicit = ast.Expr(
                    ast.Call(ast.Attribute(ast.Name(self.ctx, ast.Load()), "checkpoint", ast.Load()), [], [])
                )
                ast.copy_location(implicit, statement)
                ast.fix_missing_locations(implicit)
                self._label(implicit, implicit=True)
                result.append(implicit)
            result.append(statement)
        return result

    def _label(self, node: ast.stmt, implicit: bool) -> None:
        label = len(self.sites) + 1
        self.sites[label] = CheckpointSite(label, node.lineno, implicit)
        self._label_of[id(node)] = label

    def shape(self, body: list[ast.stmt]) -> list[object]:
        """The checkpoints of a labelled ``body`` and the resumable blocks around them, in order.

        Resuming jumps to a label through the blocks that hold it; statements without a
        checkpoint in them are not part of the shape, so changing them changes nothing here.
        """
        found: list[object] = []
        for statement in body:
            if id(statement) in self._label_of:
                found.append("checkpoint")
            elif self.labels_in(statement):
                blocks = RESUMABLE[type(statement)].blocks
                found.append((type(statement).__name__, [(name, self.shape(getattr(statement, name))) for name in blocks]))
        return found

    def labels_in(self, node: ast.AST) -> frozenset[int]:
        key = id(node)
        if key not in self._labels:
            found = {self._label_of[id(child)] for child in ast.walk(node) if id(child) in self._label_of}
            self._labels[key] = frozenset(found)
        return self._labels[key]

    def _body_labels(self, body: list[ast.stmt]) -> frozenset[int]:
        labels: set[int] = set()
        for statement in body:
            labels |= self.labels_in(statement)
        return frozenset(labels)

    # -- rewriting ----------------------------------------------------------------------------

    def body(self, statements: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        plain: list[ast.stmt] = []

        def flush() -> None:
            if plain:
                guard = _template("if not __p_r:\n    BODY", BODY=list(plain))
                ast.copy_location(guard[0], plain[0])
                out.extend(guard)
                plain.clear()

        for statement in statements:
            labels = self.labels_in(statement)
            if not labels:
                plain.append(statement)
                continue
            flush()
            rewritten = self._statement(statement)
            if id(statement) in self._label_of:
                out.extend(rewritten)
                continue
            guard = _template(
                "if not __p_r or __p_label in LABELS:\n    BODY",
                LABELS=ast.Tuple([ast.Constant(label) for label in sorted(labels)], ast.Load()),
                BODY=rewritten,
            )
            ast.copy_location(guard[0], statement)
            out.extend(guard)
        flush()
        return out or [ast.Pass()]

    def _statement(self, node: ast.stmt) -> list[ast.stmt]:
        if id(node) in self._label_of:
            return _template(
                """
                if __p_r:
                    if __p_label == LABEL:
                        __p_r = False
                else:
                    yield LABEL
                """,
                LABEL=ast.Constant(self._label_of[id(node)]),
            )
        # On resume, a statement is entered without evaluating its header: an `if` or `while`
        # test becomes "is the label in the body", a `for` loop keeps its iterator. A `try`
        # or `try*` has no header to skip.
        in_body = self._body_labels(node.body) if isinstance(node, ast.If | ast.While | ast.For) else frozenset()
        inside = ast.Tuple([ast.Constant(x) for x in sorted(in_body)], ast.Load())
        for name in RESUMABLE[type(node)].blocks:
            block = getattr(node, name)
            if block:
                setattr(node, name, self.body(block))
        if isinstance(node, ast.If | ast.While):
            node.test = ast.IfExp(ast.Name("__p_r", ast.Load()), ast.Compare(ast.Name("__p_label", ast.Load()), [ast.In()], [inside]), node.test)
        elif isinstance(node, ast.For):
            return self._for(node, inside)
        return [node]

    def _for(self, node: ast.For, inside: ast.Tuple) -> list[ast.stmt]:
        """Rewrites a ``for`` loop whose blocks are rewritten already, keeping its iterator."""
        self._loops += 1
        n = self._loops
        iterator, value, done = f"__p_it{n}", f"__p_v{n}", f"__p_else{n}"
        self.for_loop_lines[iterator] = node.lineno
        assign = ast.Assign([node.target], ast.Name(value, ast.Load()))
        statements = _template(
            f"""
            if not __p_r:
                {iterator} = iter(ITERABLE)
            {done} = False
            while True:
                if not __p_r:
                    {value} = next({iterator}, __p_S)
                    if {value} is __p_S:
                        {done} = True
                        break
                    ASSIGN
                elif __p_label not in INSIDE:
                    {done} = True
                    break
                BODY
            if {done}:
                ORELSE
            """,
            ITERABLE=node.iter,
            ASSIGN=[assign],
            INSIDE=inside,
            BODY=node.body,
            ORELSE=node.orelse or [ast.Pass()],
        )
        for statement in statements:
            ast.copy_location(statement, node)
        return statements


def make_resumable(function: Callable[..., Any]) -> ResumableFunction:
    """Compiles ``function(ctx, event)`` into its resumable generator; raises DecorationError."""
    filename = inspect.getsourcefile(function) or "<unknown>"
    if function.__code__.co_freevars:
        raise DecorationError(
            filename,
            function.__code__.co_firstlineno,
            f"The durable function {function.__name__!r} uses variables of an enclosing function "
            f"({', '.join(function.__code__.co_freevars)}).",
            "Define durable functions at module level.",
        )
    try:
        lines, first_line = inspect.getsourcelines(function)
    except OSError:
        raise DecorationError(
            filename,
            function.__code__.co_firstlineno,
            f"The source of {function.__name__!r} cannot be read, so it cannot be made resumable.",
            "Define durable functions in a .py file, not in an interactive session or with exec().",
        ) from None
    tree = ast.parse(textwrap.dedent("".join(lines)))
    ast.increment_lineno(tree, first_line - 1)
    definition = tree.body[0]
    if not isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef) or len(definition.args.args) != 2:
        raise DecorationError(
            filename, first_line, "A durable function takes exactly two arguments, (ctx, event).", "Write it as `def name(ctx, event):`."
        )
    definition.decorator_list = []
    whole_code_fingerprint = hashlib.sha256(ast.dump(definition).encode()).hexdigest()[:16]
    ctx = definition.args.args[0].arg
    _Checker(filename, ctx).check_function(definition)

    is_async = isinstance(definition, ast.AsyncFunctionDef)
    if is_async:
        definition.body = [_ReturnsRaise().visit(statement) for statement in definition.body]
    transformer = _Transformer(ctx)
    prepared = transformer.prepare(definition.body)
    shape = transformer.shape(prepared)
    # A function without checkpoints must still compile to a generator: a dead `yield` makes it one.
    definition.body = transformer.body(prepared) + _template("if False:\n    yield 0")
    definition.args.args += [ast.arg("__p_label"), ast.arg("__p_locals")]
    definition.args.defaults = [ast.Constant(None), ast.Constant(None)]
    definition.args.kwonlyargs = [ast.arg("__p_S")]
    definition.args.kw_defaults = [ast.Name("__p_sentinel", ast.Load())]
    # The restore prologue needs the function's local names, known only once it is compiled.
    saved = _local_names(definition, filename, function)
    prologue = _template(
        """
        __p_r = __p_label is not None
        if __p_r:
            RESTORE
        """,
        RESTORE=[
            stmt
            for name in sorted(saved)
            for stmt in _template(f"if {name!r} in __p_locals:\n    {name} = __p_locals[{name!r}]")
        ]
        or [ast.Pass()],
    )
    definition.body = prologue + definition.body
    generator = _compile(definition, filename, function)
    # What resuming depends on, and only that: a changed log line or constant resumes as before.
    fingerprint = hashlib.sha256(repr((shape, sorted(saved))).encode()).hexdigest()[:16]
    return ResumableFunction(
        generator=generator,
        sites=transformer.sites,
        saved_names=frozenset(saved),
        fingerprint=fingerprint,
        whole_code_fingerprint=whole_code_fingerprint,
        filename=filename,
        for_loop_lines=transformer.for_loop_lines,
        is_async=is_async,
    )


class _ReturnsRaise(ast.NodeTransformer):
    """Rewrites ``return x`` as ``raise __p_Return(x)`` in the function's own scope (not in nested ones)."""

    def visit_Return(self, node: ast.Return) -> ast.stmt:
        raised = ast.Raise(ast.Call(ast.Name("__p_Return", ast.Load()), [node.value or ast.Constant(None)], []))
        return ast.copy_location(raised, node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AsyncFunctionDef:
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        return node


def _compile(definition: ast.FunctionDef | ast.AsyncFunctionDef, filename: str, function: Callable[..., Any]) -> Any:
    module = ast.Module([definition], type_ignores=[])
    ast.fix_missing_locations(module)
    code = compile(module, filename, "exec")
    namespace: dict[str, Any] = {}
    # Executed with the function's own module globals, so it sees the same names.
    globals_ = function.__globals__
    globals_.setdefault("__p_sentinel", SENTINEL)
    globals_.setdefault("__p_Return", ResumableReturn)
    exec(code, globals_, namespace)
    return namespace[definition.name]


def _local_names(definition: ast.FunctionDef | ast.AsyncFunctionDef, filename: str, function: Callable[..., Any]) -> set[str]:
    compiled = _compile(definition, filename, function)
    code = compiled.__code__
    names = set(code.co_varnames) | set(code.co_cellvars)
    ctx = definition.args.args[0].arg
    return {n for n in names if n != ctx and n not in _PROTOCOL_NAMES and not n.startswith("__p_v")}

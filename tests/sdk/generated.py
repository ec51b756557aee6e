"""Hypothesis strategies that write random seed-style durable functions as source code.

The functions mix nested ``if``/``elif``/``else``, ``while``, ``for … else``, ``break``,
``continue``, ``try``/``except`` and early ``return`` with checkpoints in random places. Every
step of work calls ``effect(tag)``, which appends the tag to the side-effect log, so a test can
check that each effect happened exactly once across crashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

HEADER = '''\
import os
import perdure as durable


def effect(tag):
    with open(os.environ["PERDURE_TEST_LOG"], "a") as log:
        log.write(tag + "\\n")


'''


@dataclass
class _Names:
    loops: int = 0
    effects: int = 0
    in_loop: list[bool] = field(default_factory=list)

    def effect(self) -> str:
        self.effects += 1
        return f"e{self.effects}"


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _condition(draw: st.DrawFn) -> str:
    subject = draw(st.sampled_from(["total", "len(acc)"]))
    modulus = draw(st.integers(2, 4))
    return f"{subject} % {modulus} == {draw(st.integers(0, modulus - 1))}"


def _block(draw: st.DrawFn, names: _Names, depth: int, in_loop: bool) -> list[str]:
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 4 if depth == 0 else 3))):
        lines += _statement(draw, names, depth, in_loop)
    return lines


def _statement(draw: st.DrawFn, names: _Names, depth: int, in_loop: bool) -> list[str]:
    kinds = ["work", "checkpoint", "checkpoint", "work"]
    if depth < 3:
        kinds += ["if", "while", "for", "try"]
    if in_loop:
        kinds += ["break", "continue"]
    kinds.append("return")
    kind = draw(st.sampled_from(kinds))
    if kind == "work":
        tag = names.effect()
        amount = draw(st.integers(1, 9))
        return [f'effect("{tag}")', f"total += {amount}", f"acc.append({amount})"]
    if kind == "checkpoint":
        return ["ctx.checkpoint()"]
    if kind in ("break", "continue", "return"):
        exit_ = kind if kind != "return" else 'return {"early": True, "acc": acc, "total": total}'
        return [f"if {_condition(draw)}:", f"    effect(\"{names.effect()}\")", f"    {exit_}"]
    if kind == "if":
        lines = [f"if {_condition(draw)}:", *_indent(_block(draw, names, depth + 1, in_loop))]
        if draw(st.booleans()):
            lines += [f"elif {_condition(draw)}:", *_indent(_block(draw, names, depth + 1, in_loop))]
        if draw(st.booleans()):
            lines += ["else:", *_indent(_block(draw, names, depth + 1, in_loop))]
        return lines
    names.loops += 1
    counter = f"k{names.loops}"
    if kind == "while":
        bound = draw(st.integers(0, 3))
        return [
            f"{counter} = 0",
            f"while {counter} < {bound}:",
            f"    {counter} += 1",
            *_indent(_block(draw, names, depth + 1, True)),
        ]
    if kind == "for":
        lines = [f"for {counter} in range({draw(st.integers(0, 3))}):", *_indent(_block(draw, names, depth + 1, True))]
        if draw(st.booleans()):
            lines += ["else:", f"    effect(\"{names.effect()}\")", "    total += 100"]
        return lines
    body = _block(draw, names, depth + 1, in_loop)
    return [
        "try:",
        *_indent(body),
        f"    if {_condition(draw)}:",
        "        raise ValueError('planned')",
        "except ValueError:",
        f"    effect(\"{names.effect()}\")",
        "    total += 1000",
    ]


@st.composite
def durable_functions(draw: st.DrawFn) -> str:
    """Source of a module defining ``@durable.function def flow(ctx, event)``."""
    names = _Names()
    body = ["acc = []", "total = event['seed']", *_block(draw, names, 0, False)]
    body += [*["ctx.checkpoint()"] * draw(st.integers(0, 1)), 'return {"acc": acc, "total": total}']
    return HEADER + "@durable.function\ndef flow(ctx, event):\n" + "\n".join(_indent(body)) + "\n"

"""A handler module that cannot be imported: its import fails before the handler exists."""

from __future__ import annotations

raise ImportError("No module named 'missing_dependency' (deliberately broken test handler)")


def handler(event: object, context: object) -> None:  # pragma: no cover - never reached
    raise AssertionError("unreachable")

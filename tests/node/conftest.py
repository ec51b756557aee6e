"""Fixtures of the Node function tests: Node 22 and the test handlers' npm packages, installed once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from node_env import node22, node_handlers
from servers import Server


@pytest.fixture(scope="session")
def node_handlers_dir() -> Path:
    """tests/handlers/node with its packages installed."""
    return node_handlers()


@pytest.fixture
def serve_node(serve: Callable[..., Server], node_handlers_dir: Path) -> Callable[..., Server]:
    """Like ``serve``, with PERDURE_NODE naming Node 22."""

    def start(*args: str, **extra_env: str) -> Server:
        return serve(*args, PERDURE_NODE=node22(), **extra_env)

    return start

"""Finding the Node.js that runs Node functions: --node, PERDURE_NODE, PATH, and its version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from perdure.runtime.node_binary import NodeNotFoundError, find_node


def fake_node(folder: Path, version: str) -> Path:
    """A stand-in ``node`` that prints ``version``, as ``node --version`` does."""
    folder.mkdir(exist_ok=True)
    node = folder / "node"
    node.write_text(f"#!/bin/sh\necho {version}\n")
    node.chmod(0o755)
    return node


def test_the_chosen_node_wins_over_the_environment_and_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = fake_node(tmp_path / "chosen", "v22.3.0")
    monkeypatch.setenv("PERDURE_NODE", str(fake_node(tmp_path / "env", "v24.1.0")))

    assert find_node(str(chosen)).path == str(chosen)
    assert find_node().version == "v24.1.0"
    monkeypatch.delenv("PERDURE_NODE")
    monkeypatch.setenv("PATH", str(tmp_path / "chosen"))
    assert find_node().version == "v22.3.0"


def test_an_old_node_is_refused_saying_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(NodeNotFoundError) as error:
        find_node(str(fake_node(tmp_path, "v20.19.2")))

    assert "is Node.js v20.19.2, but Node functions need Node.js 22 or newer" in error.value.message
    assert "scripts/node22" in error.value.message and "--node PATH or PERDURE_NODE=PATH" in error.value.message


def test_a_missing_node_is_refused_saying_where_it_was_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERDURE_NODE", str(tmp_path / "nowhere" / "node"))

    with pytest.raises(NodeNotFoundError, match=r"no '.*nowhere/node' was found \(from PERDURE_NODE\)"):
        find_node()


def test_serve_with_a_node_function_stops_at_once_when_node_is_too_old(tmp_path: Path) -> None:
    (tmp_path / "app.mjs").write_text("export const handler = async () => ({Status: 'SUCCEEDED'});\n")
    env = {**os.environ, "PERDURE_NODE": str(fake_node(tmp_path / "bin", "v20.19.2"))}
    served = subprocess.run(
        [sys.executable, "-m", "perdure", "serve", "orders=app.mjs:handler", "--dev", "--db", f"sqlite:///{tmp_path / 'p.db'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert served.returncode == 1
    assert "Error: " in served.stderr and "Node functions need Node.js 22 or newer" in served.stderr

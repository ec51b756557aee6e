"""`perdure serve NAME=module.mjs:handler`: a Node module as a command-line target."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from servers import Server


def test_a_node_module_is_served_as_a_target(serve_node: Callable[..., Server], node_handlers_dir: Path) -> None:
    server = serve_node(f"counter={node_handlers_dir / 'counter.cjs'}:handler", f"steps={node_handlers_dir / 'steps.mjs'}:handler")

    counted = server.cli("invoke", "counter", "--payload", '{"n": 4}')
    stepped = server.cli("invoke", "steps", "--payload", '{"n": 1, "wait": 1}')

    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["Result"] == {"doubled": 8, "format": "commonjs"}
    assert json.loads(stepped.stdout)["Result"] == {"first": 2, "second": 20}
    listed = {f["FunctionName"]: f for f in json.loads(server.cli("functions", "list").stdout)}
    assert listed["counter"]["Runtime"] == listed["steps"]["Runtime"] == "nodejs22.x"

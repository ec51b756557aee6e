"""The agent example talks to an OpenAI-compatible endpoint when one is configured.

The endpoint here is a small HTTP server on 127.0.0.1 that answers chat completions the way
such a server does: first a tool call, then (after the tool's result) a final message.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from servers import ROOT

from perdure.testing import DurableTestRunner


class ChatServer(ThreadingHTTPServer):
    requests: list[dict[str, Any]]


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        tool_turns = sum(1 for m in body["messages"] if m["content"].startswith("Order "))
        if tool_turns == 0:
            call = {"function": {"name": "lookup_order", "arguments": json.dumps({"order_id": "B-7"})}}
            message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        else:
            message = {"role": "assistant", "content": "Order B-7 has 2 items."}
        reply = json.dumps({"choices": [{"message": message}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer(("127.0.0.1", 0), ChatHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.parametrize(("file", "function"), [("ai_agent.py", "ai_agent"), ("ai_agent_async.py", "ai_agent_async")])
def test_the_agent_uses_a_configured_openai_compatible_endpoint(
    chat_server: ChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str, function: str
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{chat_server.server_address[1]}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("PERDURE_EXAMPLE_LEDGER", str(tmp_path / "ledger"))
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    spec = importlib.util.spec_from_file_location("ai_agent_openai", ROOT / "examples" / file)
    assert spec is not None and spec.loader is not None
    agent = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ai_agent_openai", agent)
    spec.loader.exec_module(agent)

    with DurableTestRunner(tmp_path) as runner:
        run = runner.run(getattr(agent, function), {"prompt": "What is in order B-7?"})

    assert run.result == {"result": "Order B-7 has 2 items."}
    assert [r["path"] for r in chat_server.requests] == ["/v1/chat/completions"] * 2
    assert chat_server.requests[0]["auth"] == "Bearer test-key"
    assert {t["function"]["name"] for t in chat_server.requests[0]["body"]["tools"]} == {"lookup_order", "issue_refund"}
    assert (tmp_path / "ledger").read_text().splitlines().count('tool lookup_order {"order_id": "B-7"}') == 1

"""The seed's AI agent loop, as written there, with tool calls that can need a human's approval.

    perdure run examples/ai_agent.py:ai_agent --payload '{"prompt": "Refund order A-1"}' --name chat-1

It talks to an OpenAI-compatible endpoint when OPENAI_BASE_URL (and OPENAI_API_KEY, and
optionally OPENAI_MODEL) are set, and to a small scripted model otherwise.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

import perdure as durable
from ledger import record

TOOLS = {
    "lookup_order": {"description": "Look up an order by id.", "needs_approval": False},
    "issue_refund": {"description": "Refund an order by id.", "needs_approval": True},
}


def scripted_model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Looks the order up, asks to refund it, then answers: enough to exercise the loop."""
    tool_turns = sum(1 for m in messages if m["role"] == "tool")
    if tool_turns == 0:
        return {"tool_call": {"name": "lookup_order", "arguments": {"order_id": "A-1"}}}
    if tool_turns == 1:
        return {"tool_call": {"name": "issue_refund", "arguments": {"order_id": "A-1"}}}
    return {"content": f"Done: {messages[-1]['content']}"}


def _openai_model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    tools = [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": spec["description"],
                "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            },
        }
        for name, spec in TOOLS.items()
    ]
    chat = [{"role": m["role"] if m["role"] != "tool" else "user", "content": m["content"]} for m in messages]
    reply = httpx.post(
        f"{os.environ['OPENAI_BASE_URL'].rstrip('/')}/chat/completions",
        headers={"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', '')}"},
        json={"model": os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), "messages": chat, "tools": tools},
        timeout=60,
    )
    reply.raise_for_status()
    message = reply.json()["choices"][0]["message"]
    if message.get("tool_calls"):
        call = message["tool_calls"][0]["function"]
        return {"tool_call": {"name": call["name"], "arguments": json.loads(call["arguments"] or "{}")}}
    return {"content": message.get("content", "")}


def call_llm(messages: list[dict[str, Any]]) -> dict[str, Any]:
    response = _openai_model(messages) if os.environ.get("OPENAI_BASE_URL") else scripted_model(messages)
    record(f"llm call {len(messages)}")
    return response


def needs_approval(tool_call: dict[str, Any]) -> bool:
    return bool(TOOLS.get(tool_call["name"], {}).get("needs_approval"))


def ask_for_approval(callback_id: str) -> None:
    record(f"approval requested {callback_id}")


def execute_tool(tool_call: dict[str, Any]) -> str:
    record(f"tool {tool_call['name']} {json.dumps(tool_call['arguments'], sort_keys=True)}")
    if tool_call["name"] == "lookup_order":
        return f"Order {tool_call['arguments']['order_id']}: 2 items, 52.50 paid"
    if tool_call["name"] == "issue_refund":
        return f"Refunded order {tool_call['arguments']['order_id']}"
    return f"Unknown tool {tool_call['name']}"


@durable.function
def ai_agent(ctx, event):
    messages = [{'role': 'user', 'content': event['prompt']}]
    max_iterations = 20
    for i in range(max_iterations):
        # Call the LLM
        response = call_llm(messages)
        ctx.checkpoint()
        # Check if the agent wants to use a tool
        if response.get('tool_call'):
            if needs_approval(response['tool_call']):
                approval = ctx.wait_for_callback(ask_for_approval, name=f"approve {response['tool_call']['name']}")
                if not approval.get('approved'):
                    messages.append({'role': 'tool', 'content': 'The user declined this action.'})
                    continue
            tool_result = execute_tool(response['tool_call'])
            ctx.checkpoint()
            messages.append({'role': 'tool', 'content': tool_result})
        else:
            # Agent is done
            return {'result': response['content']}
    return {'result': 'max iterations reached'}

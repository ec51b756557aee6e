"""The seed's AI agent loop written with ``async def``: the model is awaited, not waited for.

    perdure run examples/ai_agent_async.py:ai_agent_async --payload '{"prompt": "Refund order A-1"}'

Every async durable function of a worker process shares one event loop, so a fleet of agents
waiting on their model costs one thread between them rather than a process each. Like
ai_agent.py it calls an OpenAI-compatible endpoint (httpx's async client) when
OPENAI_BASE_URL is set, and the scripted model otherwise.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

import perdure as durable
from ai_agent import TOOLS, ask_for_approval, execute_tool, needs_approval, scripted_model
from ledger import record


async def call_llm(messages: list[dict[str, Any]]) -> dict[str, Any]:
    if not os.environ.get("OPENAI_BASE_URL"):
        response = scripted_model(messages)
    else:
        tools = [
            {"type": "function", "function": {"name": name, "description": spec["description"],
             "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}
            for name, spec in TOOLS.items()
        ]  # fmt: skip
        chat = [{"role": m["role"] if m["role"] != "tool" else "user", "content": m["content"]} for m in messages]
        async with httpx.AsyncClient(timeout=60) as client:
            reply = await client.post(
                f"{os.environ['OPENAI_BASE_URL'].rstrip('/')}/chat/completions",
                headers={"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', '')}"},
                json={"model": os.environ.get("OPENAI_MODEL", "gpt-4o-mini"), "messages": chat, "tools": tools},
            )
        reply.raise_for_status()
        message = reply.json()["choices"][0]["message"]
        if message.get("tool_calls"):
            call = message["tool_calls"][0]["function"]
            response = {"tool_call": {"name": call["name"], "arguments": json.loads(call["arguments"] or "{}")}}
        else:
            response = {"content": message.get("content", "")}
    record(f"llm call {len(messages)}")
    return response


@durable.function
async def ai_agent_async(ctx, event):
    messages = [{'role': 'user', 'content': event['prompt']}]
    for i in range(20):
        response = await ctx.step(call_llm, messages)
        ctx.checkpoint()
        if response.get('tool_call'):
            if needs_approval(response['tool_call']):
                approval = await ctx.wait_for_callback(ask_for_approval, name=f"approve {response['tool_call']['name']}")
                if not approval.get('approved'):
                    messages.append({'role': 'tool', 'content': 'The user declined this action.'})
                    continue
            tool_result = await ctx.step(execute_tool, response['tool_call'])
            ctx.checkpoint()
            messages.append({'role': 'tool', 'content': tool_result})
        else:
            return {'result': response['content']}
    return {'result': 'max iterations reached'}

"""The seed's code runs as printed: ``import aws_lambda_durable as durable`` and its template.

The article lost its code's indentation; the code below is the article's with its indentation
back, and nothing else changed. The functions it calls are a user's own, defined after it.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from servers import wait_for

SEED_HANDLER = '''\
import aws_lambda_durable as durable
@durable.function
def process_order(ctx, event):
    order_id = event['order_id']
    # Step 1: Validate the order
    validation = validate_order(order_id)
    ctx.checkpoint()
    # Step 2: Charge payment (might take seconds or days for approval)
    payment = charge_payment(order_id, validation['total'])
    ctx.checkpoint()
    # Step 3: Fulfill the order
    fulfillment = fulfill_order(order_id, payment['transaction_id'])
    ctx.checkpoint()
    # Step 4: Send confirmation
    send_confirmation(order_id, fulfillment['tracking_number'])
    return {'status': 'completed', 'order_id': order_id}
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
            tool_result = execute_tool(response['tool_call'])
            ctx.checkpoint()
            messages.append({'role': 'tool', 'content': tool_result})
        else:
            # Agent is done
            return {'result': response['content']}
    return {'result': 'max iterations reached'}
'''

USER_FUNCTIONS = '''
def validate_order(order_id):
    return {'total': 42}


def charge_payment(order_id, total):
    return {'transaction_id': 'T-' + order_id}


def fulfill_order(order_id, transaction_id):
    return {'tracking_number': 'Z-' + transaction_id}


def send_confirmation(order_id, tracking_number):
    pass


def call_llm(messages):
    if messages[-1]['role'] == 'tool':
        return {'content': 'done after ' + messages[-1]['content']}
    return {'tool_call': 'lookup'}


def execute_tool(tool_call):
    return tool_call + ' ok'
'''

SEED_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  OrderProcessor:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.14
      Handler: handler.process_order
      CodeUri: ./src
      Timeout: 900
      MemorySize: 256
      DurableFunction:
        Enabled: true
        MaxSuspensionSeconds: 86400
  Agent:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.14
      Handler: handler.ai_agent
      CodeUri: ./src
      DurableFunction:
        Enabled: true
"""


def _finished(server: Any, function: str, payload: dict[str, Any]) -> dict[str, Any]:
    started = server.cli("invoke", function, "--payload", json.dumps(payload), "--async")
    assert started.returncode == 0, started.stderr
    arn = json.loads(started.stdout)["DurableExecutionArn"]

    def get() -> dict[str, Any]:
        return json.loads(server.cli("executions", "get", arn).stdout)  # type: ignore[no-any-return]

    wait_for(lambda: get()["Status"] != "RUNNING")
    return get()


def test_the_seed_handler_and_template_run_as_printed(serve: Any, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "handler.py").write_text(SEED_HANDLER + USER_FUNCTIONS)
    (tmp_path / "template.yaml").write_text(textwrap.dedent(SEED_TEMPLATE))
    server = serve("--template", str(tmp_path / "template.yaml"))

    order = _finished(server, "OrderProcessor", {"order_id": "A-1"})
    assert order["Status"] == "SUCCEEDED", order
    assert order["Result"] == {"status": "completed", "order_id": "A-1"}
    agent = _finished(server, "Agent", {"prompt": "where is my order?"})
    assert agent["Status"] == "SUCCEEDED", agent
    assert agent["Result"] == {"result": "done after lookup ok"}

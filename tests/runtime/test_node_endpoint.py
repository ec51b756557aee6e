"""The loopback endpoint a worker's Node child checkpoints through: its two routes, and its key."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from perdure.protocol.records import ErrorObject, Invocation
from perdure.runtime.node_endpoint import NodeEndpoint
from perdure.service.executions import DurableService, StartRequest


@pytest.fixture
def endpoint(service: DurableService) -> Iterator[NodeEndpoint]:
    served = NodeEndpoint(service)
    yield served
    served.close()


def signed(access_key_id: str) -> dict[str, str]:
    # The parts of a SigV4 header the endpoint reads; @aws-sdk/client-lambda sends the whole of it.
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential={access_key_id}/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00"}


@pytest.fixture
def invocation(service: DurableService) -> Invocation:
    service.start_execution(StartRequest("orders", '{"n": 1}', execution_name="o-1"))
    (leased,) = service.lease("owner", ["orders"], 1, 30)
    return leased


def url(endpoint: NodeEndpoint, arn: str, action: str) -> str:
    # As @aws-sdk/client-lambda sends it: the ARN one path segment, its slashes encoded.
    return f"{endpoint.credentials.url}/2025-12-01/durable-executions/{quote(arn, safe='')}/{action}"


def test_the_sdk_reads_state_and_checkpoints_with_the_childs_key(endpoint: NodeEndpoint, invocation: Invocation) -> None:
    key = endpoint.credentials.access_key_id
    state = httpx.get(url(endpoint, invocation.execution_arn, "state"), params={"CheckpointToken": invocation.checkpoint_token}, headers=signed(key))
    assert state.status_code == 200, state.text
    assert [op["Type"] for op in state.json()["Operations"]] == ["EXECUTION"]
    update = {"Id": "s1", "Type": "STEP", "Action": "START", "Name": "charge"}
    body = {"CheckpointToken": invocation.checkpoint_token, "Updates": [update]}
    reply = httpx.post(url(endpoint, invocation.execution_arn, "checkpoint"), json=body, headers=signed(key))
    assert reply.status_code == 200, reply.text
    assert reply.json()["CheckpointToken"] != invocation.checkpoint_token


def test_a_request_without_the_childs_key_is_refused(endpoint: NodeEndpoint, invocation: Invocation) -> None:
    params = {"CheckpointToken": invocation.checkpoint_token}
    for headers in ({}, signed("AKIAOTHERKEY"), signed(endpoint.credentials.access_key_id[:-1])):
        reply = httpx.get(url(endpoint, invocation.execution_arn, "state"), params=params, headers=headers)
        assert reply.status_code == 403
        assert reply.headers["x-amzn-ErrorType"] == "AccessDeniedException"


def test_only_the_two_routes_of_the_sdk_are_served(endpoint: NodeEndpoint, invocation: Invocation) -> None:
    key = endpoint.credentials.access_key_id
    reply = httpx.post(url(endpoint, invocation.execution_arn, "stop"), json={}, headers=signed(key))
    assert reply.status_code == 404


def test_a_stale_token_reads_as_lambdas_so_that_the_sdk_retries_the_invocation(
    endpoint: NodeEndpoint, invocation: Invocation
) -> None:
    # Another invocation takes the execution over: the first one's token no longer counts.
    endpoint.service.fail_invocation(invocation, ErrorObject(message="lost"), lost=True)
    assert endpoint.service.lease("owner", ["orders"], 1, 30)
    body = {"CheckpointToken": invocation.checkpoint_token, "Updates": []}
    stale = httpx.post(url(endpoint, invocation.execution_arn, "checkpoint"), json=body, headers=signed(endpoint.credentials.access_key_id))
    # The SDK's CheckpointManager.classifyCheckpointError: a 4xx InvalidParameterValueException
    # whose message starts "Invalid Checkpoint Token" is an invocation error, retried.
    assert stale.status_code == 400
    assert stale.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert stale.json()["message"].startswith("Invalid Checkpoint Token")


def test_it_listens_on_loopback_only(endpoint: NodeEndpoint) -> None:
    assert endpoint.credentials.url.startswith("http://127.0.0.1:")
    assert endpoint.credentials.environment()["AWS_ENDPOINT_URL_LAMBDA"] == endpoint.credentials.url

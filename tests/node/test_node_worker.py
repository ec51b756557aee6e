"""`perdure worker` runs Node functions on PostgreSQL from the code stored in the database."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

from cluster import Cluster
from node_env import node22, node_handlers
from pg_server import PostgresServer
from servers import Server, wait_for

from perdure.client import Client

TEMPLATE = """
Globals:
  Function:
    Runtime: nodejs22.x
    CodeUri: {node}
    DurableConfig: {{ExecutionTimeout: 3600}}
Resources:
  Steps:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-steps, Handler: steps.handler}}
  Napper:
    Type: AWS::Serverless::Function
    Properties: {{FunctionName: node-napper, Handler: workflows.napper}}
"""


def test_a_worker_given_no_code_runs_node_functions_and_stops_once_its_invocation_ends(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database(f"node_{uuid.uuid4().hex[:8]}")
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(node=node_handlers()))
    log = tmp_path / "side-effects.log"
    cluster = Cluster(tmp_path, url, log)
    cluster.env["PERDURE_NODE"] = node22()
    # The API alone publishes the functions' code, node_modules included, to the database.
    api = Server(["--template", str(template), "--no-workers"], tmp_path, cluster.env, db_url=url, start_timeout=120)
    cluster.api = api
    try:
        api.start()
        # Given no code, the worker runs the versions stored in the database (unpacked here).
        worker = cluster.add_worker(workers=1)
        with Client(api.endpoint) as client:
            arn = client.invoke("node-steps", {"n": 1, "wait": 1}, wait=False)["DurableExecutionArn"]
            done = wait_for(lambda: (e := client.get_execution(arn))["Status"] != "RUNNING" and e, timeout=90)
            assert done["Status"] == "SUCCEEDED", done  # type: ignore[index]
            assert json.loads(done["Result"]) == {"first": 2, "second": 20}  # type: ignore[index]

            napping = client.invoke("node-napper", {"key": "k", "seconds": 2}, wait=False)["DurableExecutionArn"]
            wait_for(lambda: log.exists() and "k nap-started" in log.read_text(), timeout=60)
            worker.signal(signal.SIGTERM)
            assert worker.process is not None
            assert worker.process.wait(30) == 0, worker.output()
            napped = client.get_execution(napping)
    finally:
        cluster.stop()
    assert "k nap-finished" in log.read_text()
    assert napped["Status"] == "SUCCEEDED", napped
    assert json.loads(napped["Result"]) == "rested"

"""A full disk under `perdure serve`, on either backend: a small tmpfs to fill, and what must hold.

A module of its own (see servers.py): tests/runtime/test_disk_full.py fills the SQLite data
folder, tests/store/test_postgres_disk_full.py a PostgreSQL tablespace.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from servers import HANDLERS, Server, handler_target, lambda_client, wait_for

# The functions the scenario runs: one that waits and takes a callback, two that run until told.
TARGETS = [
    handler_target("flow", "step_wait_callback"),
    f"held={HANDLERS / 'interruptible.py'}:held",
    str(HANDLERS / "seed_held.py"),
]


@contextmanager
def tmpfs(folder: Path, size: int, owner: tuple[int, int] | None = None) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted on ``folder`` (owned by ``owner``'s uid and gid), or a skip."""
    folder.mkdir(exist_ok=True)
    options = f"size={size}" + (f",uid={owner[0]},gid={owner[1]},mode=0700" if owner else "")
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True
        )
    except FileNotFoundError:
        pytest.skip("The full-disk test needs a small tmpfs, and this machine has no mount command.")
    if mounted.returncode != 0:
        pytest.skip(f"The full-disk test needs a small tmpfs, which this machine does not allow: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Writes a file until the volume is full; returns it (deleting it frees the space)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for size in (64 * 1024, 4096, 512, 1):
            try:
                while True:
                    handle.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC
    return filler


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _callback_id(client: Any, arn: str) -> str | None:
    events = client.get_durable_execution_history(DurableExecutionArn=arn)["Events"]
    return next((e["CallbackStartedDetails"]["CallbackId"] for e in events if "CallbackStartedDetails" in e), None)


def _start(client: Any, function: str, payload: Any) -> str:
    reply = client.invoke(FunctionName=function, Payload=json.dumps(payload).encode(), InvocationType="Event")
    return str(reply["DurableExecutionArn"])


def _unavailable(error: ClientError) -> None:
    """Checks a refusal is the disk-full 503 in Lambda's error shape, with a Retry-After."""
    response = error.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 503, response
    assert response["Error"]["Code"] == "ServiceUnavailableException"
    assert "full" in response["Error"]["Message"]
    assert int(response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) > 0


def _invoke_until_refused(client: Any, pad: str) -> list[str]:
    """Starts executions until one is refused as the disk is full; returns those started."""
    accepted = []
    for _ in range(200):
        try:
            accepted.append(_start(client, "flow", {"wait": 1, "pad": pad}))
        except ClientError as error:
            _unavailable(error)
            return accepted
    raise AssertionError("no invoke was refused while the disk was full")


def outlive_full_disk(server: Server, volume: Path, tmp_path: Path, pad: str = "x" * 20_000) -> None:
    """Fills ``volume`` while executions run, checks the 503s and the workers, frees it, and waits for every execution.

    ``server`` runs ``TARGETS`` with ``PERDURE_TEST_LOG`` at ``tmp_path / "side-effects.log"``;
    each refused invoke's input holds ``pad``.
    """
    client = lambda_client(server.endpoint)
    waiting = [_start(client, "flow", {"wait": 1}) for _ in range(3)]
    callbacks = {arn: wait_for(lambda arn=arn: _callback_id(client, arn)) for arn in waiting}
    release = tmp_path / "release"
    running = [_start(client, name, {"release": str(release)}) for name in ("held", "held", "seed_held")]
    side_effects = tmp_path / "side-effects.log"
    wait_for(lambda: side_effects.read_text().count("invoked") == len(running))
    assert server.process is not None
    workers = _children(server.process.pid)
    assert len(workers) >= 2

    filler = fill(volume)
    # Running handlers end while nothing can be written: their checkpoints and ends fail.
    release.touch()
    accepted = _invoke_until_refused(client, pad)
    for arn, callback_id in callbacks.items():
        try:
            client.send_durable_execution_callback_success(CallbackId=callback_id, Result=json.dumps("y" * 100_000))
        except ClientError as error:
            _unavailable(error)
        else:
            raise AssertionError(f"the callback of {arn} was completed on a full disk")
    time.sleep(3)
    assert all(_alive(pid) for pid in workers), "a worker process died while the disk was full"
    assert _alive(server.process.pid)

    filler.unlink()
    for callback_id in callbacks.values():
        client.send_durable_execution_callback_success(CallbackId=callback_id, Result=json.dumps("approved"))
    for arn in accepted:
        wait_for(lambda arn=arn: _callback_id(client, arn), timeout=60)
        client.send_durable_execution_callback_success(CallbackId=_callback_id(client, arn), Result=b'"later"')

    def status(arn: str) -> str:
        return str(client.get_durable_execution(DurableExecutionArn=arn)["Status"])

    for arn in [*waiting, *running, *accepted]:
        wait_for(lambda arn=arn: status(arn) != "RUNNING", timeout=90, interval=0.2)
        assert status(arn) == "SUCCEEDED", arn
    # Its step's end could not be recorded, which its own `except Exception` did not see.
    seed = client.get_durable_execution(DurableExecutionArn=running[-1])
    assert json.loads(seed["Result"]) == "released"


def full_disk_env(tmp_path: Path) -> dict[str, str]:
    """The environment ``outlive_full_disk`` expects its server to run in."""
    return {**os.environ, "PERDURE_TEST_LOG": str(tmp_path / "side-effects.log")}

"""The server secret: made once, whole, by whichever process starts first; never short."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.synchronize import Barrier
from pathlib import Path
from queue import Empty

import pytest
from click.testing import CliRunner
from servers import HANDLERS

from perdure.cli import main
from perdure.protocol.secret import SecretKeyError, load_secret

PROCESSES = 6
ROUNDS = 40


def _load_after(barrier: Barrier, folder: Path, results: multiprocessing.Queue[bytes | str]) -> None:
    barrier.wait()
    try:
        results.put(load_secret(folder))
    except Exception as error:  # noqa: BLE001 - the parent reports what each process saw
        results.put(f"{type(error).__name__}: {error}")


def test_processes_starting_together_on_a_fresh_folder_all_get_the_same_whole_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERDURE_SECRET", raising=False)
    # fork: the processes start in milliseconds and meet at the barrier, so they race for real.
    context = multiprocessing.get_context("fork")
    for round_number in range(ROUNDS):
        folder = tmp_path / f"round-{round_number}" / "data"
        barrier = context.Barrier(PROCESSES)
        results: multiprocessing.Queue[bytes | str] = context.Queue()
        processes = [context.Process(target=_load_after, args=(barrier, folder, results)) for _ in range(PROCESSES)]
        for process in processes:
            process.start()
        try:
            seen = [results.get(timeout=30) for _ in processes]
        except Empty:
            pytest.fail(f"round {round_number}: a process did not report its key")
        for process in processes:
            process.join(10)

        assert all(isinstance(key, bytes) for key in seen), f"round {round_number}: {seen}"
        assert len(set(seen)) == 1, f"round {round_number}: the processes got different keys"
        assert len(seen[0]) >= 32, f"round {round_number}: a key of {len(seen[0])} bytes"
        assert (folder / "secret").read_bytes() == seen[0]
        assert os.listdir(folder) == ["secret"], "no temporary file is left behind"
        assert (folder / "secret").stat().st_mode & 0o777 == 0o600


def test_a_secret_file_is_made_readable_by_its_owner_only_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERDURE_SECRET", raising=False)

    key = load_secret(tmp_path / "data")

    assert len(key) >= 32 and load_secret(tmp_path / "data") == key
    assert (tmp_path / "data" / "secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", [b"", b"\n", b"x" * 31])
def test_a_short_secret_file_is_refused_with_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes
) -> None:
    monkeypatch.delenv("PERDURE_SECRET", raising=False)
    (tmp_path / "secret").write_bytes(content)

    with pytest.raises(SecretKeyError) as caught:
        load_secret(tmp_path)

    message = caught.value.message
    assert f"The secret file {tmp_path / 'secret'} holds {len(content)} bytes" in message
    assert "at least 32" in message
    assert 'python -c "import secrets; print(secrets.token_hex(32))"' in message
    assert (tmp_path / "secret").read_bytes() == content, "a refused file is left as it is"


@pytest.mark.parametrize("value", ["", "short", "x" * 31])
def test_a_short_perdure_secret_is_refused_with_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PERDURE_SECRET", value)

    with pytest.raises(SecretKeyError) as caught:
        load_secret(tmp_path)

    message = caught.value.message
    assert f"PERDURE_SECRET holds {len(value)} bytes" in message and "at least 32" in message
    assert 'python -c "import secrets; print(secrets.token_hex(32))"' in message
    assert not (tmp_path / "secret").exists(), "a refused PERDURE_SECRET makes no secret file"


def test_a_perdure_secret_of_32_bytes_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERDURE_SECRET", "k" * 32)

    assert load_secret(tmp_path) == b"k" * 32


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_a_short_secret_before_starting_anything(tmp_path: Path, command: str) -> None:
    dev = ["--dev"] if command == "serve" else []
    db = f"sqlite:///{tmp_path / 'perdure.db'}"
    result = CliRunner().invoke(
        main, [command, str(HANDLERS / "big_payloads.py"), "--db", db, *dev], env={"PERDURE_SECRET": "short"}
    )

    assert result.exit_code == 1
    assert "Error: PERDURE_SECRET holds 5 bytes, but the server secret must be at least 32." in result.output
    assert not (tmp_path / "perdure.db").exists(), "nothing was opened"

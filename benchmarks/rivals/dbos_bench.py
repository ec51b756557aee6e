"""DBOS Transact's side of ``benchmarks/compare.py``: the same workloads, on its SQLite system database.

Two set-ups: DBOS's own default (``system_database_url`` a SQLite file; DBOS sets no journal
mode or ``synchronous``, so SQLite's defaults hold: rollback journal ``DELETE``, ``synchronous=FULL``),
and ``wal`` (the same, with an SQLAlchemy connect listener added to DBOS's engine that sets
``journal_mode=WAL`` and ``synchronous=NORMAL``, the setting Perdure uses). Everything else is
DBOS's default, including its 1 s notification poll on SQLite (which has no LISTEN/NOTIFY).

Each function runs in a child process of its own (DBOS is one instance per process) and returns
plain numbers (JSON). ``python dbos_bench.py crash-app DB MARKS [start]`` is the application the
crash workload kills and starts again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID
from dbos import _sys_db_sqlite
from sqlalchemy import event

_ready: dict[str, threading.Event] = {}


def _use_wal() -> None:
    """Makes every connection DBOS opens to SQLite use WAL and synchronous=NORMAL."""
    create = _sys_db_sqlite.SQLiteSystemDatabase._create_engine

    def create_wal(self: Any, url: str, kwargs: dict[str, Any]) -> Any:
        engine = create(self, url, kwargs)

        @event.listens_for(engine, "connect")
        def wal(dbapi_conn: Any, record: Any) -> None:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

        return engine

    _sys_db_sqlite.SQLiteSystemDatabase._create_engine = create_wal  # type: ignore[method-assign]


def _launch(db: Path, wal: bool, url: str | None = None) -> None:
    """Launches DBOS on the SQLite file ``db``, or on the PostgreSQL database ``url`` (which DBOS creates)."""
    if wal:
        _use_wal()
    config: DBOSConfig = {"name": "compare", "system_database_url": url or f"sqlite:///{db}", "log_level": "WARNING"}
    DBOS(config=config)
    DBOS.launch()


def durability() -> str:
    """The journal mode and synchronous setting of a connection DBOS's engine opens (on PostgreSQL:
    fsync and synchronous_commit)."""
    from dbos._dbos import _get_dbos_instance

    with _get_dbos_instance()._sys_db.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        if conn.dialect.name == "postgresql":
            show = {name: conn.exec_driver_sql(f"SHOW {name}").scalar() for name in ("fsync", "synchronous_commit")}
            return f"fsync={show['fsync']}, synchronous_commit={show['synchronous_commit']}"
        mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
        sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[raw.execute("PRAGMA synchronous").fetchone()[0]]
    return f"journal_mode={mode.upper()}, synchronous={sync}"


@DBOS.step()
def identity(value: int) -> int:
    return value


@DBOS.workflow()
def steps_workflow(count: int) -> int:
    """``count`` trivial steps, each recorded."""
    total = 0
    for i in range(count):
        total += identity(i)
    return total


@DBOS.step()
def now() -> float:
    return time.time()


@DBOS.workflow()
def recv_then_stamp() -> float:
    """DBOS's closest equivalent of a callback: waits for a message, then records when it ran again."""
    ready = _ready.get(DBOS.workflow_id or "")
    if ready is not None:
        ready.set()
    DBOS.recv("approval", timeout_seconds=120)
    return now()


@DBOS.workflow()
def sleep_then_stamp(due: float) -> float:
    """Sleeps durably until ``due`` (DBOS takes fractional seconds), then records when it ran again."""
    DBOS.sleep(max(0.0, due - time.time()))
    return now()


@DBOS.step()
def mark_and_hang(marks: str, hang_seconds: float) -> None:
    with Path(marks).open("a", encoding="utf-8") as out:
        out.write(f"{time.time()!r}\n")
    time.sleep(hang_seconds)


@DBOS.workflow()
def mark_then_hang(marks: str, hang_seconds: float) -> str:
    mark_and_hang(marks, hang_seconds)
    return "done"


def seq(folder: str, wal: bool, workflows: int, steps: int, warmup: int, db_url: str | None = None) -> dict[str, Any]:
    """(a) ``workflows`` workflows of ``steps`` steps, one at a time, each called and run to its end.

    On SQLite by default; ``db_url`` names a PostgreSQL database to run on instead."""
    _launch(Path(folder) / "dbos.sqlite", wal, db_url)
    try:
        times = []
        for number in range(warmup + workflows):
            began = time.perf_counter()
            steps_workflow(steps)
            if number >= warmup:
                times.append(time.perf_counter() - began)
        return {"times": times, "durability": durability()}
    finally:
        DBOS.destroy()


def concurrent(folder: str, wal: bool, workflows: int, steps: int, db_url: str | None = None) -> dict[str, Any]:
    """(b) ``workflows`` workflows started at once (``DBOS.start_workflow``, a thread each), until the last ends."""
    _launch(Path(folder) / "dbos.sqlite", wal, db_url)
    try:
        steps_workflow(steps)  # warm-up
        began = time.perf_counter()
        handles = [DBOS.start_workflow(steps_workflow, steps) for _ in range(workflows)]
        for handle in handles:
            handle.get_result()
        return {"seconds": time.perf_counter() - began, "workflows": workflows, "steps": steps}
    finally:
        DBOS.destroy()


def callback(folder: str, wal: bool, count: int, warmup: int) -> dict[str, Any]:
    """(c) ``DBOS.send`` → the workflow blocked in ``DBOS.recv`` running again (its stamp), and → its end."""
    _launch(Path(folder) / "dbos.sqlite", wal)
    try:
        resumed, ended = [], []
        for number in range(warmup + count):
            workflow_id = f"recv-{number}"
            _ready[workflow_id] = threading.Event()
            with SetWorkflowID(workflow_id):
                handle = DBOS.start_workflow(recv_then_stamp)
            _ready[workflow_id].wait(60)
            time.sleep(0.01)  # into recv's wait, past the ready signal
            began_wall, began = time.time(), time.perf_counter()
            DBOS.send(workflow_id, "approved", "approval")
            stamp = handle.get_result()
            end = time.perf_counter()
            if number >= warmup:
                resumed.append(stamp - began_wall)
                ended.append(end - began)
        return {"resumed": resumed, "ended": ended}
    finally:
        DBOS.destroy()


def timers(folder: str, wal: bool, count: int, lead: float) -> dict[str, Any]:
    """(f) ``count`` workflows sleeping (``DBOS.sleep``, a thread each) until the same moment; lateness of
    each one running again after that moment."""
    _launch(Path(folder) / "dbos.sqlite", wal)
    try:
        due = time.time() + lead
        began = time.perf_counter()
        handles = [DBOS.start_workflow(sleep_then_stamp, due) for _ in range(count)]
        setup = time.perf_counter() - began
        ahead = due - time.time()
        resumed = [handle.get_result() - due for handle in handles]
        return {"resumed": resumed, "setup_seconds": setup, "seconds_left_after_setup": ahead}
    finally:
        DBOS.destroy()


def _app(folder: str, wal: bool, marks: str, start: bool) -> list[str]:
    return [sys.executable, __file__, "crash-app", folder, "wal" if wal else "default", marks, "start" if start else "recover"]


def _marks(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def _ready_line(process: subprocess.Popen[str], timeout: float = 60.0) -> float:
    """The wall-clock moment the app says it is ready (``DBOS.launch()`` returned)."""
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("ready "):
        raise RuntimeError(f"the DBOS app said {line!r} instead of ready")
    return float(line.split()[1])


def crash(folder: str, wal: bool) -> dict[str, Any]:
    """(d) The DBOS app SIGKILLed while a workflow runs a step, then started again: seconds from
    ``DBOS.launch()`` returning (and from the spawn) to the step running again (DBOS's recovery at launch)."""
    marks = Path(folder) / "marks.txt"
    app = subprocess.Popen(_app(folder, wal, str(marks), True), stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _ready_line(app)
        deadline = time.monotonic() + 60
        while not _marks(marks):
            if time.monotonic() > deadline:
                raise RuntimeError("the DBOS workflow never ran")
            time.sleep(0.005)
        app.send_signal(signal.SIGKILL)
        app.wait()
        time.sleep(0.2)
        spawned = time.time()
        app = subprocess.Popen(_app(folder, wal, str(marks), False), stdout=subprocess.PIPE, text=True, start_new_session=True)
        ready = _ready_line(app)
        deadline = time.monotonic() + 60
        while len(_marks(marks)) < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the DBOS workflow was not recovered within 60 s")
            time.sleep(0.002)
        again = _marks(marks)[1]
        return {"from_ready": again - ready, "from_spawn": again - spawned}
    finally:
        if app.poll() is None:
            app.send_signal(signal.SIGKILL)
            app.wait()


def crash_app(folder: str, wal: bool, marks: str, start: bool) -> None:
    """The application the crash workload kills: launches DBOS (which recovers pending workflows), says
    when it is ready, and with ``start`` starts a workflow that hangs in a step."""
    _launch(Path(folder) / "crash.sqlite", wal)
    sys.stdout.write(f"ready {time.time()!r}\n")
    sys.stdout.flush()
    if start:
        DBOS.start_workflow(mark_then_hang, marks, 3600.0)
    threading.Event().wait()


def version() -> str:
    from importlib import metadata

    return metadata.version("dbos")


if __name__ == "__main__" and sys.argv[1:2] == ["crash-app"]:
    crash_app(sys.argv[2], sys.argv[3] == "wal", sys.argv[4], sys.argv[5] == "start")

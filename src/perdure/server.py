"""Builds a server from one frozen configuration, and closes it: store, service, runtime, API.

The CLI parses its flags into a ``ServerConfig`` and calls this module, which alone chooses
the blob store of a database and wires the parts. The data folder is the store's
(``perdure.store.data_dir_for``), and the service is given the snapshot codec of the secret
kept there, so the engine, the dashboard and the snapshot upgrade verify with the key the
workers sign with.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from perdure.api.app import Lifespan, PerdureApp
from perdure.api.keys import KeyRing, api_secret, derive_api_secret
from perdure.api.metrics import MetricsListener, metrics_registry
from perdure.errors import PerdureError
from perdure.protocol.approval_links import ApprovalLinks
from perdure.protocol.secret import load_secret
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime import destinations
from perdure.runtime.code_versions import CodeVersions
from perdure.runtime.node_binary import find_node, is_node_runtime
from perdure.runtime.registry import FunctionSpec, Registry
from perdure.runtime.runner import Runtime
from perdure.runtime.storage import choose_blobs
from perdure.runtime.workers import DEFAULT_SLOTS, WorkerSettings
from perdure.service import limits
from perdure.service.executions import DurableService, ServiceConfig
from perdure.service.functions import lookup_of
from perdure.service.retention import DEFAULT_RETENTION_DAYS
from perdure.service.schedules import Schedules
from perdure.service.snapshot_upgrade import upgrade_snapshots
from perdure.store import DEFAULT_DB_URL, data_dir_for, display_url, open_store
from perdure.store.blobs import BlobConfig
from perdure.telemetry import tracing

# Messages for the operator (full sentences); the CLI prints them on stderr.
Notify = Callable[[str], None]


@dataclass(frozen=True)
class ServerConfig:
    """What one server process runs with, read once from its flags and environment.

    ``workers`` is the number of worker processes, or 0 to serve the API alone. ``secret``
    signs snapshots and derives the API keys' secrets: ``PERDURE_SECRET``, else the data
    folder's ``secret`` file (see ``perdure.protocol.snapshots.load_secret``).
    """

    db_url: str = DEFAULT_DB_URL
    blobs: str | None = None
    s3_endpoint: str | None = None
    host: str = "127.0.0.1"
    port: int = 8500
    workers: int = 2
    # Invocations each worker process runs at once (``WorkerPool``'s ``slots``).
    concurrency: int = DEFAULT_SLOTS
    dev: bool = False
    request_timeout: float = 30.0
    retention_days: int = DEFAULT_RETENTION_DAYS
    # --log-format json: worker processes write their own log lines as JSON, as the server does.
    json_log: bool = False
    secret: bytes | None = field(default=None, repr=False)
    # ``/metrics`` on a port of its own, unauthenticated (None: only on the API's port, authenticated).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # Where people reach this server: approval links (``ctx.callback_link``, ``perdure callback
    # link``) are made under it. None: no links are made here (a ``perdure worker`` not told).
    public_url: str | None = None
    # The Node.js binary of Node functions (``--node`` or PERDURE_NODE); None: ``node`` on PATH.
    node: str | None = None

    @property
    def data_dir(self) -> Path:
        """The folder of the database's local files: the SQLite file's folder, else ``.perdure``."""
        return data_dir_for(self.db_url)

    def with_secret(self) -> ServerConfig:
        """This configuration with its secret read (or made) now, so that a bad one stops the start.

        Checked once here: a short key would otherwise fail every worker as it starts.
        """
        return dataclasses.replace(self, secret=self.key())

    def key(self) -> bytes:
        """The secret: the one read by ``with_secret``, else read now."""
        return self.secret if self.secret is not None else load_secret(self.data_dir)

    @property
    def service_config(self) -> ServiceConfig:
        return ServiceConfig(retention_days=self.retention_days)

    def links(self) -> ApprovalLinks | None:
        """What makes and checks approval links, with the server secret; None without a public URL."""
        return ApprovalLinks(self.key(), self.public_url) if self.public_url else None


def default_public_url(host: str, port: int) -> str:
    """``http://HOST:PORT``; for a server listening on every address, with this machine's name for HOST."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def open_service(config: ServerConfig, specs: Iterable[FunctionSpec], notify: Notify) -> tuple[DurableService, BlobConfig]:
    """Opens the service on the configured database, with the blob store chosen from --blobs and the functions."""
    specs = list(specs)
    blobs, notes = choose_blobs(config.blobs, config.s3_endpoint, specs)
    for note in notes:
        notify(f"Note: {note}")
    # The functions served, so that a chained invoke can start a child execution of one of them.
    functions = lookup_of(spec.defaults for spec in specs)
    store = open_store(config.db_url, blobs)
    codec = SnapshotCodec(config.key())
    service = DurableService(store, config.service_config, functions=functions, snapshots=codec)
    # Before any execution runs here: one suspended across an upgrade resumes from its snapshots.
    upgrade = upgrade_snapshots(service.store, codec, service.clock())
    if upgrade.note:
        notify(f"Note: {upgrade.note}")
    return service, blobs


@dataclass
class Server:
    """The parts of one server process; ``close`` stops the runtime and closes the store.

    Its app starts and stops the runtime with the HTTP server (ASGI lifespan); without an
    app, ``start`` does.
    """

    config: ServerConfig
    registry: Registry
    service: DurableService
    runtime: Runtime | None
    metrics: CollectorRegistry = field(init=False)
    _metrics_listener: MetricsListener | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.metrics = metrics_registry(self.service, self.runtime.pool.load if self.runtime is not None else None)

    def app(self, notify: Notify) -> PerdureApp:
        """The ASGI app over this server, open in ``dev`` mode, else checking the database's API keys."""
        keys = None if self.config.dev else server_keys(self, notify)
        runtime = self.runtime
        lifespan = Lifespan(runtime.start, runtime.stop, runtime.poke, runtime.start_execution) if runtime is not None else None
        app = PerdureApp(
            self.service, self.registry, lifespan, keys, request_seconds=self.config.request_timeout, metrics=self.metrics,
            links=self.config.links(),
        )  # fmt: skip
        if runtime is not None:
            # A RequestResponse invoke waiting in the app learns at once that its execution ended.
            runtime.add_listener(app.waiter.invocation_finished)
        return app

    def start(self) -> None:
        """Starts the runtime, for a process that serves no app (``perdure worker``); returns at once."""
        if self.runtime is not None:
            self.runtime.start()

    def listen_for_metrics(self) -> int | None:
        """Serves ``/metrics`` on ``config.metrics_port``, if set; returns the port (0 picks a free one)."""
        if self.config.metrics_port is None:
            return None
        self._metrics_listener = MetricsListener(self.metrics, self.config.metrics_host, self.config.metrics_port)
        return self._metrics_listener.port

    def close(self) -> None:
        if self._metrics_listener is not None:
            self._metrics_listener.close()
        if self.runtime is not None:
            self.runtime.stop()
        self.service.close()
        tracing.flush()


def open_server(config: ServerConfig, registry: Registry, notify: Notify) -> Server:
    """Opens the service, publishes the registry's code as versions and, with ``config.workers``,
    opens the runtime that runs them."""
    # The functions given here, not those a registry of every function finds in the database.
    given = list(registry)
    service, blobs = open_service(config, given, notify)
    try:
        # The destinations the code sets (its published specs do not carry them), read by every
        # process that ends one of its executions.
        destinations.record(service, registry)
        # The code served says how many of its invocations may run at once, on every server (a
        # worker given no code declares nothing: its registry holds nothing until published).
        limits.declare(service, {spec.name: spec.limits for spec in registry})
        registry = registry.published(CodeVersions(service, config.data_dir / "code", _not_code(config)))
        # Their schedules as this code declares them, for every server on the database to fire.
        schedules = Schedules(service)
        for spec in given:
            schedules.register(spec.name, spec.schedules)
    except BaseException:
        service.close()
        raise
    runtime = None
    if config.workers:
        if any(is_node_runtime(spec.runtime) for spec in given):
            # Checked once here, so that a missing or old Node stops the server with how to get one,
            # rather than fail each invocation. (A worker that finds Node functions in the database
            # later fails their invocations with the same message.)
            try:
                find_node(config.node)
            except BaseException:
                service.close()
                raise
        settings = WorkerSettings(
            config.db_url, blobs, service.config, data_dir=config.data_dir, json_log=config.json_log,
            public_url=config.public_url, node=config.node,
        )
        runtime = Runtime(service, registry, settings, config.workers, config.concurrency)
        for spec in registry:
            parked = service.resume_parked(spec.name)
            if parked:
                notify(f"Note: {len(parked)} execution(s) of {spec.name} paused for a code change run again on the code served now.")
    return Server(config, registry, service, runtime)


def _not_code(config: ServerConfig) -> list[Path]:
    """What the server keeps in its data folder, which may be a code folder too: never packed as code."""
    data = config.data_dir
    kept = [data / "blobs", data / "code", data / "secret"]
    if config.db_url.startswith("sqlite:///"):
        database = Path(config.db_url.removeprefix("sqlite:///"))
        kept += [database, *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal", "-writer"))]
    return kept


def server_keys(server: Server, notify: Notify) -> KeyRing:
    """The keys `perdure serve` checks requests against; refuses to serve when there are none."""
    config = server.config
    keys = KeyRing(server.service.store, derive_api_secret(config.key()))
    usable, foreign = keys.split_verifiable()
    if not usable and not foreign:
        raise PerdureError(
            f"No API keys exist in the database {display_url(config.db_url)}, so every request would be refused. "
            "Create one with `perdure keys create --name NAME` and the same --db (it prints its credentials "
            "once), or, to run open on this machine while developing, serve with --dev."
        )
    for key in foreign:
        notify(
            f"Warning: key {key.access_key_id} ({key.name}) was made under another server secret, so its "
            "SigV4 signatures cannot be verified here (its bearer token works). Give this server the "
            "PERDURE_SECRET (or data folder secret file) that `perdure keys create` used."
        )
    notify(
        f"Authentication on: requests need a SigV4 signature or bearer token of one of {len(usable + foreign)} "
        "API keys (`perdure keys list`)."
    )
    return keys


def open_key_ring(db_url: str) -> KeyRing:
    """The API keys of a database, with the secret of its data folder; close its ``store`` after."""
    return KeyRing(open_store(db_url), api_secret(data_dir_for(db_url)))


def open_database_service(db_url: str) -> DurableService:
    """A service directly on a database, for one command that changes it without a server."""
    return DurableService(open_store(db_url))

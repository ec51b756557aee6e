"""The periodic purge: a server deletes expired executions, and their blobs, once an hour."""

from __future__ import annotations

import logging
import threading

from perdure.service.executions import DurableService

logger = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 3600.0
# The first purge waits a little: a server that just started has executions to resume first.
FIRST_PURGE_DELAY_SECONDS = 60.0


class Purger:
    """Runs ``service.purge_expired`` every ``interval`` seconds in a background thread."""

    def __init__(
        self,
        service: DurableService,
        interval: float = PURGE_INTERVAL_SECONDS,
        first_delay: float = FIRST_PURGE_DELAY_SECONDS,
    ) -> None:
        self.service = service
        self.interval = interval
        self.first_delay = first_delay
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="perdure-purger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _loop(self) -> None:
        delay = self.first_delay
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                report = self.service.purge_expired()
            except Exception:
                # Several processes may purge one database at once; a failed pass is retried
                # at the next interval, and what it did not delete is still there to delete.
                logger.exception("Purging expired executions failed; the next purge tries again.")
                continue
            if report.executions:
                logger.info(
                    "Purged %d expired executions and %d blobs.", len(report.executions), len(report.blobs)
                )

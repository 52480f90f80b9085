"""Work the sandbox does behind the requests, every so often, in a thread of its own: trimming
the history, indexing its values, writing the functions' log lines. A pass that fails (a full
disk, a busy file) is logged and the next one tries again: none of them holds work that could
be lost, only what the next pass finds still to do."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, period_s: float, work: Callable[[], object],
                 what: str) -> None:
        """`work` runs every `period_s` in the thread `name`; `what` says it in a log line."""
        self.period_s = period_s
        self.work = work
        self.what = what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.work()
            except Exception:  # the next pass tries again
                log.exception("%s failed", self.what)

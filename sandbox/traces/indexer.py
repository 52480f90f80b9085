"""Indexing the values spans are found by (an order ID, a message ID), behind the work.

The hops write their history rows alone; every `PERIOD_S` this thread indexes the values of the
rows written since (`store.index_values`), a batch a transaction. Writing them with each row
added 0.6 ms to an order's path (bench/trace_cost.py); a batch of a quarter second's rows is
one commit, off the path. A search meanwhile reads the rows not indexed yet by their ids, so
nothing written is missed; a sandbox stopped before its last batch indexes it at its next
start.
"""

from __future__ import annotations

import logging
import threading

from sandbox.core.state import State
from sandbox.traces import store

log = logging.getLogger(__name__)

PERIOD_S = 0.25


def catch_up(state: State) -> int:
    """Index every row not indexed yet; how many rows it read."""
    done = 0
    while True:
        with state.reading() as db:
            behind = store.values_cursor(db) < store.cursor(db)
        if not behind:
            return done
        with state.transaction() as db:
            done += store.index_values(db)


class Indexer:
    def __init__(self, state: State) -> None:
        self.state = state
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trace-values", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(PERIOD_S):
            try:
                catch_up(self.state)
            except Exception:  # a full disk or a busy file: the next pass tries again
                log.exception("indexing the traces' values failed")

"""Indexing the values spans are found by (an order ID, a message ID), behind the work.

The hops write their history rows alone; every `PERIOD_S` this thread indexes the values of the
rows written since (`store.index_values`), a batch a transaction. Writing them with each row
added 0.6 ms to an order's path (bench/trace_cost.py); a batch of a quarter second's rows is
one commit, off the path. A search meanwhile reads the rows not indexed yet by their ids, so
nothing written is missed; a sandbox stopped before its last batch indexes it at its next
start.
"""

from __future__ import annotations

from sandbox.core.periodic import Periodic
from sandbox.core.state import State
from sandbox.traces import store

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


def indexer(state: State) -> Periodic:
    """The thread that keeps the values indexed, a batch every `PERIOD_S`."""
    return Periodic("trace-values", PERIOD_S, lambda: catch_up(state),
                    "indexing the traces' values")

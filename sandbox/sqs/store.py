"""Queue messages in the state database: the statements of receiving, deleting and changing
visibility, each one transaction, so a message is never both received and lost, nor handed to
two receivers at once, whichever moment the sandbox is killed at.

A message's `visible` time is the one clock of its life: its delay after sending, then the
visibility timeout after each receive. A sandbox killed with messages received but not deleted
finds them again when their timeout ends, with their receive counts, as on AWS.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

from sandbox.core.history import MessageQueued, MessageRedriven, Record
from sandbox.core.state import (
    MESSAGE_COLUMNS,
    Message,
    State,
    message_of,
    message_row,
    write_history,
)
from sandbox.sqs.messages import MessageError

DEDUPLICATION_WINDOW_S = 300.0


@dataclass(frozen=True)
class Redrive:
    dead_letter_arn: str
    max_receive_count: int


@dataclass(frozen=True)
class Counts:
    visible: int
    in_flight: int
    delayed: int


def _expired(handle: str) -> MessageError:
    return MessageError("InvalidParameterValue",
                        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: The "
                        "receipt handle has expired.")


class QueueStore:
    def __init__(self, state: State) -> None:
        self.state = state

    def receive(self, arn: str, limit: int, visibility_s: float, now: float, token: str,
                retention_s: float, fifo: bool, redrive: Redrive | None
                ) -> tuple[list[Message], list[Message]]:
        """Up to `limit` messages now visible, oldest first, made invisible for `visibility_s`
        under the receipt `token`; and those moved to the dead-letter queue instead because
        their receive count reached the redrive policy's maximum."""
        received: list[Message] = []
        redriven: list[Message] = []
        query = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE queue = ? AND visible <= ?"
        if fifo:  # a group with a message in flight waits for it
            query += (" AND (group_id IS NULL OR group_id NOT IN (SELECT group_id FROM messages"
                      " WHERE queue = ? AND visible > ? AND receives > 0))")
        query += " ORDER BY sent, sequence, rowid LIMIT ?"
        with self.state.transaction() as db:
            db.execute("DELETE FROM messages WHERE queue = ? AND sent < ?",
                       (arn, now - retention_s))
            args = (arn, now, arn, now) if fifo else (arn, now)
            for row in db.execute(query, (*args, limit + 100)).fetchall():
                message = message_of(row)
                if redrive is not None and message.receives >= redrive.max_receive_count:
                    # The receive count goes along; a FIFO message's enqueue time starts anew,
                    # a standard one's does not (SQS developer guide, DLQ retention).
                    system = {**message.system, "DeadLetterQueueSourceArn": arn}
                    db.execute("UPDATE messages SET queue = ?, visible = ?, receipt = NULL, "
                               "system = ?, sent = ? WHERE id = ?",
                               (redrive.dead_letter_arn, now, json.dumps(system),
                                now if fifo else message.sent, message.id))
                    redriven.append(message)
                    write_history(db, [MessageRedriven(arn, redrive.dead_letter_arn, message.id,
                                                       message.receives)], now)
                    continue
                if len(received) == limit:
                    break
                db.execute("UPDATE messages SET receives = receives + 1, visible = ?, "
                           "receipt = ?, first_receive = COALESCE(first_receive, ?) "
                           "WHERE id = ?", (now + visibility_s, token, now, message.id))
                received.append(replace(
                    message, receives=message.receives + 1, visible=now + visibility_s,
                    receipt=token, first_receive=message.first_receive or now))
        return received, redriven

    def _held(self, db: object, arn: str, message_id: str) -> tuple[float, str | None] | None:
        row = db.execute(  # type: ignore[attr-defined]
            "SELECT visible, receipt FROM messages WHERE id = ? AND queue = ?",
            (message_id, arn)).fetchone()
        return None if row is None else (row[0], row[1])

    def settle(self, arn: str, received: list[Message], history: list[Record]) -> None:
        """Delete messages a poller received and write `history`, in one transaction. A message
        received again since (its timeout ran out) is left: the newer receiver settles it."""
        with self.state.transaction() as db:
            for message in received:
                held = self._held(db, arn, message.id)
                if held is not None and held[1] == message.receipt:
                    db.execute("DELETE FROM messages WHERE id = ?", (message.id,))
            write_history(db, history, time.time())

    def delete(self, arn: str, message_id: str, token: str, handle: str, fifo: bool) -> None:
        """Delete by the latest receipt. An older receipt deletes nothing: on a standard queue
        that still succeeds, on a FIFO queue it is refused as expired (AWS's behaviour)."""
        with self.state.transaction() as db:
            held = self._held(db, arn, message_id)
            if held is not None and held[1] == token:
                db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            elif fifo and held is not None:
                raise _expired(handle)

    def change_visibility(self, arn: str, message_id: str, token: str, handle: str,
                          timeout_s: float, now: float) -> None:
        with self.state.transaction() as db:
            held = self._held(db, arn, message_id)
            if held is None or held[1] != token:
                raise _expired(handle)
            if held[0] <= now:
                raise MessageError("MessageNotInflight", "The message referred to isn't in "
                                                         "flight.")
            db.execute("UPDATE messages SET visible = ? WHERE id = ?",
                       (now + timeout_s, message_id))

    def next_visible(self, arn: str, now: float) -> float | None:
        """When the next delayed or in-flight message of the queue becomes visible."""
        with self.state.transaction() as db:
            (at,) = db.execute("SELECT MIN(visible) FROM messages WHERE queue = ? AND "
                               "visible > ?", (arn, now)).fetchone()
        return at

    def purge(self, arn: str) -> None:
        with self.state.transaction() as db:
            db.execute("DELETE FROM messages WHERE queue = ?", (arn,))

    def counts(self, arn: str, now: float) -> Counts:
        with self.state.transaction() as db:
            visible, in_flight, delayed = db.execute(
                "SELECT SUM(visible <= ?), SUM(visible > ? AND receives > 0), "
                "SUM(visible > ? AND receives = 0) FROM messages WHERE queue = ?",
                (now, now, now, arn)).fetchone()
        return Counts(visible or 0, in_flight or 0, delayed or 0)

    def send(self, messages: list[Message], now: float) -> list[Message]:
        """Store what SendMessage(Batch) accepted, in one transaction. A FIFO message whose
        deduplication id was sent in the last 5 minutes is accepted but not stored again: the
        answer names the message first sent, as SQS's does."""
        sent = []
        with self.state.transaction() as db:
            db.execute("DELETE FROM deduplication WHERE sent < ?",
                       (now - DEDUPLICATION_WINDOW_S,))
            for message in messages:
                if message.dedup_id is not None:
                    row = db.execute("SELECT message_id, sequence FROM deduplication "
                                     "WHERE queue = ? AND dedup_id = ?",
                                     (message.queue, message.dedup_id)).fetchone()
                    if row is not None:
                        sent.append(replace(message, id=row[0], sequence=row[1]))
                        continue
                    db.execute("INSERT INTO deduplication (queue, dedup_id, message_id, "
                               "sequence, sent) VALUES (?, ?, ?, ?, ?)",
                               (message.queue, message.dedup_id, message.id, message.sequence,
                                message.sent))
                db.execute(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES "
                           f"({', '.join('?' * 13)})", message_row(message))
                write_history(db, [queued(message, "api")], now)
                sent.append(message)
        return sent


def queued(message: Message, via: str) -> MessageQueued:
    return MessageQueued(message.queue, message.id, message.body[:4096], via)


def sequence_number() -> int:
    """A FIFO message's SequenceNumber: growing, 20 digits as SQS writes them."""
    return time.time_ns()

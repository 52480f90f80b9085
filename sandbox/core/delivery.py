"""One mechanism for every at-least-once hop: a rule or schedule delivering to its target, Lambda
running an asynchronous invocation, and (next) event source mappings.

Each hop is a durable job in `State`. A try either succeeds, and its follow-up (a message, a new
job, history) is committed in the same transaction that ends the job; or it fails, and the hop's
`RetryPolicy` says whether to try again later or give up. Giving up is also one transaction: the
dead-letter message or destination record, its history, and the end of the job. So nothing is
ever both finished and lost, nor its follow-up written twice, whichever moment the sandbox is
killed at.

The hops differ only in their parameters, which is why they share this code:

| hop | tries | maximum age | backoff | when it gives up |
| --- | --- | --- | --- | --- |
| EventBridge target | 1 + 185 | 24 h | 1 s doubling to 5 min, jitter 0.5-1 | target's DLQ |
| Lambda asynchronous | 1 + 2 | 6 h | 1 min, then 2 min, jitter 0.9-1.1 | OnFailure / DLQ |
| EventBridge Scheduler | 1 + 185 | 24 h | as EventBridge | schedule's DLQ |

(Maximum attempts and age come from the template where it sets them.) A failure that is not
retryable (a target that does not exist, a payload over the limit) gives up at once.

A delivery's try that hands on exactly one job due now (a rule or schedule delivering to a
function: Lambda accepting the asynchronous invocation) tries that job at once, in the same
thread, and both commit together: the delivery's job stays in the table until then, so a sandbox
killed in between delivers again (at least once, as before), and a follow-up that fails is
stored as its hop's retry would store it. Committing the delivery first cost each hop a commit
and a read under the state's lock; in order_created's fan-out to three functions the three
commits queued behind each other, and the third target got its event 3.5 ms after the put,
against 1.2 ms for a hop to one target; tried at once, 1.9 and 0.6 ms (p50, one order at a
time), and an order of the app commits 8 times instead of 12, which took 1-3 ms of the sandbox's
CPU an order off under load (end to end did not move: the fan-out's functions now share the two
cores for longer; README, performance). The follow-up's own hand-on is committed as it is, so a
chain of destinations is never held in one transaction.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, replace
from typing import Protocol

from sandbox.core.history import Record
from sandbox.core.state import Job, State, Writes
from sandbox.settings import Settings
from sandbox.traces import context as traces

# The condition EventBridge names in a dead letter's EXHAUSTED_RETRY_CONDITION.
RETRIES_EXHAUSTED = "MaximumRetryAttempts"
AGE_EXCEEDED = "MaximumEventAgeInSeconds"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    max_age_s: float
    first_delay_s: float
    max_delay_s: float
    jitter: tuple[float, float]  # the delay is multiplied by a uniform draw in this range

    def delay(self, attempt: int, scale: float, rng: random.Random) -> float:
        """Seconds before try `attempt + 2`, after `attempt + 1` tries failed."""
        base = min(self.first_delay_s * 2**attempt, self.max_delay_s)
        return base * rng.uniform(*self.jitter) * scale

    def limited(self, max_retries: object = None, max_age_s: object = None) -> RetryPolicy:
        """This policy with a template's MaximumRetryAttempts / MaximumEventAgeInSeconds."""
        return replace(
            self,
            max_retries=self.max_retries if max_retries is None else int(str(max_retries)),
            max_age_s=self.max_age_s if max_age_s is None else float(str(max_age_s)),
        )


EVENTBRIDGE = RetryPolicy(185, 24 * 3600, 1.0, 300.0, (0.5, 1.0))
LAMBDA_ASYNC = RetryPolicy(2, 6 * 3600, 60.0, 120.0, (0.9, 1.1))


class Failure(Exception):
    """A try that did not go through: `code` and `message` as AWS would report them."""

    def __init__(self, code: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class Hop(Protocol):
    """What a kind of job does on one try, and after its last."""

    SPAN: str  # the history KIND whose record each try is, as a span of the job's trace
    # Whether a successful try's one follow-up due now is tried with it (module docstring): a
    # delivery's, whose own work ends when its target accepts. An invocation's destination is
    # committed first, so the invocation's record never waits on another function's run.
    TRIES_FOLLOW_UP: bool

    def policy(self, job: Job) -> RetryPolicy: ...

    def attempt(self, job: Job) -> Writes:
        """One try; what it leaves behind on success. Raises `Failure`."""
        ...

    def retrying(self, job: Job, failure: Failure) -> list[Record]:
        """History of a failed try that will be tried again."""
        ...

    def give_up(self, job: Job, failure: Failure, exhausted: str | None) -> Writes:
        """The last failed try: its dead letter and history. `exhausted` is RETRIES_EXHAUSTED
        or AGE_EXCEEDED when retries ran out, None when the failure was not retryable."""
        ...


class Deliveries:
    """Runs any `Hop`'s job under its retry policy; `JobRunner` calls `run` when a job is due."""

    def __init__(self, state: State, settings: Settings, hops: dict[str, Hop]) -> None:
        self.state = state
        self.settings = settings
        self.hops = hops  # by job kind
        # Ids of follow-ups tried before they are stored (below any id SQLite gives a job).
        self._unstored = itertools.count(-1, -1)

    def run(self, job: Job) -> None:
        """One try of the job's hop, with the one follow-up it hands on, if any."""
        hop = self.hops[job.kind]
        retry_at, writes = self._try(hop, job)
        if retry_at is None:
            self.state.commit(self._hand_on(writes) if hop.TRIES_FOLLOW_UP else writes,
                              done=job.id)
        else:
            self.state.retry(job, retry_at, writes.history)

    def _try(self, hop: Hop, job: Job) -> tuple[float | None, Writes]:
        """One try, as a span under the trace the job carries (`sandbox.traces.context`): None
        and what it leaves when it succeeded or gave up; when to try again and its history when
        it failed and will be tried again."""
        with traces.resume(job.payload.get("trace")), traces.span(hop.SPAN):
            try:
                return None, hop.attempt(job)
            except Failure as failure:
                return self._after(hop, job, failure)

    def _hand_on(self, writes: Writes) -> Writes:
        """`writes` with its only job, when that job is due now, tried already: that try's
        outcome in place of the job (module docstring)."""
        if len(writes.jobs) != 1 or writes.jobs[0].due or writes.jobs[0].kind not in self.hops:
            return writes
        new = writes.jobs[0]
        now = time.time()
        for record in writes.history:  # they ended now, not when the follow-up commits
            object.__setattr__(record, "stamp", replace(record.stamp, end=now))
        payload = {**new.payload, "trace": new.trace} if new.trace else new.payload
        job = Job(next(self._unstored), new.kind, new.target, payload, new.attempt, now,
                  new.created or now)
        retry_at, outcome = self._try(self.hops[new.kind], job)
        if retry_at is not None:
            outcome.jobs.append(replace(new, attempt=new.attempt + 1, due=retry_at,
                                        created=job.created))
        return Writes(outcome.jobs, writes.messages + outcome.messages,
                      writes.history + outcome.history, writes.checkpoints + outcome.checkpoints)

    def _after(self, hop: Hop, job: Job, failure: Failure) -> tuple[float | None, Writes]:
        """A failed try's outcome under the hop's policy: when to try again and the history of
        the failed try, or None and what giving up leaves."""
        policy = hop.policy(job)
        now = time.time()
        delay = policy.delay(job.attempt, self.settings.retry_scale, self.settings.rng)
        too_old = now + delay - job.created > policy.max_age_s
        if failure.retryable and job.attempt < policy.max_retries and not too_old:
            return now + delay, Writes(history=hop.retrying(job, failure))
        exhausted = None
        if failure.retryable:
            exhausted = AGE_EXCEEDED if too_old else RETRIES_EXHAUSTED
        return None, hop.give_up(job, failure, exhausted)

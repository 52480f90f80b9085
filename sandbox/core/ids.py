"""Random identifiers: request ids, event and message ids, trace and span ids.

`uuid.uuid4()` and `secrets` read the operating system's random source on every call: a system
call that lets go of the GIL, about 21 of them an order. Under load, each one was a thread
switch: 0.15 ms on average in a job thread (cProfile, 8 users on 2 cores). These ids must be
unique, not secret, so they come from one Mersenne Twister seeded from the operating system at
start: 128 bits a call, with no system call and the GIL held (one C call, so thread-safe).
"""

from __future__ import annotations

import random
import uuid

_random = random.Random()  # seeded from os.urandom


def uuid4() -> str:
    """A version 4 UUID, as AWS's request and message ids are."""
    return str(uuid.UUID(int=_random.getrandbits(128), version=4))


def hex_id(bits: int) -> str:
    """`bits` random bits as lower-case hex: a span id is 64, an X-Ray trace id's tail 96."""
    return f"{_random.getrandbits(bits):0{bits // 4}x}"

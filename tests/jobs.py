"""Jobs for the worker tests: module-level, so that spawned worker processes can import them."""

import os
import signal


def double_or_die(x: int) -> int:
    """Twice ``x``; a negative ``x`` kills the worker process running it, as ``kill -9`` would."""
    if x < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return 2 * x


def double_or_raise(x: int) -> int:
    if x < 0:
        raise ValueError(f"no negative numbers, got {x}")
    return 2 * x


def slow_double(x: int) -> int:
    """Twice ``x`` after two seconds: long enough that each of two workers takes one job."""
    import time

    time.sleep(2)
    return 2 * x

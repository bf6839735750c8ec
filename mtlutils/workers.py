"""Where independent jobs (the runs of a grid) execute: in this process, in worker processes on this machine's
cores, or on a Dask cluster, all through one ``concurrent.futures``-style executor.

- ``MTLUTILS_SCHEDULER=tcp://HOST:8786``: the jobs go to that Dask cluster (``pip install "mtlutils[dask]"``),
  through ``distributed.Client(address).get_executor()``. Its workers need mtlutils installed, not the cache.
- otherwise ``MTLUTILS_WORKERS`` worker processes on this machine (default: one per core, or one per GPU where
  runs train on the GPU, each worker on its own GPU), started once and kept for the next grid, so a dataset is built
  once per worker; ``MTLUTILS_WORKERS=1`` runs the jobs here, one by one.

Results come back to the caller. A job that raises does not stop the others: its error comes back as a ``Failure``.
A local worker process that dies (killed, out of memory) takes the jobs in progress with it; they are retried once,
each alone in fresh workers, with a warning, and a job lost again is reported as a failure. Dask retries lost jobs itself.
"""

from __future__ import annotations

import ast
import atexit
import functools
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import traceback
import warnings
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch

from . import runtime


@dataclass
class Failure:
    """A job that raised (``message``: the error and its traceback's last line) or whose worker died twice."""

    message: str


class WorkerLostWarning(RuntimeWarning):
    """A worker process died while it ran jobs; they are run again."""


def worker_count() -> int:
    """``MTLUTILS_WORKERS`` (a positive integer). By default one per GPU where runs train on the GPU
    (``device="auto"``): processes sharing one GPU take turns on it, so more add nothing (16 runs of chapter 6's
    LeNet on an H200: 57 runs a minute in one process, 54 with 4 or 16 workers); otherwise one per core."""
    text = os.environ.get("MTLUTILS_WORKERS", "").strip()
    if not text:
        if runtime.device_name("auto").startswith("cuda"):
            return max(1, torch.cuda.device_count())
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"MTLUTILS_WORKERS must be a positive integer (1 runs everything in this process), not {text!r}.")
    return int(text)


_ADDRESS = re.compile(r"((tcp|tls|ucx|ws|wss)://)?(\[[0-9a-fA-F:]+\]|[^\s:/\[\]]+):\d{1,5}")


def scheduler_address() -> str | None:
    """``MTLUTILS_SCHEDULER``, the address of a Dask scheduler (``[tcp://]HOST:PORT``), or None."""
    address = os.environ.get("MTLUTILS_SCHEDULER", "").strip() or None
    if address is not None and not _ADDRESS.fullmatch(address):
        raise ValueError(f"MTLUTILS_SCHEDULER={address!r} is not the address of a Dask scheduler: give it as "
                         "tcp://HOST:PORT (for example tcp://127.0.0.1:8786), or unset it to train on this "
                         "machine's cores.")
    return address


def where() -> str:
    """Where jobs run now, in words (for progress bars and reports); a malformed ``MTLUTILS_SCHEDULER`` or
    ``MTLUTILS_WORKERS`` is refused here, naming it."""
    address = scheduler_address()
    if address:
        return f"on the Dask cluster at {address}"
    count = worker_count()
    return "in this process" if count == 1 else f"in {count} worker processes"


def _guarded(function: Callable, item):
    """Run ``function(item)`` in a worker; an exception comes back as a Failure (it may not survive pickling)."""
    try:
        return function(item)
    except Exception as error:  # noqa: BLE001 - every error of a job is reported, the grid goes on
        last = traceback.extract_tb(error.__traceback__)[-1]
        return Failure(f"{type(error).__name__}: {error} ({os.path.basename(last.filename)}, line {last.lineno})")


def _start_worker(parent: int, started) -> None:
    """Worker start: the numerical libraries on one thread (``runtime``), the worker's own GPU where there are
    several (the workers in the order they start, ``started`` counting them, take the GPUs in turn), Ctrl-C (which
    a terminal or Jupyter sends to the whole process group) left to the parent, which stops the workers itself, and
    a watch on the parent: a worker whose parent is gone (a kernel stopped with SIGTERM or killed) stops too,
    mid-run."""
    runtime.single_threaded_process()
    with started.get_lock():
        index, started.value = started.value, started.value + 1
    if torch.cuda.device_count() > 1:
        torch.cuda.set_device(index % torch.cuda.device_count())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int, every: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)  # the results of this worker have nowhere to go


def _check_main_guard() -> None:
    """Refuse to start worker processes from a script's top level outside ``if __name__ == "__main__":``: each
    worker imports the script again to start (Python's spawn), and would run that code too."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or not os.path.isfile(path):  # an interactive session, a kernel, python -c
        return
    frame = sys._getframe()
    while frame is not None and not (frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return
    with open(path, encoding="utf-8") as source:
        guarded = _guarded_lines(ast.parse(source.read()))
    if frame.f_lineno not in guarded:
        raise RuntimeError(
            f"{path}, line {frame.f_lineno}, starts worker processes from the script's top level. Each worker "
            "imports the script again to start and would run that line too: put the script's work under "
            'if __name__ == "__main__":, or set MTLUTILS_WORKERS=1 to train in this process.')


def _guarded_lines(tree: ast.Module) -> set[int]:
    """The lines of a module inside ``if __name__ == "__main__":``."""
    lines = set()
    for node in tree.body:
        test = getattr(node, "test", None)
        if (isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
                and test.left.id == "__name__" and any(getattr(c, "value", None) == "__main__"
                                                       for c in test.comparators)):
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_clients: dict = {}


def _local_pool(size: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size != size or _pool._broken:  # broken: a worker died while the pool was idle
        _stop_local_pool()
        # spawn: a fresh interpreter, safe under Jupyter kernels and with torch's threads (fork is not)
        context = multiprocessing.get_context("spawn")
        _pool = ProcessPoolExecutor(size, mp_context=context, initializer=_start_worker,
                                    initargs=(os.getpid(), context.Value("i", 0)))
        _pool_size = size
    return _pool


def _dask_executor(address: str) -> Executor:
    if address not in _clients:
        try:
            from distributed import Client
        except ImportError:
            raise ImportError(f"MTLUTILS_SCHEDULER is set ({address}) but Dask's distributed is not installed: "
                              'pip install "mtlutils[dask]", or unset MTLUTILS_SCHEDULER.') from None
        try:
            _clients[address] = Client(address)  # waits distributed.comm.timeouts.connect (30 s)
        except OSError as error:
            raise ConnectionError(f"Could not reach the Dask scheduler at {address} (MTLUTILS_SCHEDULER): {error}. "
                                  "Start it with `dask scheduler` and its workers with `dask worker ADDRESS`.") from None
    return _clients[address].get_executor()


def _stop_local_pool() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


def shutdown() -> None:
    """Stop the local worker processes and close the Dask clients (they start again when next needed)."""
    _stop_local_pool()
    while _clients:
        _clients.popitem()[1].close()


atexit.register(shutdown)


def execute(function: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
    """``(index, function(items[index]) or Failure)`` for every item, in the order they finish.

    ``function`` must be importable by name (a module-level function) for the workers to find it.
    """
    call = functools.partial(_guarded, function)
    address = scheduler_address()
    if address:
        executor = _dask_executor(address)
        yield from _windowed(call, items, lambda: executor, window=len(items), retry_lost=False)
        return
    count = worker_count()
    if count == 1 or len(items) == 1 and _pool is None:  # one job: starting workers would cost more than it saves
        for index, item in enumerate(items):
            yield index, call(item)
        return
    if _pool is None:
        _check_main_guard()
    yield from _windowed(call, items, lambda: _local_pool(count), window=count, retry_lost=True)


def _windowed(call: Callable, items: Sequence, executor: Callable[[], Executor], window: int, retry_lost: bool
              ) -> Iterator[tuple[int, object]]:
    """Keep at most ``window`` jobs in flight, so that the jobs a dead worker took with it are known. A job lost
    once runs again alone, so that if it is lost a second time the fault is surely its own."""
    queue, in_flight, suspects = deque(range(len(items))), {}, set()
    try:
        while queue or in_flight:
            pool = executor()
            while queue and len(in_flight) < window and not suspects & set(in_flight.values()):
                if queue[0] in suspects and in_flight:
                    break
                index = queue.popleft()
                in_flight[pool.submit(call, items[index])] = index
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            lost = []
            for future in done:
                index = in_flight.pop(future)
                try:
                    yield index, future.result()
                except BrokenProcessPool:
                    lost.append(index)
                except Exception as error:  # noqa: BLE001 - e.g. Dask's KilledWorker: reported, the grid goes on
                    yield index, Failure(f"{type(error).__name__}: {error}")
            if lost and retry_lost:
                lost += [in_flight.pop(future) for future in list(in_flight)]  # the pool is broken: all are lost
                _stop_local_pool()
                for index in sorted(suspects & set(lost)):
                    yield index, Failure("Its worker process died twice while running it (killed, or out of memory).")
                again = sorted(set(lost) - suspects)
                if again:
                    warnings.warn(f"A worker process died while {len(lost)} job(s) were in progress; they are run "
                                  "again in new worker processes, one at a time.", WorkerLostWarning, stacklevel=2)
                suspects.update(again)
                queue.extendleft(reversed(again))
    finally:
        for future in in_flight:
            future.cancel()

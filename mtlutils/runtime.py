"""Where and how a run computes: its device and its number of torch threads, decided here alone.

- ``device="auto"`` means ``$MTLUTILS_DEVICE`` when it is set, else the GPU when torch sees one, else the CPU,
  whether a grid resolves it (``config.resolve``, where it becomes part of the cache key) or ``fit`` does.
- A run on the CPU computes with one torch thread (``one_thread``) wherever it runs, so its result depends on its
  configuration alone, not on the machine's core count or on how a grid was spread over workers; a worker process
  also keeps the numerical libraries below torch on one thread (``single_threaded_process``).
- A run on a GPU computes with torch's deterministic algorithms (``deterministic``), cuDNN's among them and its
  autotuner off, and with the cuBLAS workspace that makes its products reproducible (``CUBLAS_WORKSPACE_CONFIG``,
  set when mtlutils is imported, since cuBLAS reads it once, at its first product), so that serial, worker and Dask
  runs of one configuration agree there as on the CPU.
- Where the C library is glibc (Linux), a process that trains keeps the memory it frees for its next allocations
  (``reuse_freed_memory``): by default glibc hands every block over 128 KiB back to the system and maps it anew at
  the next step: touching its fresh pages made the forward and backward pass of five stacked LeNets on one thread
  take 19.4 to 20.5 ms, against 13.9 to 14.1 ms with the memory kept.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os

import torch

DEVICE_VARIABLE = "MTLUTILS_DEVICE"
RUN_THREADS = 1
_LIBRARY_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's reproducible products (see above)


def device_name(device: str | torch.device = "auto") -> str:
    """The device a run is to train on, as its cache key records it: ``"auto"`` as the module says. Only its form is
    checked here: a grid's runs may train on other machines than the one that asks for them (Dask workers)."""
    if str(device) != "auto":
        return str(_parsed(device))
    named = os.environ.get(DEVICE_VARIABLE, "").strip()
    if not named:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return str(_parsed(named))
    except ValueError as error:
        raise _from_variable(named, error) from None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The device a run trains on here (``device_name``), checked to exist on this machine, and made
    deterministic (``deterministic``)."""
    name = device_name(device)
    try:
        return deterministic(_existing(name))
    except ValueError as error:
        named = os.environ.get(DEVICE_VARIABLE, "").strip()
        if named and str(device) in ("auto", str(_parsed(named))):
            raise _from_variable(named, error) from None
        raise


def deterministic(device: torch.device) -> torch.device:
    """``device``, with torch's deterministic algorithms on where it is a GPU (the CPU's already are): cuDNN's
    deterministic convolutions, its autotuner off, and a warning for an operation that has no deterministic form."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def _from_variable(named: str, error: ValueError) -> ValueError:
    return ValueError(f"{DEVICE_VARIABLE}={named!r} cannot be used: {error} Set {DEVICE_VARIABLE} to a device of "
                      "this machine, or unset it to train on the GPU where there is one.")


def _parsed(device: str | torch.device) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', not {device!r}.") from None


def _existing(device: str | torch.device) -> torch.device:
    chosen = _parsed(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(chosen)!r} was asked for, but torch sees no GPU on this machine; "
                         "use device='auto' (the GPU where there is one) or 'cpu'.")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {str(chosen)!r} was asked for, but this machine has {torch.cuda.device_count()} "
                         "GPU(s).")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was asked for, but torch sees no Apple GPU here; use 'auto' or 'cpu'.")
    return chosen


@contextlib.contextmanager
def one_thread():
    """Torch on ``RUN_THREADS`` thread(s) inside the block: what every run trains with (see the module); freed
    memory kept for reuse from then on (``reuse_freed_memory``)."""
    reuse_freed_memory()
    previous = torch.get_num_threads()
    torch.set_num_threads(RUN_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def single_threaded_process() -> None:
    """At the start of a worker process: the numerical libraries below torch on ``RUN_THREADS`` thread(s)."""
    for name in _LIBRARY_THREADS:
        os.environ[name] = str(RUN_THREADS)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
KEPT_BLOCK_BYTES, KEPT_FREE_BYTES = 64 << 20, 512 << 20


@functools.cache
def reuse_freed_memory() -> bool:
    """Have glibc's allocator serve blocks up to ``KEPT_BLOCK_BYTES`` from the process's heap, and give free heap
    memory back to the system only beyond ``KEPT_FREE_BYTES``, so that a training step's large tensors reuse the
    pages of the previous step's. Once per process; False (nothing done) where the C library is not glibc."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, KEPT_BLOCK_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES))

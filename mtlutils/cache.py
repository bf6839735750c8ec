"""The on-disk cache of finished runs: one verified JSON file per configuration.

A file holds a header line, ``{"format", "key", "config", "sha256"}``, then the run as JSON (arrays as their raw
bytes in base64, so every value comes back bit for bit). Loading parses JSON only, so a cache folder shared on a
cluster cannot run code, and a file is used only when its format, key and configuration are the ones asked for
and its body has the recorded checksum. A damaged file (cut short, a byte changed, another configuration's run)
is reported with a warning naming it and the run is trained again. Files are written under a unique temporary
name and renamed into place, so two processes storing the same run at once leave one whole file.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .record import Run

FORMAT = 4  # bump when a change of the code changes what a stored run contains


class DamagedCacheWarning(UserWarning):
    """A cache file could not be used; its run is trained again."""


def canonical(config: Mapping) -> dict:
    """The configuration as it reads back from JSON, so that two spellings of one configuration compare equal."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def encode(value):
    """A JSON-ready form of ``value`` (nested dicts, lists, tuples, scalars, numpy arrays and data frames)."""
    if isinstance(value, pd.DataFrame):
        return {"__frame__": [[str(name), _column(value[name])] for name in value.columns]}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"cache: cannot store an array of dtype {value.dtype}.")
        raw = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
        return {"__array__": [value.dtype.str, list(value.shape), raw]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value) or set(value) & _TAGS:
            raise TypeError(f"cache: cannot store a dict with keys {list(value)[:5]}.")
        return {k: encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"cache: cannot store a value of type {type(value).__name__}.")


def _column(series: pd.Series):
    if series.dtype.kind in "biuf":
        return encode(series.to_numpy())
    return [encode(v) for v in series.tolist()]


def decode(value):
    """The inverse of ``encode``."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__frame__" in value:
        return pd.DataFrame({name: decode(column) for name, column in value["__frame__"]})
    if "__array__" in value:
        dtype, shape, raw = value["__array__"]
        return np.frombuffer(base64.b64decode(raw), dtype=np.dtype(dtype)).reshape(shape).copy()
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    return {k: decode(v) for k, v in value.items()}


_TAGS = {"__frame__", "__array__", "__tuple__"}


def verified(data: bytes, key: str, config: Mapping, where: str, then: str) -> Run | None:
    """The run that the contents ``data`` of a cache file hold, when their format, key, configuration and checksum
    are the ones asked for; else None, with a DamagedCacheWarning naming ``where`` the file came from, why it is
    not used, and ``then``, what happens instead."""
    header_line, _, body = data.partition(b"\n")
    try:
        header = json.loads(header_line)
        problem = (
            "it was written by another version of the cache" if header.get("format") != FORMAT
            else "it is filed under another key" if header.get("key") != key
            else "it holds the run of another configuration" if header.get("config") != canonical(config)
            else "its contents do not match their checksum (cut short or changed)"
            if hashlib.sha256(body).hexdigest() != header.get("sha256") else None
        )
        if problem is None:
            return Run(**decode(json.loads(body)))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        problem = f"it cannot be read ({type(error).__name__}: {error})"
    warnings.warn(f"The cached run {where} is not used: {problem}. {then}.", DamagedCacheWarning, stacklevel=3)
    return None


STALE_SECONDS = 3600  # a temporary file this old belongs to a write that was killed: a write takes milliseconds


def default_cache_dir() -> Path:
    """``$MTLUTILS_CACHE`` or ``~/.cache/mtlutils/runs``."""
    return Path(os.environ.get("MTLUTILS_CACHE", Path.home() / ".cache" / "mtlutils" / "runs"))


class RunCache:
    """The runs stored in ``folder``, one ``KEY.json`` file each."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def check_writable(self) -> None:
        """Before runs train: refuse a folder where their results could not be stored, naming it, and remove the
        temporary files that killed writes left behind."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".write-check.{os.getpid()}.{uuid.uuid4().hex}.tmp"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise PermissionError(f"The run cache {self.folder} cannot be written ({error.strerror or error}); "
                                  "give a writable folder with MTLUTILS_CACHE (or cache_dir=...).") from None
        now = time.time()
        for stale in self.folder.glob(".*.tmp"):
            try:
                if now - stale.stat().st_mtime > STALE_SECONDS:
                    stale.unlink()
            except FileNotFoundError:  # another process finished or removed it meanwhile
                pass

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def load(self, key: str, config: Mapping) -> Run | None:
        """The stored run of ``config`` under ``key``, or None when there is none or the file cannot be used (then
        with a DamagedCacheWarning naming the file and why). A file used has its time updated, so that a build can
        tell the runs it used (``book/build.py``)."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # no such run, or no such folder yet
            return None
        run = verified(data, key, config, str(path), "The run is trained again and the file replaced")
        if run is not None:
            try:
                os.utime(path)
            except OSError:  # a read-only copy of a cache is still used
                pass
        return run

    def store_file(self, key: str, data: bytes) -> Path:
        """Write the verified contents ``data`` of a cache file under ``key`` atomically: a unique temporary file,
        then a rename."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(key)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def store(self, key: str, config: Mapping, run: Run) -> Path:
        """Write ``run`` under ``key`` atomically: a unique temporary file, then a rename."""
        fields = {field.name: getattr(run, field.name) for field in dataclasses.fields(run)}
        body = json.dumps(encode(fields)).encode()
        header = {"format": FORMAT, "key": key, "config": canonical(config), "sha256": hashlib.sha256(body).hexdigest()}
        return self.store_file(key, json.dumps(header).encode() + b"\n" + body)

"""The book's finished runs, fetched from its site before any is trained here.

The published book carries the run files of its build in ``_runs/`` with ``index.json`` (the list of their keys;
``book/build.py``). Where ``$MTLUTILS_RUNS_URL`` names that folder (the reader editions set it to the book's site),
a grid's runs that the local cache lacks and the index lists are downloaded, checked exactly as a local cache file
is (format, key, configuration and checksum: ``cache.verified``), and stored in the local cache; a damaged file is
reported with a warning naming its URL and its run is trained here. ``MTLUTILS_RUNS_URL`` unset or empty turns
this off; a site that cannot be reached (no network) is said once, and the runs train here as without it.
"""

from __future__ import annotations

import json
import os
import urllib.request
import warnings
from concurrent.futures import ThreadPoolExecutor
from functools import cache as once
from typing import Mapping

from . import cache
from .record import Run

TIMEOUT_SECONDS = 20
AT_ONCE = 8  # downloads in flight at a time
INDEX = "index.json"  # beside the run files: the keys of the runs the folder holds


class PublishedRunsUnavailable(UserWarning):
    """The book's runs could not be reached; the runs train here."""


def runs_url() -> str | None:
    """``$MTLUTILS_RUNS_URL`` ending in ``/``, or None when it is unset or empty."""
    url = os.environ.get("MTLUTILS_RUNS_URL", "").strip()
    if url and not url.startswith(("http://", "https://", "file://")):
        raise ValueError(f"MTLUTILS_RUNS_URL={url!r} is not a URL: give the book's runs folder, for example "
                         "https://OWNER.github.io/NAME/_runs/, or set it to '' to train every run here.")
    return url.rstrip("/") + "/" if url else None


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - a URL the reader set
        return response.read()


def index(keys: list[str]) -> bytes:
    """The contents of ``INDEX`` for a folder of run files with these ``keys``, as the build writes it."""
    return json.dumps({"format": cache.FORMAT, "keys": list(keys)}).encode()


@once
def published_keys(url: str) -> frozenset[str]:
    """The keys that the index at ``url`` lists, read once per process; none, said once, when it cannot be read
    or was written by another version of the cache."""
    try:
        listed = json.loads(_get(url + INDEX))
        if listed.get("format") != cache.FORMAT:
            raise ValueError(f"its runs were written by version {listed.get('format')} of the cache, not "
                             f"{cache.FORMAT}")
        return frozenset(listed["keys"])
    except (OSError, ValueError, KeyError, AttributeError) as error:  # URLError and timeouts are OSErrors
        reason = getattr(error, "reason", error)
        warnings.warn(f"The book's runs at {url} cannot be used ({reason}); runs missing from the local cache "
                      "train here.", PublishedRunsUnavailable, stacklevel=2)
        return frozenset()


def fetch(missing: Mapping[str, Mapping], store: cache.RunCache, url: str) -> dict[str, Run]:
    """The runs of ``missing`` (key -> configuration) that the book's site at ``url`` holds and that pass the cache's
    checks, each stored in ``store`` as it arrives."""
    wanted = [key for key in missing if key in published_keys(url)]

    def download(key: str) -> tuple[str, bytes | None]:
        try:
            return key, _get(f"{url}{key}.json")
        except OSError as error:
            warnings.warn(f"The book's run {url}{key}.json could not be downloaded "
                          f"({getattr(error, 'reason', error)}); it is trained here.", PublishedRunsUnavailable,
                          stacklevel=2)
            return key, None

    found = {}
    with ThreadPoolExecutor(AT_ONCE) as pool:
        for key, data in pool.map(download, wanted):
            if data is None:
                continue
            run = cache.verified(data, key, missing[key], f"{url}{key}.json", "The run is trained here")
            if run is not None:
                store.store_file(key, data)
                found[key] = run
    return found

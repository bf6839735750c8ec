import os
import sys
from pathlib import Path

import pytest
import torch

from mtlutils import data

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))
import build  # noqa: E402

# pytest-xdist runs the tests in one process per core; the runs a test trains then share the cores with the other
# test processes instead of each test opening a pool of one worker per core.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "MTLUTILS_WORKERS" not in os.environ:
    os.environ["MTLUTILS_WORKERS"] = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test writes its run cache and figures to its own temporary folder."""
    monkeypatch.setenv("MTLUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTLUTILS_FIGURES", str(tmp_path / "figures"))
    monkeypatch.delenv("MTLUTILS_RUNS_URL", raising=False)  # nothing is fetched from a book's site unless a test asks
    monkeypatch.delenv("BOOK_REPOSITORY", raising=False)
    torch.manual_seed(0)


@pytest.fixture
def suite():
    return data.load("clusters", "smoke", n_tasks=4, n_clusters=2, angle=90)


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory):
    """One run cache for every smoke-mode execution of the chapters, shared by the test processes, so that a second
    execution reuses the runs (the cache stores each run atomically)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "smoke-cache"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def smoke_executed(smoke_cache, tmp_path_factory):
    """Executes a chapter in smoke mode once per test process; returns the executed notebook's path.

    The tests of the smoke-mode chapters and of the book built from them share the executions: they are in one
    xdist group (``@pytest.mark.xdist_group("smoke-book")``), so one process runs them all.
    """
    folder, executed = tmp_path_factory.mktemp("executed-smoke"), {}

    def execute(source: Path) -> Path:
        if source not in executed:
            executed[source] = build.execute(source, "smoke", folder, cache_dir=smoke_cache)
        return executed[source]

    return execute


FORK = "a-reader/own-mtl-book"  # the repository the smoke book is built for: not the one of _config.yml


@pytest.fixture(scope="session")
def smoke_book(smoke_executed, smoke_cache, tmp_path_factory):
    """The book built strictly (-W) from every chapter executed in smoke mode, for the repository ``FORK``
    (``BOOK_REPOSITORY``), with the runs of the smoke cache; the path of its index.html."""
    executed = [smoke_executed(source) for source in build.NOTEBOOKS]
    previous = os.environ.get("BOOK_REPOSITORY")
    os.environ["BOOK_REPOSITORY"] = FORK
    try:
        return build.build(executed[0].parent, tmp_path_factory.mktemp("smoke-book"), strict=True,
                           runs=sorted(smoke_cache.glob("*.json")))
    finally:
        if previous is None:
            del os.environ["BOOK_REPOSITORY"]
        else:
            os.environ["BOOK_REPOSITORY"] = previous

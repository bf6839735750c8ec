import sys
from pathlib import Path

import pytest
import torch

from mtlutils import data

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test writes its run cache and figures to its own temporary folder."""
    monkeypatch.setenv("MTLUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTLUTILS_FIGURES", str(tmp_path / "figures"))
    torch.manual_seed(0)


@pytest.fixture
def suite():
    return data.load("clusters", "smoke", n_tasks=4, n_clusters=2, angle=90)


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory):
    """One run cache for every smoke-mode execution of the chapters, so that a second execution reuses the runs."""
    return tmp_path_factory.mktemp("smoke-cache")


@pytest.fixture(scope="session")
def smoke_book(smoke_cache):
    """The book built strictly (-W) from every chapter executed in smoke mode; the path of its index.html.

    Chapters already executed in this session (tests/test_notebooks.py) are reused.
    """
    sys.path.insert(0, str(ROOT / "book"))
    import build

    executed = ROOT / "_build" / "executed-smoke"
    for source in build.NOTEBOOKS:
        if not (executed / f"{source.stem}.ipynb").exists():
            build.execute(source, "smoke", executed, cache_dir=smoke_cache)
    return build.build(executed, ROOT / "_build" / "smoke-book", strict=True)

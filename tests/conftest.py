import pytest
import torch

from mtlutils import data


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test writes its run cache and figures to its own temporary folder."""
    monkeypatch.setenv("MTLUTILS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTLUTILS_FIGURES", str(tmp_path / "figures"))
    torch.manual_seed(0)


@pytest.fixture
def suite():
    return data.load("clusters", "smoke", n_tasks=4, n_clusters=2, angle=90)

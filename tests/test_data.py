import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlutils import data
from mtlutils.datasets import clusters


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ValueError, match="Valid names: .*clusters"):
        data.load("mnist")


def test_unknown_size_lists_the_valid_sizes():
    with pytest.raises(ValueError, match="smoke, small, full"):
        data.load("clusters", "tiny")


def test_missing_prepared_data_names_the_script(tmp_path):
    with pytest.raises(data.DataNotPrepared, match=r"python -m data_scripts\.multimnist --root"):
        data.prepared_dir("multimnist", root=tmp_path)
    (tmp_path / "multimnist").mkdir()
    with pytest.raises(data.DataNotPrepared, match="train.pt"):
        data.prepared_dir("multimnist", root=tmp_path, files=("train.pt",))
    (tmp_path / "multimnist" / "train.pt").write_bytes(b"")
    assert data.prepared_dir("multimnist", root=tmp_path, files=("train.pt",)) == tmp_path / "multimnist"


def test_clusters_is_deterministic_and_records_its_groups():
    a = data.load("clusters", "smoke", seed=3, n_tasks=6, n_clusters=3, angle=90)
    b = data.load("clusters", "smoke", seed=3, n_tasks=6, n_clusters=3, angle=90)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y["t5"], b.test.y["t5"])
    assert a.meta["groups"] == [["t0", "t1"], ["t2", "t3"], ["t4", "t5"]]
    assert len(a.train) == clusters.SIZES["smoke"]["n_train"]
    c = data.load("clusters", "smoke", seed=4, n_tasks=6, n_clusters=3, angle=90)
    assert not torch.equal(a.train.x, c.train.x)


@pytest.mark.parametrize("angle", [0, 60, 120])
def test_cluster_directions_meet_at_the_angle(angle):
    u = clusters.cluster_directions(3, angle, dim=8, rng=np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, atol=1e-9)
    cos = u @ u.T
    np.testing.assert_allclose(cos[~np.eye(3, dtype=bool)], np.cos(np.radians(angle)), atol=1e-9)


def test_impossible_angle_is_refused_with_the_limit():
    with pytest.raises(ValueError, match="at most 120.0 degrees"):
        data.load("clusters", "smoke", n_tasks=3, n_clusters=3, angle=150)


@pytest.mark.parametrize("angle", [0, 90, 180])
def test_target_correlation_matches_sampled_targets(angle):
    suite = data.load("clusters", "full", n_tasks=2, n_clusters=2, angle=angle, spread=0.0, noise=0.0)
    y = torch.stack([suite.test.y["t0"], suite.test.y["t1"]]).numpy()
    assert np.corrcoef(y)[0, 1] == pytest.approx(clusters.target_correlation(angle), abs=0.03)


def test_shared_fraction_bound_limits():
    assert clusters.shared_fraction_bound(0) == pytest.approx(1.0)
    assert clusters.shared_fraction_bound(90) == pytest.approx(0.5)
    assert clusters.shared_fraction_bound(90, bottleneck=2) == pytest.approx(1.0)
    assert 0.5 < clusters.shared_fraction_bound(180) < 1.0


@pytest.mark.parametrize("angle", [float("nan"), 500, -1, "90"])
def test_an_angle_outside_0_to_180_degrees_is_refused(angle):
    with pytest.raises(ValueError, match="angle must be a number of degrees from 0 to 180"):
        data.load("clusters", "smoke", angle=angle)


@settings(max_examples=40, deadline=None)
@given(n_tasks=st.integers(-1, 7), n_clusters=st.integers(-1, 7), dim=st.integers(-1, 12),
       angle=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 400)),
       size=st.sampled_from(["smoke", "small", "tiny"]))
def test_the_clusters_loader_gives_a_suite_or_a_clear_error(n_tasks, n_clusters, dim, angle, size):
    try:
        suite = data.load("clusters", size, n_tasks=n_tasks, n_clusters=n_clusters, dim=dim, angle=angle)
    except ValueError as error:
        assert str(error).startswith(("clusters:", "Unknown size"))
    else:
        assert len(suite.tasks) == n_tasks and suite.input_shape == (dim,)
        assert all(torch.isfinite(y).all() for y in suite.train.y.values())

"""SelectiveGroups recovers the known groups of `clusters` (Jeong & Yoon, 2025) with the intended attribution."""

import pytest
from sklearn.metrics import adjusted_rand_score

from mtlutils import data, models
from mtlutils.strategies import SelectiveGroups, sgd
from mtlutils.train import fit


def _ari(groups, truth, names):
    label = {n: i for i, g in enumerate(groups) for n in g}
    true = {n: i for i, g in enumerate(truth) for n in g}
    return adjusted_rand_score([true[n] for n in names], [label[n] for n in names])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intended_attribution_recovers_three_groups(seed):
    suite = data.load("clusters", "smoke", n_tasks=6, n_clusters=3, angle=120, bottleneck=3)
    strategy = SelectiveGroups(beta=1e-2, warmup=50, regroup_every=10, optimizer_factory=sgd(0.05))
    fit(models.for_suite(suite, seed=seed), suite, strategy, epochs=10, batch_size=32, seed=seed, progress=False)
    assert _ari(strategy.groups, suite.meta["groups"], suite.task_names) >= 0.9

import numpy as np
import pytest

from mtlutils import affinity, models
from mtlutils.tasks import Task


def test_gradient_cosine_is_symmetric_with_unit_diagonal(suite):
    net = models.for_suite(suite)
    cos = affinity.gradient_cosine(net, suite.train, suite.tasks)
    assert cos.shape == (4, 4)
    np.testing.assert_allclose(cos, cos.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-6)
    assert all(p.grad is None for p in net.parameters())


def test_a_task_and_its_copy_have_cosine_one(suite):
    net = models.for_suite(suite)
    twin = Task("twin", suite.tasks[0].loss, suite.tasks[0].metrics, False)
    net.heads["twin"] = net.heads["t0"]
    suite.train.y["twin"] = suite.train.y["t0"]
    cos = affinity.gradient_cosine(net, suite.train, [suite.tasks[0], twin])
    assert cos[0, 1] == pytest.approx(1.0, abs=1e-6)


def test_conflict_rates():
    neg = np.array([[1.0, -0.5], [-0.5, 1.0]])
    pos = np.array([[1.0, 0.5], [0.5, 1.0]])
    np.testing.assert_allclose(affinity.conflict_rate([neg, pos, neg, neg]), [[0, 0.75], [0.75, 0]])
    with pytest.raises(ValueError, match="no cosine"):
        affinity.conflict_rate([])
    three = np.array([[1, 0.2, -0.3], [0.2, 1, -0.4], [-0.3, -0.4, 1]])
    rates = affinity.conflict_within_and_across([(0, pos[[0, 0, 1]][:, [0, 0, 1]]), (5, three)], [0, 0, 1], since_step=5)
    assert rates == {"within": 0.0, "across": 1.0}

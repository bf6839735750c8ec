import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtlutils import metrics
from mtlutils.tasks import Task


def _task(name, higher):
    return Task(name, loss=None, metrics={m: None for m in higher}, higher_is_better=higher)


@pytest.mark.parametrize("mode", ["per_task", "pooled"])
@pytest.mark.parametrize("higher", [True, False])
def test_delta_m_sign_follows_higher_is_better(mode, higher):
    task = _task("a", {"m": higher})
    bigger = metrics.delta_m({"a": {"m": 1.1}}, {"a": {"m": 1.0}}, [task], mode=mode)
    assert bigger == pytest.approx(10.0 if higher else -10.0)


def test_delta_m_is_zero_at_the_baseline_and_modes_weigh_differently():
    a = _task("a", {"acc": True, "err": False})
    b = _task("b", {"mse": False})
    base = {"a": {"acc": 0.5, "err": 0.5}, "b": {"mse": 2.0}}
    assert metrics.delta_m(base, base, [a, b]) == 0.0
    better_b = {"a": base["a"], "b": {"mse": 1.0}}  # b improves by 50%
    assert metrics.delta_m(better_b, base, [a, b], mode="per_task") == pytest.approx(25.0)
    assert metrics.delta_m(better_b, base, [a, b], mode="pooled") == pytest.approx(50.0 / 3)


def test_delta_m_rejects_bad_input():
    task = _task("a", {"m": True})
    with pytest.raises(ValueError, match="mode"):
        metrics.delta_m({"a": {"m": 1}}, {"a": {"m": 1}}, [task], mode="mean")
    with pytest.raises(ZeroDivisionError, match="a/m"):
        metrics.delta_m({"a": {"m": 1}}, {"a": {"m": 0}}, [task])
    with pytest.raises(KeyError, match="baseline"):
        metrics.delta_m({"a": {"m": 1}}, {}, [task])


def test_accuracy_and_mse():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, -1.0]])
    assert metrics.accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    assert metrics.binary_accuracy(torch.tensor([1.0, -1.0]), torch.tensor([1, 1])) == 0.5
    assert metrics.mse(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])) == pytest.approx(2.5)


def test_task_needs_a_direction_for_every_metric():
    with pytest.raises(ValueError, match="higher_is_better"):
        Task("a", loss=None, metrics={"x": None, "y": None}, higher_is_better={"x": True})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("where", ["metrics", "baseline"])
def test_delta_m_refuses_values_that_are_not_finite_and_names_them(value, where):
    task = _task("a", {"acc": True})
    scores = {"metrics": {"a": {"acc": 0.9}}, "baseline": {"a": {"acc": 0.8}}}
    scores[where]["a"]["acc"] = value
    with pytest.raises(ValueError, match=rf"{where} has a/acc = {value}; a relative change needs finite values"):
        metrics.delta_m(scores["metrics"], scores["baseline"], [task])


def test_delta_m_refuses_tasks_and_metrics_it_was_not_told_about():
    task = _task("a", {"acc": True, "err": False})
    good = {"a": {"acc": 0.9, "err": 0.1}}
    with pytest.raises(ValueError, match=r"metrics holds task\(s\) \['b'\] that are not among the tasks \['a'\]"):
        metrics.delta_m({**good, "b": {"acc": 0.5}}, good, [task])
    with pytest.raises(KeyError, match=r"task 'a' the metric\(s\) \['acc'\]; its metrics are \['acc', 'err'\] "
                                       r"\(missing \['err'\], extra \[\]\)"):
        metrics.delta_m({"a": {"acc": 0.9}}, good, [task])
    with pytest.raises(KeyError, match=r"extra \['loss'\]"):
        metrics.delta_m(good, {"a": {**good["a"], "loss": 1.0}}, [task])


@pytest.mark.parametrize("metric", [metrics.accuracy, metrics.binary_accuracy, metrics.mse])
def test_metrics_of_an_empty_split_say_so(metric):
    with pytest.raises(ValueError, match="is empty; a metric needs at least one sample"):
        metric(torch.zeros(0, 3), torch.zeros(0))


VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5))


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.dictionaries(st.sampled_from(["acc", "err"]), VALUES)),
       st.dictionaries(st.sampled_from(["a", "b", "c"]), st.dictionaries(st.sampled_from(["acc", "err"]), VALUES)))
def test_delta_m_gives_a_finite_number_or_a_clear_error(results, baseline):
    tasks = [_task("a", {"acc": True, "err": False}), _task("b", {"acc": True, "err": False})]
    try:
        value = metrics.delta_m(results, baseline, tasks)
    except (ValueError, KeyError, ZeroDivisionError) as error:
        assert str(error).strip("'\"").startswith("delta_m:")
    else:
        assert math.isfinite(value)

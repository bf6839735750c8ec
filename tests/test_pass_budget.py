import pandas as pd
import pytest

from mtlutils import experiments
from mtlutils.tuning import Tuned, at_pass_budget
from mtlutils.record import Run


def _run(passes_per_step, steps, accuracy_at):
    """A finished run of ``steps`` steps at ``passes_per_step``, evaluated after the steps of ``accuracy_at``
    (step -> test accuracy of each of two tasks)."""
    evals = pd.DataFrame([dict(step=s, split="test", task=t, metric="accuracy", value=v + (0.1 if t == "b" else 0))
                          for s, v in accuracy_at.items() for t in "ab"])
    last = accuracy_at[steps]
    return Run(history=pd.DataFrame(), evals=evals, task_names=["a", "b"],
               metrics={"test": {"a": {"accuracy": last}, "b": {"accuracy": last + 0.1}}},
               cost=dict(forward_passes=passes_per_step * steps / 2, backward_passes=passes_per_step * steps / 2,
                         steps=steps, seconds=1.0, epochs=1))


def _tuned():
    runs = [("two", {"seed": 5, "eval_at": [10]}, _run(2, 20, {10: 0.5, 20: 0.6})),  # mid-run
            ("two", {"seed": 6, "eval_at": [10]}, _run(2, 20, {10: 0.4, 20: 0.7})),
            ("four", {"seed": 5, "eval_at": [4]}, _run(4, 5, {4: 0.3, 5: 0.35})),  # at its last step
            ("one", {"seed": 5, "eval_at": None}, _run(1, 20, {20: 0.9})),
            ("three", {"seed": 5, "eval_at": [5], "epochs": 1}, _run(3, 20, {5: 0.2, 20: 0.3}))]
    return Tuned(chosen=pd.DataFrame(), tuning=[], runs=runs)


@pytest.fixture
def trained(monkeypatch):
    """The configurations trained again, each returning a run evaluated at its last step."""
    asked = []

    def fake_run_grid(configs, cache_dir=None, progress=True):
        asked.extend(configs)
        return [_run(3, c["steps"], {c["steps"]: 0.8}) for c in configs]

    monkeypatch.setattr(experiments, "run_grid", fake_run_grid)
    return asked


def test_each_run_is_read_after_the_steps_that_spend_the_budget(trained):
    table = at_pass_budget(_tuned(), ["two", "one"], passes=20)
    assert table.to_dict("records") == [
        dict(method="two", seed=5, steps=10, value=pytest.approx(0.55)),
        dict(method="two", seed=6, steps=10, value=pytest.approx(0.45)),
        dict(method="one", seed=5, steps=20, value=pytest.approx(0.95)),
    ]
    assert trained == []  # every budget was met by an evaluation: nothing trains


def test_a_run_not_evaluated_at_the_budget_trains_again_for_exactly_those_steps(trained):
    table = at_pass_budget(_tuned(), ["three", "four"], passes=20)  # 20 / 3 -> 7 steps, 20 / 4 -> 5 steps
    assert trained == [{"seed": 5, "eval_at": None, "epochs": None, "steps": 7}]
    assert table.method.tolist() == ["four", "three"]  # those trained again come last
    assert table.steps.tolist() == [5, 7] and table.value.tolist() == pytest.approx([0.4, 0.85])


def test_the_methods_left_out_are_left_out_and_unknown_ones_refused(trained):
    assert at_pass_budget(_tuned(), [], passes=20).empty
    assert list(at_pass_budget(_tuned(), [], passes=20).columns) == ["method", "seed", "steps", "value"]
    with pytest.raises(KeyError, match="five"):
        at_pass_budget(_tuned(), ["two", "five"], passes=20)

import pandas as pd
import pytest

from mtlutils.record import Run
from mtlutils.tuning import Tuned, at_pass_budget


def _run(passes_per_step, steps, scores):
    """A finished run of ``steps`` steps at ``passes_per_step``, evaluated after the steps of ``scores``
    (step -> (validation, test) accuracy of task "a"; task "b" 0.1 above)."""
    evals = pd.DataFrame([dict(step=s, split=split, task=t, metric="accuracy", value=v + (0.1 if t == "b" else 0))
                          for s, pair in scores.items() for split, v in zip(("val", "test"), pair) for t in "ab"])
    return Run(history=pd.DataFrame(), evals=evals, task_names=["a", "b"], metrics={},
               cost=dict(forward_passes=passes_per_step * steps / 2, backward_passes=passes_per_step * steps / 2,
                         optimizer_steps=steps, steps=steps, seconds=1.0, epochs=1))


def _tuned():
    runs = [("two", {"seed": 5}, _run(2, 20, {5: (0.6, 0.5), 10: (0.5, 0.7), 20: (0.9, 0.9)})),
            ("two", {"seed": 6}, _run(2, 20, {5: (0.4, 0.3), 10: (0.5, 0.4), 20: (0.9, 0.9)})),
            ("one", {"seed": 5}, _run(1, 20, {10: (0.2, 0.2), 20: (0.3, 0.9)})),
            ("four", {"seed": 5}, _run(4, 20, {10: (0.2, 0.2), 20: (0.3, 0.9)}))]
    return Tuned(chosen=pd.DataFrame(), tuning=[], runs=runs)


def test_each_run_is_read_at_its_best_validation_step_within_the_budget():
    table = at_pass_budget(_tuned(), ["two", "one"], passes=20)  # two: 10 steps, one: 20 steps
    assert table.to_dict("records") == [
        dict(method="two", seed=5, steps=10, chosen=5, value=pytest.approx(0.55)),  # validation best at 5, not 20
        dict(method="two", seed=6, steps=10, chosen=10, value=pytest.approx(0.45)),
        dict(method="one", seed=5, steps=20, chosen=20, value=pytest.approx(0.95)),
    ]
    cheap = at_pass_budget(_tuned(), ["one"], passes=40)  # 40 steps asked of a run of 20: its whole run
    assert cheap.steps.tolist() == [20] and cheap.chosen.tolist() == [20]


def test_a_budget_before_every_evaluation_is_refused_and_unknown_methods_too():
    with pytest.raises(KeyError, match="no evaluation within the first 2 steps"):
        at_pass_budget(_tuned(), ["four"], passes=8)
    assert at_pass_budget(_tuned(), [], passes=20).empty
    assert list(at_pass_budget(_tuned(), [], passes=20).columns) == ["method", "seed", "steps", "chosen", "value"]
    with pytest.raises(KeyError, match="five"):
        at_pass_budget(_tuned(), ["two", "five"], passes=20)

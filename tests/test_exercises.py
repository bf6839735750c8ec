"""The answer checks: right answers pass, typical mistakes get their hint, and bad forms get a clear message."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mtlutils.exercises import CHECKABLE, check, well_formed

# three steps of groups after a warm-up, as Run.groups lists them: the second step lists the first one's groups in
# another order, so the grouping is unchanged
GROUPS = [[["a", "b"], ["c"]], [["c"], ["b", "a"]], [["a"], ["b", "c"]]]
ACCURACY = pd.DataFrame({"method": ["avg", "avg", "pcgrad", "pcgrad"], "seed": [0, 1, 0, 1],
                         "left": [90.0, 80.0, 70.0, 95.0], "right": [85.0, 88.0, 99.0, 75.0]})


def test_right_answers_pass(capsys):
    by_hand = [[0.05, -0.05, 0.0625], [-0.05, 0.0, 0.0625], [0.0, 0.0, 0.0]]  # the exercise worked out on paper
    assert check("ex-pa-hand", by_hand)
    assert check("ex-rg-cost", {k: -(-10 // k) for k in range(1, 11)})
    assert check("ex-rg-pairs", 0.44, k=5) and check("ex-rg-pairs", 1 / 9, k=2)
    assert check("ex-alt-moments", (6, 3)) and check("ex-alt-mean", 2)
    per_task = ((-0.02 / 0.92 - 0.25) / 2 + 0.20) / 2 * 100  # the solution's hand computation
    pooled = (-0.02 / 0.92 - 0.25 + 0.20) / 3 * 100
    assert check("ex-nt-delta", (per_task, pooled))
    assert check("ex-sg-stretch", (2, 2), groups=GROUPS)
    assert check("ex-dh-worst", {"avg": (85 + 80) / 2, "pcgrad": (70 + 75) / 2}, accuracy=ACCURACY)
    assert capsys.readouterr().out.count("Right.") == 9


def test_typical_mistakes_get_their_hint(capsys):
    assert not check("ex-alt-moments", (3, 3))
    assert "once per task" in capsys.readouterr().out
    assert not check("ex-pa-hand", np.zeros((3, 3)))
    out = capsys.readouterr().out
    assert "Row a" in out and "Row b" in out and "Row c" not in out
    assert not check("ex-rg-cost", {k: 10 // k for k in range(1, 11)})
    assert "k = 3, 4, 6, 7, 8, 9" in capsys.readouterr().out
    assert not check("ex-alt-mean", 0.5)
    assert "other way round" in capsys.readouterr().out
    assert not check("ex-sg-stretch", (3, 1), groups=GROUPS)  # the groups compared in the order they were listed
    assert "sort the groups" in capsys.readouterr().out
    assert not check("ex-dh-worst", {"avg": 85.0, "pcgrad": 82.5}, accuracy=ACCURACY)  # min of the mean accuracies
    assert "worse digit in each seed first" in capsys.readouterr().out


def test_a_wrong_form_and_an_unknown_label_say_what_to_do(capsys):
    assert not check("ex-alt-moments", 6)
    assert "should be a pair (trunk steps, head steps)" in capsys.readouterr().out
    assert not check("ex-dh-worst", {"avg": 82.5}, accuracy=ACCURACY)  # a method missing
    assert "mapping from every method" in capsys.readouterr().out
    with pytest.raises(KeyError, match="compare your answer with the solution"):
        check("ex-no-such-thing", 1)
    assert len(CHECKABLE) == 9


def test_a_well_formed_answer_need_not_be_right(capsys):
    assert well_formed("ex-alt-moments", (3, 3)) and not check("ex-alt-moments", (3, 3))
    assert not well_formed("ex-alt-moments", 6)
    assert "should be a pair" in capsys.readouterr().out
    assert well_formed("ex-sg-stretch", (1, 1), groups=GROUPS) and not well_formed("ex-sg-stretch", None, groups=GROUPS)


def test_the_teachers_page_lists_exactly_the_checkable_exercises():
    page = (Path(__file__).resolve().parent.parent / "book" / "teaching.md").read_text()
    assert set(re.findall(r"^\| `(ex-[\w-]+)` \|", page, re.M)) == set(CHECKABLE)

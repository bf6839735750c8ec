"""The answer checks: right answers pass, typical mistakes get their hint, and bad forms get a clear message."""

import re
from pathlib import Path

import numpy as np
import pytest

from mtlutils.exercises import CHECKABLE, check


def test_right_answers_pass(capsys):
    by_hand = [[0.05, -0.05, 0.0625], [-0.05, 0.0, 0.0625], [0.0, 0.0, 0.0]]  # the exercise worked out on paper
    assert check("ex-pa-hand", by_hand)
    assert check("ex-rg-cost", {k: -(-10 // k) for k in range(1, 11)})
    assert check("ex-rg-pairs", 0.44, k=5) and check("ex-rg-pairs", 1 / 9, k=2)
    assert check("ex-alt-moments", (6, 3)) and check("ex-alt-mean", 2)
    per_task = ((-0.02 / 0.92 - 0.25) / 2 + 0.20) / 2 * 100  # the solution's hand computation
    pooled = (-0.02 / 0.92 - 0.25 + 0.20) / 3 * 100
    assert check("ex-nt-delta", (per_task, pooled))
    assert capsys.readouterr().out.count("Right.") == 7


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


def test_a_wrong_form_and_an_unknown_label_say_what_to_do(capsys):
    assert not check("ex-alt-moments", 6)
    assert "should be a pair (trunk steps, head steps)" in capsys.readouterr().out
    with pytest.raises(KeyError, match="compare your answer with the solution"):
        check("ex-no-such-thing", 1)
    assert len(CHECKABLE) == 7


def test_the_teachers_page_lists_exactly_the_checkable_exercises():
    page = (Path(__file__).resolve().parent.parent / "book" / "teaching.md").read_text()
    assert set(re.findall(r"^\| `(ex-[\w-]+)` \|", page, re.M)) == set(CHECKABLE)

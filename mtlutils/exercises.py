"""Checks for the exercises that have one right answer: ``check(label, answer)`` prints whether the answer is
right and, when it is not, what to look at; it returns True or False.

    from mtlutils.exercises import check
    check("ex-rg-pairs", 0.11, k=2)

The expected answers are computed here by the same library code the chapters use, from the numbers each
exercise states or from the chapter's own results passed in (``groups=``, ``accuracy=``); ``CHECKABLE`` lists the
labels. The graded student editions (book/student.py) test an answer with ``well_formed`` in the open and with
``check`` in a hidden test.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import metrics
from .datasets import clusters
from .affinity import ProximalAffinity
from .tasks import Task

# The numbers the exercises state, in one place: the chapters glue them into the exercises' text and their
# solutions compute with them, as the checks below do.
DELTA_TASKS = (Task("A", loss=None, metrics={"acc": None, "err": None}, higher_is_better={"acc": True, "err": False}),
               Task("B", loss=None, metrics={"mse": None}, higher_is_better=False))  # ex-nt-delta's two tasks
DELTA_MODEL = {"A": {"acc": 0.90, "err": 0.10}, "B": {"mse": 2.0}}  # ex-nt-delta: the multi-task network's metrics
DELTA_SINGLE = {"A": {"acc": 0.92, "err": 0.08}, "B": {"mse": 2.5}}  # ex-nt-delta: its single-task baselines
THREE_ANGLE = 90  # ex-nt-three: the angle (degrees) between every two of the three clusters' directions
MOMENT_BATCHES = 3  # ex-alt-moments: the batches of Alternated before its optimizer's state is read


def _close(answer, expected, tolerance: float) -> bool:
    return bool(np.allclose(np.asarray(answer, dtype=float), np.asarray(expected, dtype=float), atol=tolerance))


def _delta(answer, tolerance: float = 0.05) -> tuple[bool, str]:
    expected = [metrics.delta_m(DELTA_MODEL, DELTA_SINGLE, list(DELTA_TASKS), mode=m) for m in ("per_task", "pooled")]
    if _close(answer, expected, tolerance):
        return True, "Per task weighs each task equally; pooled weighs each metric equally."
    if _close(answer, expected[::-1], tolerance):
        return False, "You have the two modes the wrong way round: give (per task, pooled)."
    return False, ("Give (per task, pooled) in percent. Check the signs: for an error rate or an MSE, lower is "
                   "better, so a drop counts as a gain.")


def _three_clusters(answer, tolerance: float = 0.01) -> tuple[bool, str]:
    one, two = (clusters.shared_fraction_bound(THREE_ANGLE, n_clusters=3, bottleneck=b) for b in (1, 2))
    if _close(answer, (one, two), tolerance):
        return True, "Two features carry more of three clusters' signal than one."
    return False, (f"Give (one feature, two features) at {THREE_ANGLE} degrees, as fractions between 0 and 1, from "
                   "shared_fraction_bound.")


def _moments(answer, batches: int = MOMENT_BATCHES, tasks: int = 2) -> tuple[bool, str]:
    expected = (tasks * batches, batches)
    if tuple(int(a) for a in answer) == expected:
        return True, "The shared moments see every task's step; a head's see only its own task's."
    if int(answer[0]) == batches:
        return False, "The trunk is stepped once per task, not once per batch."
    return False, "Give (trunk steps, head steps); count the optimizer steps that touch each parameter."


def _mean_factor(answer, tasks: int = 2) -> tuple[bool, str]:
    if math.isclose(float(answer), tasks):
        return True, "With the mean of T losses, plain SGD needs T times the learning rate to move as far."
    if math.isclose(float(answer), 1 / tasks):
        return False, "The other way round: the mean divides the gradient by T, so the learning rate must grow."
    return False, "Compare -lr (g1 + g2) with -lr' (g1 + g2) / T to first order."


def _group_counts(answer, tasks: int = 10) -> tuple[bool, str]:
    wrong = [k for k in range(1, tasks + 1) if int(answer.get(k, -1)) != math.ceil(tasks / k)]
    if not wrong:
        return True, "ceil(T / k) groups, so k = 6 to 9 all cost two passes, like k = 5."
    return False, f"Check k = {', '.join(map(str, wrong))}: the last group takes what is left over."


def _pair_probability(answer, k: int = 2, tasks: int = 10, tolerance: float = 0.02) -> tuple[bool, str]:
    expected = (k - 1) / (tasks - 1)
    if abs(float(answer) - expected) <= tolerance:
        return True, f"(k - 1) / (T - 1) = {expected:.3f}."
    return False, "Fix one of the two tasks: how many of the other T - 1 tasks share its group?"


def _proximal_by_hand(answer, tolerance: float = 1e-6) -> tuple[bool, str]:
    tracker = ProximalAffinity(["a", "b", "c"], beta=0.5)
    tracker.update_group(["a", "b"], {"a": 1.0, "b": 2.0, "c": 4.0}, {"a": 0.8, "b": 2.2, "c": 3.0})
    answer = np.asarray(answer, dtype=float)
    if answer.shape != (3, 3):
        return False, "Give the whole 3 x 3 matrix A, rows a, b, c."
    if _close(answer, tracker.matrix, tolerance):
        return True, "Within the group, opposite changes give -max(a_t, a_s), and A_bb is left alone."
    hints = {0: "Row a: between a and b the changes have opposite signs.",
             1: "Row b: b's own loss went up, so A_bb is left as it was.",
             2: "Row c: c was not in the group, so its row does not move."}
    bad = [i for i in range(3) if not _close(answer[i], tracker.matrix[i], tolerance)]
    return False, " ".join(hints[i] for i in bad)


def _groupings(groups) -> list[tuple]:
    """Each step's groups as one comparable value: the order of the groups and within them does not count."""
    return [tuple(sorted(tuple(sorted(g)) for g in step)) for step in groups]


def _longest_stretch(values: list) -> int:
    longest = current = 1 if values else 0
    for previous, now in zip(values, values[1:]):
        current = current + 1 if now == previous else 1
        longest = max(longest, current)
    return longest


def _stretch(answer, groups) -> tuple[bool, str]:
    used = _groupings(groups)
    distinct, longest = int(answer[0]), int(answer[1])
    if (distinct, longest) == (len(set(used)), _longest_stretch(used)):
        return True, "Few groupings, held for long stretches: the groups settle after the warm-up."
    as_listed = [tuple(tuple(g) for g in step) for step in groups]
    if (distinct, longest) == (len(set(as_listed)), _longest_stretch(as_listed)):
        return False, "The group order is shuffled every batch: sort the groups, and the tasks in them, before comparing."
    if distinct != len(set(used)):
        return False, "Count the different groupings among the steps after the warm-up (a set of sorted groups)."
    return False, "The longest stretch is the longest run of consecutive steps with the same grouping."


def _worse_task(answer, accuracy) -> tuple[bool, str]:
    per_seed = accuracy.assign(worse=accuracy[["left", "right"]].min(axis=1))
    expected = per_seed.groupby("method").worse.mean()
    answer = {name: float(answer[name]) for name in expected.index}  # a KeyError names a missing method
    if _close(list(answer.values()), expected.values, 1e-6):
        return True, "A method that trades one digit for the other drops in this ranking."
    if _close(list(answer.values()), accuracy.groupby("method")[["left", "right"]].mean().min(axis=1).values, 1e-6):
        return False, "Take the worse digit in each seed first, then average over the seeds."
    return False, "For each method: the mean over seeds of min(left, right) test accuracy, in percent."


_CHECKS: dict[str, tuple[Callable[..., tuple[bool, str]], str]] = {
    "ex-nt-delta": (_delta, "a pair (per task, pooled) of percentages"),
    "ex-nt-three": (_three_clusters, f"a pair (one feature, two features) of fractions at {THREE_ANGLE} degrees"),
    "ex-alt-moments": (_moments, "a pair (trunk steps, head steps) of integers"),
    "ex-alt-mean": (_mean_factor, "one number: the factor on Averaged's learning rate"),
    "ex-rg-cost": (_group_counts, "a dict {k: number of groups} for k = 1 to T"),
    "ex-rg-pairs": (_pair_probability, "one probability, with k=... given, e.g. check('ex-rg-pairs', 0.11, k=2)"),
    "ex-pa-hand": (_proximal_by_hand, "the 3 x 3 matrix A after the update, rows and columns a, b, c"),
    "ex-sg-stretch": (_stretch, "a pair (different groupings, longest stretch in steps), with groups=... given"),
    "ex-dh-worst": (_worse_task, "a mapping from every method to its mean worse-digit accuracy, with accuracy=... given"),
}
CHECKABLE = tuple(_CHECKS)


def _verdict(label: str, answer, given: dict) -> tuple[bool | None, str]:
    """(True or False, message) for an answer of the right form; (None, message) for one that is not."""
    if label not in _CHECKS:
        raise KeyError(f"There is no automatic check for exercise {label!r}; compare your answer with the solution in "
                       f"the book. Checkable exercises: {', '.join(CHECKABLE)}.")
    checker, form = _CHECKS[label]
    try:
        return checker(answer, **given)
    except (TypeError, ValueError, AttributeError, IndexError, KeyError) as error:
        return None, f"The answer should be {form} ({type(error).__name__}: {error})."


def check(label: str, answer, **given) -> bool:
    """Check the answer to exercise ``label`` (``given`` names the exercise's own settings, e.g. ``k=2``)."""
    right, message = _verdict(label, answer, given)
    print(("Right. " if right else "Not yet. ") + message)
    return bool(right)


def well_formed(label: str, answer, **given) -> bool:
    """Whether the answer to exercise ``label`` has the form its check expects, right or not (the visible test of
    the graded student editions; the value is checked by their hidden test). Prints what is expected when not."""
    right, message = _verdict(label, answer, given)
    if right is None:
        print(message)
    return right is not None

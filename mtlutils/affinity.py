"""Measures of how tasks relate during training."""

from __future__ import annotations

import copy
import warnings
from typing import Mapping, Sequence

import numpy as np
import torch
from scipy import stats
from sklearn.cluster import AffinityPropagation
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from torch.func import functional_call

from .models import MultiTaskNet
from .tasks import Split, Task


def shared_gradients(net: MultiTaskNet, batch: Split, tasks: Sequence[Task]) -> torch.Tensor:
    """Gradient of each task's loss with respect to the shared parameters, one flattened row per task.

    Leaves every ``.grad`` of the network untouched.
    """
    shared = [p for p in net.shared_parameters() if p.requires_grad]
    predictions = net(batch.x, tasks=[t.name for t in tasks])
    rows = []
    for i, task in enumerate(tasks):
        loss = task.loss(predictions[task.name], batch.y[task.name])
        grads = torch.autograd.grad(loss, shared, retain_graph=i < len(tasks) - 1, allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, shared)]))
    return torch.stack(rows)


def gradient_cosine(net: MultiTaskNet, batch: Split, tasks: Sequence[Task]) -> np.ndarray:
    """Cosine similarity between the shared-parameter gradients of every pair of tasks (a T x T matrix).

    A negative entry means the two tasks' gradients conflict (Yu et al., 2020): a step that lowers one loss
    raises the other to first order. A task with a zero gradient has cosine 0 with every task.
    """
    return cosine_matrix(shared_gradients(net, batch, tasks)).cpu().numpy()


def cosine_matrix(grads: torch.Tensor) -> torch.Tensor:
    """The cosines between the rows of ``grads`` (..., T, P), (..., T, T); a zero row has cosine 0 with all."""
    norms = grads.norm(dim=-1, keepdim=True)
    unit = torch.where(norms > 0, grads / norms.clamp_min(1e-30), torch.zeros_like(grads))
    return unit @ unit.transpose(-1, -2)


def conflict_rate(cosines: Sequence[np.ndarray]) -> np.ndarray:
    """Fraction of measurements in which each pair of tasks had a negative gradient cosine (T x T, diagonal 0)."""
    if len(cosines) == 0:
        raise ValueError("conflict_rate: no cosine measurements; train with gradient_cosine_every set.")
    return (np.stack(cosines) < 0).mean(axis=0)


def within_and_across(matrix: np.ndarray, group_of: Sequence[int]) -> dict[str, float]:
    """The mean off-diagonal entry of a task x task ``matrix`` over the pairs in the same group and over the pairs in
    different groups (``group_of[t]`` is the group of task t): ``{"within": mean, "across": mean}``, NaN where there
    is no such pair."""
    group_of = np.asarray(group_of)
    same = group_of[:, None] == group_of[None, :]
    within, across = matrix[same & ~np.eye(len(group_of), dtype=bool)], matrix[~same]
    return {
        "within": float(within.mean()) if within.size else float("nan"),
        "across": float(across.mean()) if across.size else float("nan"),
    }


def conflict_within_and_across(
    cosines: Sequence[tuple[int, np.ndarray]], group_of: Sequence[int], since_step: int = 0
) -> dict[str, float]:
    """Conflict rates of the task pairs in the same group and of the pairs in different groups.

    ``cosines`` are the ``(step, matrix)`` pairs of ``Run.cosines``; measurements before ``since_step`` are
    left out. Returns ``{"within": rate, "across": rate}`` (NaN where there is no such pair).
    """
    return within_and_across(conflict_rate([matrix for step, matrix in cosines if step >= since_step]), group_of)


class ProximalAffinity:
    """Proximal inter-task affinity (Jeong & Yoon, 2025): an exponential moving average A[s, t] of how much the
    update of the group holding task s lowered the loss of task t, measured within the batch.

    For the step of group g with losses L before and L' after it, a_t = (1 - L'_t / L_t) / |g|. For every s in g
    and every task t the update value v is a_t when t is outside g; inside g, a_t for t = s only when a_t >= 0
    (otherwise A[s, s] is left as it is), and for t != s, a_t when a_t a_s >= 0, else -max(a_t, a_s).
    Then A[s, t] <- (1 - beta) A[s, t] + beta v.
    """

    def __init__(self, task_names: Sequence[str], beta: float = 1e-3):
        if not 0 < beta <= 1:
            raise ValueError(f"ProximalAffinity: beta must lie in (0, 1], not {beta}.")
        self.task_names, self.beta = list(task_names), beta
        self.index = {name: i for i, name in enumerate(self.task_names)}
        self.matrix = np.zeros((len(self.task_names), len(self.task_names)))

    def update_group(self, group: Sequence[str], before: Mapping[str, float], after: Mapping[str, float],
                     group_size: int | None = None) -> None:
        """Credit the change from ``before`` to ``after`` to the rows of ``group`` (divided by ``group_size``,
        by default the size of ``group``)."""
        size = group_size or len(group)
        a = np.array([(1.0 - after[n] / before[n]) / size for n in self.task_names])
        members = [self.index[n] for n in group]
        inside = np.zeros(len(a), dtype=bool)
        inside[members] = True
        for s in members:
            v = a.copy()
            conflict = inside & (a * a[s] < 0)
            v[conflict] = -np.maximum(a[conflict], a[s])
            keep = np.ones(len(a), dtype=bool)
            keep[s] = a[s] >= 0
            row = self.matrix[s]
            row[keep] = (1 - self.beta) * row[keep] + self.beta * v[keep]

    def update(self, groups: Sequence[Sequence[str]], trace: Sequence[Mapping[str, float]],
               attribution: str = "intended") -> None:
        """Update from one batch: ``trace[j]`` holds the losses before the step of ``groups[j]`` (and
        ``trace[j + 1]`` after it, when measured).

        ``"intended"`` credits the change caused by g_j to g_j's rows. ``"as_coded"`` reproduces the official
        implementation, which at group j uses the losses from the forward pass before g_j's own step: the change
        caused by g_{j-1} is credited to g_j's rows, the first group is credited nothing and the last group's
        change is never measured.
        """
        if attribution == "intended":
            for j, group in enumerate(groups):
                if j + 1 < len(trace):
                    self.update_group(group, trace[j], trace[j + 1])
        elif attribution == "as_coded":
            for j in range(1, len(groups)):
                self.update_group(groups[j], trace[j - 1], trace[j])
        else:
            raise ValueError(f"attribution must be 'intended' or 'as_coded', not {attribution!r}.")


def normalized_affinity(matrix: np.ndarray, as_coded: bool = False) -> np.ndarray:
    """X[s, t] = A[s, t] / A[t, t], symmetrised as (X + X^T) / 2.

    A column whose diagonal is not positive is divided by its largest absolute entry instead (or left as it is
    when it is all zero), so that a task that never lowered its own loss does not blow the scale up.

    ``as_coded=True`` gives what the official code computes: it divides column t in place by its own diagonal
    entry, which becomes 1 on the way, so only the entries above the diagonal (s < t) are divided by A[t, t]; the
    diagonal is 1 and the entries below it are left as they are, before the symmetrisation. (The official code
    gives NaN for a zero diagonal entry; the fallback above is used there instead.)
    """
    diagonal = np.diag(matrix).copy()
    fallback = np.abs(matrix).max(axis=0)
    scale = np.where(diagonal > 0, diagonal, np.where(fallback > 0, fallback, 1.0))
    x = matrix / scale[None, :]
    if as_coded:
        x = np.triu(x) + np.tril(matrix, -1)
    return (x + x.T) / 2


# (convergence_iter, max_iter) of each attempt: ours gives a slow run more iterations; the official code raises
# convergence_iter by 100 at a fixed max_iter of 200 (its later attempts cannot converge within 200 iterations)
ATTEMPTS = {False: ((50, 200), (50, 1000)), True: ((50, 200), (150, 200))}


def groups_from_affinity(matrix: np.ndarray, task_names: Sequence[str],
                         previous: Sequence[Sequence[str]] | None = None, as_coded: bool = False) -> list[tuple[str, ...]]:
    """Task groups by affinity propagation on the normalised affinity, a precomputed similarity (preference =
    median, convergence_iter = 50; Frey & Dueck, 2007). Without convergence it retries with more iterations,
    then keeps ``previous`` (one task per group when there is none). ``as_coded=True`` normalises and retries as
    the official code does (``normalized_affinity``, ``ATTEMPTS``)."""
    similarity = normalized_affinity(matrix, as_coded)
    for convergence_iter, max_iter in ATTEMPTS[as_coded]:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                labels = AffinityPropagation(
                    affinity="precomputed", convergence_iter=convergence_iter, max_iter=max_iter, random_state=0
                ).fit(similarity).labels_
            except ConvergenceWarning:
                continue
        if (labels >= 0).all():
            groups: dict[int, list[str]] = {}
            for name, label in zip(task_names, labels):
                groups.setdefault(int(label), []).append(name)
            return [tuple(g) for g in groups.values()]
    return [tuple(g) for g in previous] if previous is not None else [(name,) for name in task_names]


def moving_average(measurements: Sequence[tuple[int, np.ndarray]], weight: float) -> list[tuple[int, np.ndarray]]:
    """Exponential moving average, started from zero like the proximal affinity, of ``(step, matrix)``
    measurements: M <- (1 - weight) M + weight m. Measured every n steps, ``weight = beta * n`` gives the memory
    of a proximal affinity with ``beta`` that is updated on every step."""
    if not 0 < weight <= 1:
        raise ValueError(f"moving_average: weight must lie in (0, 1], not {weight}.")
    averaged, state = [], 0.0
    for step, matrix in measurements:
        state = (1 - weight) * state + weight * np.asarray(matrix)
        averaged.append((step, state))
    return averaged


def group_agreement(groups: Sequence[Sequence[str]], reference: Sequence[Sequence[str]]) -> float:
    """Adjusted Rand index (Hubert & Arabie, 1985) between two partitions of the same tasks: 1 for the same
    partition, about 0 for a random one (it can be negative). A group listed twice (the official method updates a
    lone group twice) counts once; a task in two different groups is an error."""

    def labels(partition):
        partition = list(dict.fromkeys(map(tuple, partition)))  # a group updated twice in a batch is one group
        names = [name for group in partition for name in group]
        if len(set(names)) != len(names):
            raise ValueError(f"group_agreement: a task appears twice in {partition}.")
        return {name: i for i, group in enumerate(partition) for name in group}

    ours, theirs = labels(groups), labels(reference)
    if set(ours) != set(theirs):
        raise ValueError(f"group_agreement: the groupings cover different tasks: {sorted(ours)} vs {sorted(theirs)}.")
    names = sorted(ours)
    return float(adjusted_rand_score([theirs[n] for n in names], [ours[n] for n in names]))


def agreement_over_training(series: Sequence[tuple[int, np.ndarray]], reference: Sequence[Sequence[str]],
                            grouping, points: int = 30) -> list[tuple[int, float]]:
    """How well a measure's groups agree with known ones as training goes: for up to ``points`` evenly spaced
    snapshots of its ``(step, matrix)`` series, the last included, ``(step, group_agreement(grouping(matrix),
    reference))``."""
    picks = sorted(set(np.linspace(0, len(series) - 1, points).round().astype(int)))
    return [(series[i][0], group_agreement(grouping(series[i][1]), reference)) for i in picks]


def lookahead_affinity(net: MultiTaskNet, batch: Split, tasks: Sequence[Task], lr: float | None = None,
                       optimizer: torch.optim.Optimizer | None = None) -> np.ndarray:
    """TAG's lookahead inter-task affinity (Fifty et al., 2021) on one batch: the T x T matrix

        Z[i, j] = 1 - L_j(theta_s', theta_j) / L_j(theta_s, theta_j),

    positive when a step of the shared parameters theta_s on task i alone would lower task j's loss. Heads stay
    fixed; nothing moves. With ``lr``, theta_s' = theta_s - lr grad_{theta_s} L_i, the paper's equation. With
    ``optimizer`` (the one training the network), theta_s' is where that optimizer's step would take theta_s if
    task i's gradient were the batch's (its momentum or moments included) and Z is divided by its learning rate,
    as TAG's code computes it; the optimizer and the network are left as they were.
    """
    if (lr is None) == (optimizer is None):
        raise ValueError("lookahead_affinity: give either lr (a plain gradient step) or optimizer (its own step).")
    shared = {f"trunk.{name}": p for name, p in net.trunk.named_parameters()}
    fixed = {name: p.detach() for name, p in net.named_parameters() if name not in shared}
    names = [t.name for t in tasks]
    predictions = net(batch.x, tasks=names)
    losses = [t.loss(predictions[t.name], batch.y[t.name]) for t in tasks]
    z = np.empty((len(tasks), len(tasks)))
    task_grads = [torch.autograd.grad(loss, list(shared.values()), retain_graph=True, allow_unused=True)
                  for loss in losses]  # all before any step: the optimizer's step writes the parameters in place
    for i, grads in enumerate(task_grads):
        if optimizer is None:
            moved = {n: (p - lr * g if g is not None else p).detach() for (n, p), g in zip(shared.items(), grads)}
        else:
            moved = _optimizer_step_of(net, optimizer, shared, grads)
        with torch.no_grad():
            after = functional_call(net, {**fixed, **moved}, (batch.x,), {"tasks": names})
            for j, task in enumerate(tasks):
                z[i, j] = 1.0 - task.loss(after[task.name], batch.y[task.name]).item() / losses[j].item()
    return z if optimizer is None else z / optimizer.param_groups[0]["lr"]


def _optimizer_step_of(net: MultiTaskNet, optimizer: torch.optim.Optimizer, shared: Mapping[str, torch.Tensor],
                       grads: Sequence[torch.Tensor | None]) -> dict[str, torch.Tensor]:
    """Where ``optimizer``'s step with ``grads`` on the shared parameters (none on the others) would take them;
    the parameters, their gradients and the optimizer's state are restored afterwards."""
    saved_state = copy.deepcopy(optimizer.state_dict())
    saved = {name: (p.detach().clone(), p.grad) for name, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = None
    for p, g in zip(shared.values(), grads):
        p.grad = None if g is None else g.detach().clone()
    optimizer.step()
    moved = {name: p.detach().clone() for name, p in shared.items()}
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(saved[name][0])
            p.grad = saved[name][1]
    optimizer.load_state_dict(saved_state)
    return moved


UNSERVED = -1e6  # TAG's score of a task whose only group in a selection is itself alone


def select_groups_tag(z: np.ndarray, task_names: Sequence[str], max_groups: int,
                      search: str = "tag") -> list[tuple[str, ...]]:
    """TAG's network selection (Fifty et al., 2021) from a lookahead affinity ``z`` (``z[b, a]``: b's step on a's
    loss). A group G serves each of its tasks a with score(a, G) = mean over b in G, b != a, of z[b, a].

    ``search="tag"`` is TAG's code: at most ``max_groups`` groups, any subsets of the tasks, possibly overlapping,
    that together cover every task; each task counts the best score among the selected groups that hold it, a
    task alone in a group scores ``UNSERVED`` (-1e6), and the selection with the highest mean over tasks wins.
    ``search="partition"`` keeps every task in exactly one group and scores a task alone 0.

    Both are solved exactly, without listing the selections: a best selection is a split of the tasks into at
    most ``max_groups`` serving sets S, each served by its best group G containing S, and the best split comes
    from a dynamic programme over subsets (4^T memory and 3^T work: T <= 12 tasks).
    """
    n = len(task_names)
    if search not in ("tag", "partition"):
        raise ValueError(f"select_groups_tag: search must be 'tag' or 'partition', not {search!r}.")
    if max_groups < 1:
        raise ValueError(f"select_groups_tag: max_groups must be at least 1, not {max_groups}.")
    if not 1 <= n <= 12 or z.shape != (n, n):
        raise ValueError(f"select_groups_tag: needs a T x T affinity for 1 <= T <= 12 tasks; got {z.shape} for {n} "
                         "names (2^T candidate groups are searched).")
    masks = np.arange(1, 2 ** n)
    member = (masks[:, None] >> np.arange(n)) & 1  # candidate group x task
    score = _tag_scores(z, member, UNSERVED if search == "tag" else 0.0)
    if search == "tag":  # value[S, G] = sum over a in S of score(a, G), for every G that contains S
        value = np.where((masks[None, :] & masks[:, None]) == masks[:, None], member @ score.T, -np.inf)
        serving, best = value.argmax(axis=1), value.max(axis=1)  # per serving set S: its best group, its value
    else:  # a set serves itself
        serving, best = np.arange(len(masks)), score.sum(axis=1)
    blocks = _best_split(best, n, max_groups)
    groups = list(dict.fromkeys(int(masks[serving[s - 1]]) for s in blocks))  # one group may serve two sets
    return [tuple(task_names[i] for i in range(n) if g >> i & 1) for g in groups]


def served_by(z: np.ndarray, task_names: Sequence[str], groups: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
    """The partition of the tasks by the group of a (possibly overlapping) TAG selection that serves each best:
    every task goes with the selected group that holds it and has the highest score(a, G) (see
    ``select_groups_tag``), the first such group on a tie. Each task must be in some group."""
    member = np.array([[name in group for name in task_names] for group in groups], dtype=int)
    missing = [name for name, held in zip(task_names, member.any(axis=0)) if not held]
    if missing:
        raise ValueError(f"served_by: task(s) {missing} are in none of the groups {list(groups)}.")
    score = np.where(member > 0, _tag_scores(z, member, UNSERVED), -np.inf)
    best = score.argmax(axis=0)  # per task, the first group with its highest score
    return [tuple(name for name, b in zip(task_names, best) if b == j) for j in sorted(set(best))]


def _tag_scores(z: np.ndarray, member: np.ndarray, alone: float) -> np.ndarray:
    """score[G, a] = mean over b in G, b != a, of z[b, a] for every group G (a row of 0/1 ``member``) and task a in
    it; ``alone`` for a task alone in its group; 0 outside the group."""
    size = member.sum(axis=1)
    inflow = member @ z  # inflow[G, a] = sum over b in G of z[b, a]
    mean = (inflow - np.diag(z)[None, :] * member) / np.maximum(size - 1, 1)[:, None]
    return np.where(size[:, None] > 1, mean, alone) * member


def _best_split(value: np.ndarray, n: int, max_blocks: int) -> list[int]:
    """The split of the n tasks into at most ``max_blocks`` blocks (bit masks) with the largest total
    ``value[block - 1]``; ties go to the split found first."""
    full = 2 ** n - 1
    best = {0: (0.0, [])}  # with j blocks: mask -> (best total, its blocks)
    answer = (-np.inf, [])
    for _ in range(min(max_blocks, n)):
        grown = {}
        for mask, (total, blocks) in best.items():
            rest = full & ~mask
            if not rest:
                continue
            low = rest & -rest  # the lowest task not yet placed starts the next block
            sub = rest
            while sub:
                if sub & low:
                    candidate = (total + value[sub - 1], blocks + [sub])
                    key = mask | sub
                    if key not in grown or candidate[0] > grown[key][0]:
                        grown[key] = candidate
                sub = (sub - 1) & rest
        best = grown
        if full in best and best[full][0] > answer[0]:
            answer = best[full]
    return answer[1]


def pair_scores(matrix: np.ndarray) -> np.ndarray:
    """The score of every unordered pair of tasks (s < t, in ``itertools.combinations`` order) from a T x T affinity:
    the mean of its two directions, (M[s, t] + M[t, s]) / 2."""
    rows, columns = np.triu_indices(len(matrix), k=1)
    return (matrix[rows, columns] + matrix[columns, rows]) / 2


RESAMPLED = ("seeds", "pairs and seeds")


def rank_correlation(measure: np.ndarray, transfer: np.ndarray, level: float = 0.95, resamples: int = 2000,
                     seed: int = 0, over: str = "seeds") -> tuple[float, float, float]:
    """Spearman's rank correlation between a measure and the realised transfer of the same pairs, with a bootstrap
    interval (Azorin et al., 2023, ask the same question of other affinity measures).

    ``measure`` and ``transfer`` have shape (seeds, pairs): row i holds seed i's measured affinity and realised
    gain of every pair. The correlation is that of the means over the seeds; the interval resamples ``over`` the
    seeds (rows, kept paired) or, where the pairs are themselves a sample (a benchmark of pairs drawn from a
    family), over the pairs and the seeds, both with replacement, and takes the percentiles of the resampled
    correlations.
    """
    measure, transfer = np.asarray(measure, float), np.asarray(transfer, float)
    if measure.shape != transfer.shape or measure.ndim != 2 or measure.shape[1] < 3:
        raise ValueError(f"rank_correlation: give two (seeds, pairs) arrays of one shape with 3 pairs or more, "
                         f"not {measure.shape} and {transfer.shape}.")
    if over not in RESAMPLED:
        raise ValueError(f"rank_correlation: over={over!r}; resample one of {RESAMPLED}.")
    rho = float(_spearman_rows(measure.mean(axis=0)[None], transfer.mean(axis=0)[None])[0])
    if len(measure) < 2:
        return rho, -np.inf, np.inf
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(measure), size=(resamples, len(measure)))
    measured, realised = measure[draws].mean(axis=1), transfer[draws].mean(axis=1)  # (resamples, pairs)
    if over == "pairs and seeds":
        pairs = rng.integers(0, measure.shape[1], size=(resamples, measure.shape[1]))
        measured, realised = (np.take_along_axis(a, pairs, axis=1) for a in (measured, realised))
    low, high = np.nanpercentile(_spearman_rows(measured, realised), [50 * (1 - level), 50 * (1 + level)])
    return rho, float(low), float(high)


def _spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's correlation of each row of ``a`` with the same row of ``b`` (Pearson's of their average ranks, as
    ``scipy.stats.spearmanr``); NaN where a row is constant."""
    a, b = stats.rankdata(a, axis=1), stats.rankdata(b, axis=1)
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))

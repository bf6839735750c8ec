"""``clusters``: synthetic regression tasks in known groups whose conflict is set by one angle.

Every task reads the same Gaussian input x in R^dim. Cluster c has a unit direction u_c, and every pair of
cluster directions meets at the same ``angle`` (degrees): 0 makes all clusters one, 90 makes them orthogonal,
180 (two clusters only) makes them opposed. Task t of cluster c has the direction w_t = normalise(u_c + spread z_t)
for a random unit vector z_t, and the target

    y_t = standardise(relu(w_t . x)) + noise * eps,   eps ~ N(0, 1).

Because relu(w . x) and relu(-w . x) are different functions, tasks whose directions part ways need different
features. The standard network squeezes the trunk through a narrow bottleneck, so tasks of different clusters
compete for it: training them together hurts (negative transfer), while tasks of one cluster share a feature
and pool their noisy labels. The true groups are ``suite.meta["groups"]``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from .. import losses
from ..metrics import mse
from ..tasks import Split, Task, TaskSuite

SIZES = {
    "smoke": dict(n_train=512, n_val=128, n_test=256),
    "small": dict(n_train=512, n_val=512, n_test=2048),
    "full": dict(n_train=4096, n_val=2048, n_test=8192),
}

_RELU_MEAN = 1.0 / math.sqrt(2.0 * math.pi)  # E[relu(z)] for z ~ N(0, 1)
_RELU_STD = math.sqrt(0.5 - 1.0 / (2.0 * math.pi))  # its standard deviation


def cluster_directions(n_clusters: int, angle: float, dim: int, rng: np.random.Generator) -> np.ndarray:
    """``n_clusters`` unit vectors in R^dim whose pairwise angles all equal ``angle`` degrees, randomly rotated."""
    if not (isinstance(angle, numbers.Real) and not isinstance(angle, bool) and 0 <= angle <= 180):
        raise ValueError(f"clusters: angle must be a number of degrees from 0 to 180 (the angle between two cluster "
                         f"directions), not {angle!r}.")
    cos = math.cos(math.radians(angle))
    if n_clusters > 1 and cos < -1.0 / (n_clusters - 1) - 1e-12:
        widest = math.degrees(math.acos(-1.0 / (n_clusters - 1)))
        raise ValueError(
            f"clusters: {n_clusters} directions cannot all meet at {angle} degrees; "
            f"with {n_clusters} clusters the angle must be at most {widest:.1f} degrees."
        )
    if dim < n_clusters:
        raise ValueError(f"clusters: dim ({dim}) must be at least n_clusters ({n_clusters}).")
    gram = np.full((n_clusters, n_clusters), cos) + (1.0 - cos) * np.eye(n_clusters)
    eigval, eigvec = np.linalg.eigh(gram)
    coords = eigvec * np.sqrt(np.clip(eigval, 0.0, None))  # rows are vectors with the wanted Gram matrix
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return coords @ rotation[:n_clusters]


def _check(size, n_tasks, n_clusters, dim, bottleneck, spread, noise) -> None:
    if size not in SIZES:
        raise ValueError(f"clusters: size must be one of {sorted(SIZES)}, not {size!r}.")
    for name, value in (("n_tasks", n_tasks), ("n_clusters", n_clusters), ("dim", dim), ("bottleneck", bottleneck)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"clusters: {name} must be a whole number >= 1, not {value!r}.")
    for name, value in (("spread", spread), ("noise", noise)):
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 <= value < math.inf:
            raise ValueError(f"clusters: {name} must be a finite number >= 0, not {value!r}.")
    if not 1 <= n_clusters <= n_tasks:
        raise ValueError(f"clusters: need 1 <= n_clusters <= n_tasks, got {n_clusters} clusters for {n_tasks} tasks.")


def _task_directions(n_tasks: int, n_clusters: int, angle: float, dim: int, spread: float,
                     rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The tasks of each cluster, the cluster of each task, and each task's unit direction: its cluster's centre
    jittered by ``spread``."""
    centres = cluster_directions(n_clusters, angle, dim, rng)
    members = np.array_split(np.arange(n_tasks), n_clusters)
    cluster_of = np.empty(n_tasks, dtype=int)
    for c, tasks_of_c in enumerate(members):
        cluster_of[tasks_of_c] = c
    jitter = rng.standard_normal((n_tasks, dim))
    jitter /= np.linalg.norm(jitter, axis=1, keepdims=True)
    directions = centres[cluster_of] + spread * jitter
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return members, cluster_of, directions


def make_clusters(
    size: str = "small",
    seed: int = 0,
    n_tasks: int = 4,
    n_clusters: int = 2,
    angle: float = 90.0,
    dim: int = 16,
    spread: float = 0.2,
    noise: float = 0.5,
    bottleneck: int = 1,
) -> TaskSuite:
    """Build the suite; the same arguments always give the same data."""
    _check(size, n_tasks, n_clusters, dim, bottleneck, spread, noise)
    rng = np.random.default_rng(seed)
    members, cluster_of, directions = _task_directions(n_tasks, n_clusters, angle, dim, spread, rng)

    names = [f"t{t}" for t in range(n_tasks)]

    def split(n: int) -> Split:
        x = rng.standard_normal((n, dim))
        clean = (np.maximum(x @ directions.T, 0.0) - _RELU_MEAN) / _RELU_STD
        y = clean + noise * rng.standard_normal(clean.shape)
        x_t = torch.tensor(x, dtype=torch.float32)
        return Split(x_t, {name: torch.tensor(y[:, t], dtype=torch.float32) for t, name in enumerate(names)})

    n = SIZES[size]
    train, val, test = split(n["n_train"]), split(n["n_val"]), split(n["n_test"])
    tasks = [Task(name, losses.mean_squared_error, {"mse": mse}, higher_is_better=False,
                  sample_loss=losses.squared_error) for name in names]
    return TaskSuite(
        name="clusters",
        tasks=tasks,
        train=train,
        val=val,
        test=test,
        input_shape=(dim,),
        meta={
            "groups": [[names[t] for t in m] for m in members],
            "cluster_of": cluster_of.tolist(),
            "angle": angle,
            "directions": directions,
            "noise": noise,
            "model": {"architecture": "bottleneck_mlp", "hidden": 32, "bottleneck": bottleneck},
        },
    )


def target_correlation(angle: float) -> float:
    """Correlation of the clean targets of two cluster centres meeting at ``angle`` degrees.

    For unit directions at angle a and x ~ N(0, I), E[relu(u.x) relu(v.x)] = (sin a + (pi - a) cos a) / (2 pi)
    (the arc-cosine kernel of degree 1, Cho & Saul, 2009); standardising gives the correlation.
    """
    a = math.radians(angle)
    second_moment = (math.sin(a) + (math.pi - a) * math.cos(a)) / (2.0 * math.pi)
    return (second_moment - _RELU_MEAN**2) / _RELU_STD**2


def shared_fraction_bound(angle: float, n_clusters: int = 2, bottleneck: int = 1) -> float:
    """The largest fraction of the clusters' clean target variance that ``bottleneck`` shared features can carry.

    With linear heads, the best k features span the top-k principal components of the C cluster targets, whose
    correlation matrix has eigenvalues 1 + (C - 1) rho (once) and 1 - rho (C - 1 times), rho the target
    correlation. Heads can flip signs, so strongly anti-correlated targets share features too.
    """
    rho = target_correlation(angle)
    eigenvalues = sorted([1 + (n_clusters - 1) * rho] + [1 - rho] * (n_clusters - 1), reverse=True)
    return min(1.0, sum(eigenvalues[:bottleneck]) / n_clusters)

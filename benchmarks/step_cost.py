"""The cost of one training step of each strategy, measured side by side against a plain PyTorch loop.

    python benchmarks/step_cost.py [--tasks 2 4 8 16] [--repeats 30] [--hidden 512] [--batch 256]

For every number of tasks T, every method gets its own copy of the same network and the same batch; the methods
take turns, one step each, for ``--repeats`` rounds (interleaved, so a slow moment of the machine hits all of
them), and the table reports the median step time and ratios:

- ``vs plain``: against a hand-written loop (forward, mean of the task losses, backward, Adam step);
- ``per group vs averaged``: a grouped step's time divided by m times Averaged's, m = groups per step;
- ``tracking``: SelectiveGroups during its warm-up (one task per group, affinity tracked) against Alternated with
  the same groups (nothing tracked): the price of measuring the proximal affinity;
- ``regrouping``: the time of one affinity propagation on a T x T affinity, as a fraction of SelectiveGroups'
  step, per call and amortised over ``regroup_every`` batches.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.nn import functional as F

from mtlutils import data, models
from mtlutils.affinity import groups_from_affinity
from mtlutils.strategies import Aggregated, Alternated, Averaged, RandomGroups, SelectiveGroups, adam


class PlainLoop:
    """The reference: what one would write by hand for averaged multi-task training."""

    def setup(self, net, tasks, seed=0):
        self.names = [t.name for t in tasks]
        self.optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step(self, net, batch):
        self.optimizer.zero_grad(set_to_none=True)
        out = net(batch.x)
        loss = sum(F.mse_loss(out[n].reshape(batch.y[n].shape), batch.y[n]) for n in self.names) / len(self.names)
        loss.backward()
        self.optimizer.step()


def methods(n_tasks: int) -> dict[str, tuple[object, int]]:
    """name -> (strategy, groups per step)."""
    half = max(1, n_tasks // 2)
    return {
        "plain loop": (PlainLoop(), 1),
        "Averaged": (Averaged(optimizer_factory=adam()), 1),
        "RandomGroups(k=T/2)": (RandomGroups(half, optimizer_factory=adam()), -(-n_tasks // half)),
        "Alternated": (Alternated(order="shuffle", optimizer_factory=adam()), n_tasks),
        "Alternated per-group opt": (Alternated(order="shuffle", optimizer_per_group=True, optimizer_factory=adam()), n_tasks),
        "SelectiveGroups (tracking)": (SelectiveGroups(warmup=10**9, optimizer_factory=adam()), n_tasks),
        "SelectiveGroups (no last pass)": (SelectiveGroups(warmup=10**9, measure_last=False, optimizer_factory=adam()), n_tasks),
        "Aggregated(upgrad)": (Aggregated("upgrad", optimizer_factory=adam()), 1),
    }


def measure(n_tasks: int, repeats: int, hidden: int, batch_size: int) -> list[dict]:
    suite = data.load("clusters", "smoke", n_tasks=n_tasks, n_clusters=1, dim=64, bottleneck=64)
    batch = next(suite.train.batches(batch_size))
    runs = methods(n_tasks)
    nets = {}
    for name, (strategy, _) in runs.items():
        nets[name] = models.for_suite(suite, seed=0, hidden=hidden)
        strategy.setup(nets[name], suite.tasks)
        strategy.step(nets[name], batch)  # warm-up: optimizer state, allocations
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (strategy, _) in runs.items():
            start = time.perf_counter()
            strategy.step(nets[name], batch)
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}

    affinity = np.random.default_rng(0).normal(size=(n_tasks, n_tasks)) * 1e-3 + np.eye(n_tasks) * 1e-2
    regroup = []
    for _ in range(max(5, repeats // 3)):
        start = time.perf_counter()
        groups_from_affinity(affinity, suite.task_names)
        regroup.append(time.perf_counter() - start)
    regroup_median = statistics.median(regroup)

    rows = []
    for name, (_, groups) in runs.items():
        rows.append(dict(T=n_tasks, method=name, ms=1e3 * median[name], groups=groups,
                         vs_plain=median[name] / median["plain loop"],
                         per_group_vs_averaged=median[name] / (groups * median["Averaged"])))
    tracked, untracked = median["SelectiveGroups (tracking)"], median["Alternated"]
    rows.append(dict(T=n_tasks, method="tracking overhead", value=tracked / untracked - 1))
    rows.append(dict(T=n_tasks, method="tracking overhead, no last pass",
                     value=median["SelectiveGroups (no last pass)"] / untracked - 1))
    for every in (1, 10, 50):
        rows.append(dict(T=n_tasks, method=f"regrouping every {every}", value=regroup_median / every / tracked,
                         ms=1e3 * regroup_median))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; trunk 64-{args.hidden}-{args.hidden}-64, "
          f"batch {args.batch}, {args.repeats} interleaved repeats, medians")
    for n_tasks in args.tasks:
        rows = measure(n_tasks, args.repeats, args.hidden, args.batch)
        print(f"\nT = {n_tasks}")
        print(f"  {'method':32s} {'ms/step':>8s} {'m':>3s} {'vs plain':>9s} {'/(m x Averaged)':>16s}")
        for r in rows:
            if "vs_plain" in r:
                print(f"  {r['method']:32s} {r['ms']:8.2f} {r['groups']:3d} {r['vs_plain']:8.2f}x "
                      f"{r['per_group_vs_averaged']:15.2f}x")
        for r in rows:
            if "value" in r:
                extra = f" (one call {r['ms']:.1f} ms)" if "ms" in r else ""
                print(f"  {r['method']:32s} {100 * r['value']:+7.1f}% of SelectiveGroups' group updates{extra}")


if __name__ == "__main__":
    main()

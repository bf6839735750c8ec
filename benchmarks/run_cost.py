"""The training seconds of typical runs of the book under two implementation choices, side by side in one process:

    python benchmarks/run_cost.py [--repeats 5]

- **Adam**: torch's fused Adam (what ``strategies.adam`` builds) against its default per-parameter loop;
- **heads**: grouped updates (RandomGroups, Alternated) that compute, after each group's step, the losses of the
  next group only (what they do) against computing every task's loss there, as the strategies that trace the losses
  of all tasks must (SelectiveGroups).

Each configuration is one run of the book in small mode (``experiments.train``, one torch thread), on the CPU. The
two variants of a comparison take turns for ``--repeats`` rounds with a new seed each round, so that a slow moment
of the machine hits both, and the table gives the median training seconds (``Run.cost["seconds"]``) and the ratio.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from mtlutils import config, experiments, strategies

CLUSTERS = dict(dataset="clusters", size="small", epochs=20, batch_size=32,
                data=dict(n_tasks=6, n_clusters=3, angle=120, bottleneck=3))
DIGITS = dict(dataset="digit_attributes", size="small", epochs=1, batch_size=64)
MULTIMNIST = dict(dataset="multimnist", size="small", epochs=1, batch_size=64)

ADAM_RUNS = {
    "clusters, single task": {**CLUSTERS, "strategy": "single_task", "strategy_kwargs": {"task": "t0"}},
    "clusters, SelectiveGroups": {**CLUSTERS, "strategy": "selective_groups",
                                  "strategy_kwargs": {"beta": 0.01, "warmup": 50, "regroup_every": 10}},
    "digit attributes, Averaged": {**DIGITS, "strategy": "averaged"},
    "MultiMNIST, Alternated": {**MULTIMNIST, "strategy": "alternated"},
    "MultiMNIST, UPGrad": {**MULTIMNIST, "strategy": "aggregated", "strategy_kwargs": {"aggregator": "upgrad"}},
}
HEAD_RUNS = {
    "digit attributes, k=1": {**DIGITS, "strategy": "random_groups", "strategy_kwargs": {"group_size": 1}},
    "digit attributes, k=2": {**DIGITS, "strategy": "random_groups", "strategy_kwargs": {"group_size": 2}},
}


def unfused_adam(lr: float = 1e-3, weight_decay: float = 0.0) -> strategies.OptimizerFactory:
    if weight_decay > 0:
        return lambda params: torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return lambda params: torch.optim.Adam(params, lr=lr)


class EveryHeadRandomGroups(strategies.RandomGroups):
    """RandomGroups that computes every task's loss after each group's step (and discards all but the next group's)."""

    def _update(self, net, batch):
        return self.update_groups(net, batch, self._groups(), trace=True)[0]


def seconds(config: dict, seed: int) -> float:
    return experiments.train({**config, "lr": 3e-3, "seed": seed, "device": "cpu"}).cost["seconds"]


def compare(title: str, runs: dict, registry: dict, name: str, variants: dict, repeats: int) -> None:
    """Train ``runs`` with ``registry[name]`` set to each of ``variants`` (label -> implementation) in turn."""
    own = registry[name]
    times = {(run, label): [] for run in runs for label in variants}
    for seed in range(repeats):
        for run, config in runs.items():
            for label, implementation in variants.items():
                registry[name] = implementation
                times[run, label].append(seconds(config, seed))
    registry[name] = own
    first, second = variants
    print(f"\n{title}: median training seconds of {repeats} runs each")
    print(f"{'run':<28} {first:>16} {second:>16} {'ratio':>7}")
    for run in runs:
        a, b = statistics.median(times[run, first]), statistics.median(times[run, second])
        print(f"{run:<28} {a:>16.2f} {b:>16.2f} {b / a:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    compare("Adam", ADAM_RUNS, config.OPTIMIZERS, "adam",
            {"default loop": unfused_adam, "fused": config.OPTIMIZERS["adam"]}, args.repeats)
    compare("Heads computed after each group's step", HEAD_RUNS, config.STRATEGIES, "random_groups",
            {"every task": EveryHeadRandomGroups, "next group": config.STRATEGIES["random_groups"]}, args.repeats)


if __name__ == "__main__":
    main()

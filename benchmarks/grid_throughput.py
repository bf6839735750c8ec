"""Runs per minute of one fixed grid: trained serially, in local worker processes and, optionally, on a Dask cluster;
and runs trained as one stacked network against runs trained alone.

    python benchmarks/grid_throughput.py [--runs 16] [--repeats 1] [--workers N] [--scheduler tcp://HOST:8786]
    python benchmarks/grid_throughput.py --stacked [--repeats 3]

``--stacked`` trains three grids twice each, in local workers, turn about: with ``MTLUTILS_BATCH=1`` (every run
alone) and with ``MTLUTILS_BATCH=8`` (``mtlutils.stacked``). The grids: 10 seeds of the clusters MLP (chapter 1's
averaged runs, small mode); chapter 6's sweep of averaged-loss weights on LeNet (MultiMNIST small, one epoch,
five weights x two seeds); and every method of chapter 6 (the weights, the book's methods, every torchjd method)
at two learning rates and two seeds, as its tuning grid holds them. It prints runs per minute both ways, the ratio,
and the largest difference between a run's final metrics trained alone and stacked.

The grid is chapter 6's MultiMNIST configuration in small mode (LeNet, two epochs, batch 64): Averaged and
Alternated at two learning rates, over as many seeds as make ``--runs`` runs. Every mode trains the same grid into
an empty cache of its own, one mode after the other in this one invocation:

- ``serial``: ``MTLUTILS_WORKERS=1``, every run in this process with one torch thread, as each run trains anywhere;
- ``serial, torch on every core``: the same runs in this process with torch's default thread count, as runs were
  trained before they went to workers (not bit-identical to the others: the thread count changes the last bits);
- ``local workers``: ``MTLUTILS_WORKERS`` processes (default: one per core), their start-up included;
- ``local workers, already started``: the same, on workers that a previous grid started (as a chapter's later
  grids find them), with their datasets built;
- ``Dask``: with ``--scheduler``, the cluster at that address.

With ``--repeats R`` the modes take turns R times (so that a slow moment of the machine hits them all) and each
line gives the median. Each line gives the wall time, runs per minute and the ratio to ``serial``; the last column says whether the mode's
results equal the serial ones bit for bit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from mtlutils import config, experiments, models, workers
from mtlutils.train import fit

BASE = dict(dataset="multimnist", size="small", epochs=2, batch_size=64)


def the_grid(runs: int) -> list[dict]:
    methods = [{"strategy": "averaged"}, {"strategy": "alternated"}]
    points = [{**m, "lr": lr} for m in methods for lr in (1e-3, 3e-3)]
    return [{**BASE, **points[i % len(points)], "seed": i // len(points)} for i in range(runs)]


def through_the_engine(configs: list[dict], env: dict, keep_workers: bool = False) -> list:
    experiments._suite.cache_clear()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with tempfile.TemporaryDirectory() as folder:
            return experiments.run_grid(configs, folder, progress=False)
    finally:
        if not keep_workers:
            workers.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def on_every_core(configs: list[dict]) -> list:
    experiments._suite.cache_clear()
    runs = []
    for described in configs:
        c = config.resolve(described)
        suite = experiments.suite_for(c)
        net = models.for_suite(suite, seed=c["seed"])
        runs.append(fit(net, suite, config.build_strategy(c), epochs=c["epochs"], batch_size=c["batch_size"],
                        seed=c["seed"], progress=False))
    return runs


def same_results(a: list, b: list) -> bool:
    return all(x.metrics == y.metrics and x.history.drop(columns="seconds").equals(y.history.drop(columns="seconds"))
               for x, y in zip(a, b, strict=True))


CHAPTER_6 = dict(dataset="multimnist", size="small", epochs=1, batch_size=64)
CHAPTER_6_METHODS = [
    *[{**CHAPTER_6, "strategy": "averaged", "strategy_kwargs": {"weights": {"left": w, "right": round(1 - w, 10)}}}
      for w in (0.1, 0.3, 0.5, 0.7, 0.9)],
    {**CHAPTER_6, "strategy": "alternated"}, {**CHAPTER_6, "strategy": "alternated",
                                               "strategy_kwargs": {"optimizer_per_group": True}},
    {**CHAPTER_6, "strategy": "random_groups", "strategy_kwargs": {"group_size": 1, "redraw": "step"}},
    {**CHAPTER_6, "strategy": "selective_groups", "strategy_kwargs": {"beta": 1e-2, "warmup": 50, "regroup_every": 10}},
    *[c for family in config.torchjd_methods(CHAPTER_6).values() for c in family.values()],
]
STACKED_GRIDS = {
    "clusters MLP, 10 seeds": experiments.grid(dict(dataset="clusters", size="small", epochs=10), seed=range(10)),
    "LeNet, chapter 6's weights": [
        {**CHAPTER_6, "seed": seed, "lr": 3e-3, "strategy": "averaged",
         "strategy_kwargs": {"weights": {"left": w, "right": round(1 - w, 10)}}}
        for w in (0.1, 0.3, 0.5, 0.7, 0.9) for seed in (0, 1)],
    "LeNet, chapter 6's methods": [{**c, "lr": lr, "seed": seed} for c in CHAPTER_6_METHODS
                                   for lr in (1e-3, 3e-3) for seed in (0, 1)],
}


def largest_metric_difference(configs: list, a: list, b: list) -> tuple[float, dict]:
    """The largest difference between two lists of runs' final metrics, and the configuration where it is."""
    return max(((abs(x.metrics[split][task][metric] - y.metrics[split][task][metric]), c)
                for c, x, y in zip(configs, a, b, strict=True) for split in x.metrics for task in x.metrics[split]
                for metric in x.metrics[split][task]), key=lambda pair: pair[0])


def stacked_against_alone(repeats: int, workers_count: int) -> None:
    """Each grid of ``STACKED_GRIDS`` trained alone and stacked, turn about, ``repeats`` times (medians)."""
    print(f"{'grid':<30} {'runs':>5} {'alone runs/min':>15} {'stacked runs/min':>17} {'ratio':>7} {'largest diff':>13}"
          "  (where)")
    warm = {"MTLUTILS_WORKERS": str(workers_count), "MTLUTILS_SCHEDULER": "", "MTLUTILS_BATCH": "1"}
    through_the_engine(STACKED_GRIDS["clusters MLP, 10 seeds"][:workers_count], warm, keep_workers=True)  # started
    for name, configs in STACKED_GRIDS.items():
        experiments.suite_for(configs[0])
        seconds, results = {"1": [], "8": []}, {}
        for _ in range(repeats):
            for batch in seconds:
                env = {"MTLUTILS_WORKERS": str(workers_count), "MTLUTILS_SCHEDULER": "", "MTLUTILS_BATCH": batch}
                start = time.perf_counter()
                results[batch] = through_the_engine(configs, env, keep_workers=True)
                seconds[batch].append(time.perf_counter() - start)
        alone, together = (statistics.median(seconds[b]) for b in ("1", "8"))
        difference, where = largest_metric_difference(configs, results["1"], results["8"])
        print(f"{name:<30} {len(configs):>5} {60 * len(configs) / alone:>15.1f} {60 * len(configs) / together:>17.1f} "
              f"{alone / together:>6.2f}x {difference:>13.2g}  ({config.describe_config(where)})", flush=True)
    workers.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--scheduler", default=None, help="the address of a Dask scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--stacked", action="store_true", help="runs stacked against runs alone (see above)")
    args = parser.parse_args()
    if args.stacked:
        return stacked_against_alone(args.repeats, args.workers)
    configs = the_grid(args.runs)
    experiments.suite_for(BASE)  # MultiMNIST small is built once here first, so no mode pays a first build from disk
    local = {"MTLUTILS_WORKERS": str(args.workers), "MTLUTILS_SCHEDULER": ""}
    modes = [
        ("serial", lambda: through_the_engine(configs, {"MTLUTILS_WORKERS": "1", "MTLUTILS_SCHEDULER": ""})),
        (f"serial, torch on every core ({torch.get_num_threads()} threads)", lambda: on_every_core(configs)),
        (f"local workers ({args.workers} processes)", lambda: through_the_engine(configs, local)),
        ("local workers, already started", lambda: through_the_engine(configs, local)),
    ]
    if args.scheduler:
        modes.append((f"Dask at {args.scheduler}", lambda: through_the_engine(configs, {"MTLUTILS_SCHEDULER": args.scheduler})))
    print(f"{len(configs)} runs of {BASE} on {os.cpu_count()} cores, device {config.resolve(BASE)['device']}")
    print(f"{'mode':<44} {'seconds':>8} {'runs/min':>9} {'vs serial':>10} {'same as serial':>15}")
    seconds, results = {name: [] for name, _ in modes}, {}
    for _ in range(args.repeats):
        for name, train in modes:
            if "already started" in name:  # the workers of a chapter's earlier grid, datasets built
                through_the_engine(configs[: args.workers], local, keep_workers=True)
            start = time.perf_counter()
            results[name] = train()
            seconds[name].append(time.perf_counter() - start)
    reference = modes[0][0]
    for name, _ in modes:
        median = statistics.median(seconds[name])
        ratio = statistics.median(seconds[reference]) / median
        same = "yes" if same_results(results[reference], results[name]) else "no"
        print(f"{name:<44} {median:>8.1f} {60 * len(configs) / median:>9.1f} {ratio:>9.2f}x {same:>15}", flush=True)

if __name__ == "__main__":
    main()

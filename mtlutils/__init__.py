"""mtlutils: the helper package of the multi-task optimization book. ``import mtlutils as mtl`` gives what the
chapters use: the modules below as ``mtl.NAME``, and the everyday functions as ``mtl.load``, ``mtl.fit``,
``mtl.grid``, ``mtl.run``, ``mtl.run_grid``, ``mtl.tune_then_repeat``, ``mtl.compare_with``, ``mtl.settings``,
``mtl.split_seeds``, ``mtl.tie_seeds`` and ``mtl.glue``.

Modules, from the bottom up (a module imports only those above it in this list):

- data and networks: ``tasks`` (Task, TaskSuite, Split), ``metrics`` (per-task metrics, Delta_m), ``datasets``
  (one module a dataset, and the prepared-file reader), ``data`` (``load``), ``models`` (MultiTaskNet and the
  standard network of each suite), ``toy`` (a 2-D two-objective landscape);
- training: ``affinity`` (proximal and lookahead affinity, gradient cosines, grouping), ``strategies`` (how one
  batch updates the network: a package of plain, grouped, selective and torchjd-wrapped updates, with the
  optimizers), ``runtime`` (the device and the number of threads a run computes with), ``record`` (``Run``),
  ``checkpoint`` (resuming a run), ``train`` (``fit``);
- experiments: ``config`` (a run's configuration: defaults, checks, cache keys, registries, chapter settings and
  seeds), ``cache`` (verified run files), ``published`` (the book's runs, fetched from its site), ``workers``
  (where runs train: here, local processes or Dask), ``stacked`` (runs that differ in seed, data seed, learning
  rate, weight decay or loss weights, trained as one stacked network, with ``stacked_members``, ``stacked_steps``,
  ``stacked_forward`` and ``stacked_optimizers``),
  ``experiments`` (cached grids of runs, step timings), ``stats`` (intervals, paired differences, resolution and
  their words), ``tuning`` (grids that bracket each method's choice, runs read at their chosen step, budgets from
  learning curves, comparisons);
- results: ``pareto`` (dominance, and the Pareto front of trade-offs between tasks);
- measures of affinity: ``measures`` (a run's affinity measures against known groups and realised transfer);
- the book: ``plots`` (one figure style and the recurring figures), ``prose`` (computed sentences), ``exercises``
  (the checks of the chapters' exercises).
"""

from . import (
    affinity,
    cache,
    checkpoint,
    config,
    data,
    exercises,
    experiments,
    measures,
    metrics,
    models,
    pareto,
    plots,
    prose,
    published,
    record,
    runtime,
    stacked,
    stats,
    strategies,
    tasks,
    toy,
    train,
    tuning,
    workers,
)
from .config import settings, split_seeds, tie_seeds
from .data import load
from .experiments import grid, run, run_grid
from .prose import glue
from .train import fit
from .tuning import compare_with, tune_then_repeat

__version__ = "0.1.0"

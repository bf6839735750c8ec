"""Grids of runs (methods x seeds x hyperparameters) cached on disk, and their summaries with confidence intervals.

A run is described by a plain configuration dict (see ``DEFAULTS``); its cache file is named by a hash of the
full configuration, so re-running a notebook reuses every finished run and trains only what changed. The runs of
a grid train side by side, in worker processes on this machine's cores or on a Dask cluster (``mtlutils.workers``);
their results come back here, and only this process writes the cache (``mtlutils.cache``).

A run on the CPU trains with one torch thread wherever it runs, so its result depends on its configuration alone,
not on the machine's core count or on how the grid was spread over workers: serial, local and Dask runs agree bit
for bit. ``device="auto"`` is resolved where the grid is asked for (``$MTLUTILS_DEVICE`` when set, else the GPU
when torch sees one, else the CPU), and the resolved device is part of the cache key, so a CPU result never
stands in for a GPU one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm import tqdm

from . import cache, data, models, toy, workers
from .metrics import delta_m
from .strategies import (
    AffinityProbe,
    Aggregated,
    CountMatchedGroups,
    Alternated,
    Averaged,
    RandomGroups,
    Scalarized,
    SelectiveGroups,
    SingleTask,
    SplitBatchWeighted,
    Strategy,
    adam,
    sgd,
)
from . import strategies
from .tasks import Task, TaskSuite
from .train import Run, fit, resolve_device

DEFAULTS = dict(
    dataset="clusters",
    size="small",
    data_seed=0,
    data={},
    model={},
    strategy="averaged",
    strategy_kwargs={},
    optimizer="adam",
    lr=1e-3,
    weight_decay=0.0,
    epochs=10,
    steps=None,
    batch_size=64,
    seed=0,
    eval_every=None,
    eval_at=None,
    gradient_cosine_every=None,
    device="auto",
)

STRATEGIES = {
    "single_task": SingleTask,
    "averaged": Averaged,
    "alternated": Alternated,
    "random_groups": RandomGroups,
    "count_matched_groups": CountMatchedGroups,
    "selective_groups": SelectiveGroups,
    "aggregated": Aggregated,
    "scalarized": Scalarized,
    "split_batch_weighted": SplitBatchWeighted,
    "affinity_probe": AffinityProbe,
}

# The torchjd methods for two tasks as the book names them, by family: (strategy, its keyword, registry, labels).
TORCHJD_FAMILIES = {
    "gradient aggregator": ("aggregated", "aggregator", strategies.AGGREGATORS, {
        "pcgrad": "PCGrad", "mgda": "MGDA", "cagrad": "CAGrad", "nashmtl": "Nash-MTL", "upgrad": "UPGrad",
        "imtlg": "IMTL-G", "dualproj": "DualProj", "aligned_mtl": "Aligned-MTL", "config": "ConFIG",
        "graddrop": "GradDrop", "gradvac": "GradVac", "fairgrad": "FairGrad", "excess_mtl": "ExcessMTL",
        "pcd": "PCD", "random": "random gradient weights", "cr_mogm": "CR-MOGM (MGDA)"}),
    "independent batches": ("split_batch_weighted", "weighting", strategies.SPLIT_WEIGHTINGS, {
        "modo": "MoDo", "sdmgrad": "SDMGrad"}),
    "loss scalarizer": ("scalarized", "scalarizer", strategies.SCALARIZERS, {
        "uw": "uncertainty weighting", "dwa": "DWA", "famo": "FAMO", "stch": "STCH", "imtl_l": "IMTL-L",
        "geometric_mean": "geometric mean", "random": "random loss weights", "cosmos": "COSMOS", "pbi": "PBI"}),
}
COVERED_BY_AVERAGED = {"mean": "Mean (aggregator or scalarizer) is the mean of the task losses' gradients: Averaged "
                              "with uniform weights, the w=0.50 point of the front."}


def torchjd_methods(base: Mapping) -> dict[str, dict[str, dict]]:
    """Every torchjd method that applies to two tasks, as ``{family: {label: configuration on top of base}}``.

    Every name of ``strategies.AGGREGATORS``, ``SPLIT_WEIGHTINGS`` and ``SCALARIZERS`` must have a label here, so a
    method added there cannot be left out of a comparison that claims to hold all of them."""
    families = {}
    for family, (strategy, keyword, registry, labels) in TORCHJD_FAMILIES.items():
        unlabelled = set(registry) - set(labels) - set(COVERED_BY_AVERAGED)
        if unlabelled:
            raise KeyError(f"torchjd_methods: no label for the {family} method(s) {sorted(unlabelled)}; add them to "
                           "experiments.TORCHJD_FAMILIES.")
        families[family] = {label: {**base, "strategy": strategy, "strategy_kwargs": {keyword: name}}
                            for name, label in labels.items()}
    return families
OPTIMIZERS = {"adam": adam, "sgd": sgd}


def settings(table: Mapping[str, Mapping], size: str, overrides: Mapping | None = None) -> dict:
    """A chapter's settings: ``table[size]`` with the entries of ``overrides`` replaced. An unknown size or
    setting is refused with the valid ones, and so is an override of another kind than the setting it replaces
    (a whole number, a number, a list, a mapping, a string), a count below 1 (``seeds`` below 2) or a number that
    is not finite."""
    if size not in table:
        raise ValueError(f"SIZE must be one of {', '.join(map(repr, table))}, not {size!r}.")
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(table[size])
    if unknown:
        raise KeyError(f"OVERRIDES names unknown setting(s) {sorted(unknown)}; this chapter's are {sorted(table[size])}.")
    for name, value in overrides.items():
        _check_override(name, value, table[size][name], top=True)
    return {**table[size], **overrides}


def _kind(value) -> str:
    if isinstance(value, bool):
        return "True or False"
    if isinstance(value, numbers.Integral):
        return "a whole number"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def _check_override(name: str, value, default, top: bool = False) -> None:
    wanted, given = _kind(default), _kind(value)
    if given != wanted and not (wanted == "a number" and given == "a whole number"):
        raise TypeError(f"OVERRIDES[{name!r}] = {value!r} is {given}; this setting is {wanted}, like {default!r}.")
    if given in ("a whole number", "a number") and not math.isfinite(value):
        raise ValueError(f"OVERRIDES[{name!r}] = {value!r}: give a finite number.")
    least = 2 if name == "seeds" else 1 if top else 0
    if given == "a whole number" and value < least:
        raise ValueError(f"OVERRIDES[{name!r}] = {value!r}: give at least {least}"
                         + (" (one seed has no confidence interval)." if name == "seeds" else "."))
    if given == "a mapping":
        for key in set(value) & set(default):
            _check_override(f"{name}.{key}", value[key], default[key])


def _whole(least: int, optional: bool = False) -> Callable[[object], bool]:
    return lambda v: (optional and v is None) or (
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= least)


def _finite(least: float, strict: bool) -> Callable[[object], bool]:
    return lambda v: (isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                      and (v > least if strict else v >= least))


_text, _mapping = (lambda v: isinstance(v, str)), (lambda v: isinstance(v, Mapping))
RULES = {  # configuration key -> (check, what is allowed)
    "dataset": (_text, "a dataset name, e.g. 'clusters'"), "size": (_text, "'smoke', 'small' or 'full'"),
    "data_seed": (_whole(0), "a whole number >= 0"), "data": (_mapping, "a mapping of dataset options"),
    "model": (_mapping, "a mapping of model options"), "strategy": (_text, "a strategy name, e.g. 'averaged'"),
    "strategy_kwargs": (_mapping, "a mapping of the strategy's options"),
    "optimizer": (_text, "an optimizer name, 'adam' or 'sgd'"),
    "lr": (_finite(0.0, strict=True), "a finite number > 0, e.g. 1e-3"),
    "weight_decay": (_finite(0.0, strict=False), "a finite number >= 0, e.g. 0 or 1e-4"),
    "epochs": (_whole(1, optional=True), "a whole number >= 1, or None when steps is given"),
    "steps": (_whole(1, optional=True), "a whole number >= 1, or None to train for epochs"),
    "batch_size": (_whole(1), "a whole number >= 1"), "seed": (_whole(0), "a whole number >= 0"),
    "eval_every": (_whole(1, optional=True), "a whole number >= 1, or None"),
    "eval_at": (lambda v: v is None or (isinstance(v, (list, tuple)) and all(map(_whole(1), v))),
                "a list of whole numbers >= 1, or None"),
    "gradient_cosine_every": (_whole(1, optional=True), "a whole number >= 1, or None"),
    "device": (_text, "'auto', 'cpu', 'cuda' or 'cuda:N'"),
}


def complete(config: Mapping) -> dict:
    """The configuration with every default filled in, checked before any work: an unknown key, or a value of the
    wrong kind or out of range (``RULES``), is refused with the setting, the value and what is allowed."""
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise KeyError(f"Unknown configuration key(s) {sorted(unknown)}; the keys are {sorted(DEFAULTS)}.")
    c = {**DEFAULTS, **config}
    for key, (check, allowed) in RULES.items():
        if not check(c[key]):
            raise ValueError(f"Run setting {key}={c[key]!r} is not allowed: {key} must be {allowed}.")
    if c["epochs"] is None and c["steps"] is None:
        raise ValueError("Run settings epochs=None and steps=None: give the number of epochs or of steps to train.")
    return c


def resolve(config: Mapping) -> dict:
    """The complete configuration with ``device="auto"`` replaced by the device it means here (see the module)."""
    c = complete(config)
    if c["device"] == "auto":
        c["device"] = os.environ.get("MTLUTILS_DEVICE", "").strip() or str(resolve_device("auto"))
    return c


def config_key(config: Mapping) -> str:
    """A stable hash of the resolved configuration (and of the cache format)."""
    text = json.dumps({"format": cache.FORMAT, **resolve(config)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def default_cache_dir() -> Path:
    """``$MTLUTILS_CACHE`` or ``~/.cache/mtlutils/runs``."""
    return Path(os.environ.get("MTLUTILS_CACHE", Path.home() / ".cache" / "mtlutils" / "runs"))


@contextlib.contextmanager
def one_thread():
    """Torch on one thread inside the block: what every run trains with (see the module)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.lru_cache(maxsize=8)
def _suite(dataset: str, size: str, data_seed: int, data_json: str) -> TaskSuite:
    with one_thread():  # the same data bit for bit, whichever process builds it
        return data.load(dataset, size, seed=data_seed, **json.loads(data_json))


def suite_for(config: Mapping) -> TaskSuite:
    """The dataset of a configuration (kept in memory across the runs of a grid)."""
    c = complete(config)
    return _suite(c["dataset"], c["size"], c["data_seed"], json.dumps(c["data"], sort_keys=True))


def build_strategy(config: Mapping) -> Strategy:
    c = complete(config)
    if c["strategy"] not in STRATEGIES:
        raise ValueError(f"Unknown strategy {c['strategy']!r}; choose from {sorted(STRATEGIES)}.")
    if c["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {c['optimizer']!r}; choose from {sorted(OPTIMIZERS)}.")
    factory = OPTIMIZERS[c["optimizer"]](lr=c["lr"], weight_decay=c["weight_decay"])
    return STRATEGIES[c["strategy"]](**c["strategy_kwargs"], optimizer_factory=factory)


def train(config: Mapping, progress: bool = False) -> Run:
    """Train the run a configuration describes (no cache), with torch on one thread."""
    c = resolve(config)
    with one_thread():
        suite = suite_for(c)
        net = models.for_suite(suite, seed=c["seed"], **c["model"])
        return fit(
            net, suite, build_strategy(c), epochs=c["epochs"], steps=c["steps"], batch_size=c["batch_size"],
            seed=c["seed"], eval_every=c["eval_every"], eval_at=c["eval_at"], progress=progress,
            gradient_cosine_every=c["gradient_cosine_every"], device=c["device"],
        )


def run(config: Mapping, cache_dir: str | Path | None = None) -> Run:
    """The run of one configuration: read from the cache when present, otherwise trained and stored."""
    return run_grid([config], cache_dir, progress=False)[0]


def toy_paths(methods: Mapping[str, Mapping], steps: int, imbalance: bool = False) -> dict[str, np.ndarray]:
    """The path of each named strategy configuration (``strategy``, ``strategy_kwargs``, ``optimizer``, ``lr``, ...)
    on the toy landscape from every one of ``toy.STARTS``, shape (steps + 1, starts, 2), computed side by side where
    a grid's runs are (``mtlutils.workers``).

    An aggregator couples the points of one network, so under ``"aggregated"`` every start is its own trajectory;
    the other strategies move every start at once, which gives each point exactly its own path (``toy.trajectory``).
    """
    jobs = [(complete(config), starts, steps, imbalance) for config in methods.values()
            for starts in ([[s] for s in toy.STARTS] if config["strategy"] == "aggregated" else [toy.STARTS])]
    paths = dict(workers.execute(_toy_path, jobs))
    failed = [outcome.message for outcome in paths.values() if isinstance(outcome, workers.Failure)]
    if failed:
        raise RuntimeError(f"toy_paths: {len(failed)} path(s) failed: {failed[0]}")
    per_method = iter(np.concatenate([paths[i] for i in range(len(jobs))], axis=1).transpose(1, 0, 2))
    return {name: np.stack([next(per_method) for _ in toy.STARTS], axis=1) for name in methods}


def _toy_path(job: tuple) -> np.ndarray:
    config, starts, steps, imbalance = job
    with one_thread():
        return toy.trajectory(build_strategy(config), starts, steps, imbalance)


def grid(base: Mapping | None = None, **axes: Iterable) -> list[dict]:
    """Every combination of the values in ``axes`` on top of ``base``: ``grid(b, seed=[0, 1], lr=[1e-3, 1e-2])``."""
    names = list(axes)
    return [{**(base or {}), **dict(zip(names, values))} for values in itertools.product(*(axes[n] for n in names))]


def single_task_configs(config: Mapping, task_names: Iterable[str]) -> list[dict]:
    """The single-task baselines of a multi-task configuration: one run per task, everything else equal."""
    return [{**config, "strategy": "single_task", "strategy_kwargs": {"task": name}} for name in task_names]


def pair_transfer(base: Mapping, tasks: Iterable[Task], seeds: Iterable[int], cache_dir: str | Path | None = None,
                  progress: bool = True, among: Iterable[str] | None = None) -> pd.DataFrame:
    """The realised transfer of every pair of tasks, seed by seed: a network trained on the mean of the two losses
    alone (``Averaged`` with weight 1/2 on each, 0 on the other tasks) against the single-task networks of the same
    seed. ``gain`` is Delta_m over the two tasks (percent, positive when training them together helped).
    ``among`` names the tasks whose pairs are trained (by default all of ``tasks``, the suite's tasks).

    Returns one row per (seed, pair), the pairs in ``itertools.combinations`` order of the tasks, with columns
    ``seed``, ``pair`` (its index), ``first``, ``second`` and ``gain``.
    """
    tasks, seeds = list(tasks), list(seeds)
    all_names = [t.name for t in tasks]
    chosen = set(all_names if among is None else among)
    if chosen - set(all_names):
        raise ValueError(f"pair_transfer: among names {sorted(chosen - set(all_names))}, which are not tasks of the "
                         f"suite {all_names}.")
    tasks = [t for t in tasks if t.name in chosen]
    names = [t.name for t in tasks]
    pairs = list(itertools.combinations(names, 2))
    jobs = [(seed, pair) for seed in seeds for pair in pairs]
    configs = [{**base, "seed": seed, "strategy": "averaged",
                "strategy_kwargs": {"weights": {n: 0.5 if n in pair else 0.0 for n in all_names}}} for seed, pair in jobs]
    singles = [c for seed in seeds for c in single_task_configs({**base, "seed": seed}, names)]
    runs = run_grid(configs + singles, cache_dir, progress)
    alone = {(c["seed"], c["strategy_kwargs"]["task"]): r.metrics["test"] for c, r in zip(singles, runs[len(jobs):])}
    rows = []
    for (seed, pair), result in zip(jobs, runs):
        chosen = [t for t in tasks if t.name in pair]
        gain = delta_m({t.name: result.metrics["test"][t.name] for t in chosen},
                       {t.name: alone[seed, t.name][t.name] for t in chosen}, chosen)
        rows.append({"seed": seed, "pair": pairs.index(pair), "first": pair[0], "second": pair[1], "gain": gain})
    return pd.DataFrame(rows)


def steps_for_passes(methods: Mapping[str, Mapping], passes: int, seed: int = 0, calibration_steps: int = 2,
                     cache_dir: str | Path | None = None) -> dict[str, int]:
    """For every method, the number of steps that spends ``passes`` forward and backward passes, from its passes per
    step in a short calibration run (``calibration_steps`` steps on ``seed``). A method whose passes per step change
    during training (groups chosen as it goes) gets the steps its first steps predict."""
    names = list(methods)
    runs = run_grid([{**methods[n], "epochs": None, "steps": calibration_steps, "seed": seed, "eval_at": None}
                     for n in names], cache_dir, progress=False)
    per_step = {n: (r.cost["forward_passes"] + r.cost["backward_passes"]) / r.cost["steps"] for n, r in zip(names, runs)}
    return {n: max(1, int(round(passes / per_step[n]))) for n in names}


class GridError(RuntimeError):
    """Runs of a grid failed; ``failures`` lists (configuration, message). The other runs finished and are cached."""

    def __init__(self, failures: list[tuple[dict, str]]):
        self.failures = failures
        lines = "\n".join(f"- {describe_config(config)}: {message}" for config, message in failures)
        super().__init__(f"{len(failures)} run(s) of the grid failed; the others finished and are cached, so running "
                         f"the grid again trains only these:\n{lines}")


def describe_config(config: Mapping) -> str:
    """The entries of a configuration that differ from ``DEFAULTS``, as compact JSON."""
    changed = {k: v for k, v in complete(config).items() if DEFAULTS[k] != v}
    return json.dumps(changed, sort_keys=True, default=str)


def run_grid(configs: Iterable[Mapping], cache_dir: str | Path | None = None, progress: bool = True) -> list[Run]:
    """Every configuration's run: read from the cache, or trained where ``mtlutils.workers`` sends the runs (on this
    machine's cores by default) and stored as each one finishes. One progress bar counts the runs trained, found
    in the cache and failed. Failed runs raise one GridError after the others have finished."""
    store = cache.RunCache(cache_dir if cache_dir is not None else default_cache_dir())
    resolved = [resolve(c) for c in configs]
    unique = {config_key(c): c for c in resolved}  # a configuration asked for twice trains once
    found = {key: hit for key, config in unique.items() if (hit := store.load(key, config)) is not None}
    todo = [(key, config) for key, config in unique.items() if key not in found]
    counts = {"trained": 0, "cached": len(found), "failed": 0}
    failures = []
    with tqdm(total=len(unique), initial=len(found), disable=not progress, desc=f"runs {workers.where()}") as bar:
        bar.set_postfix(counts)
        for index, outcome in workers.execute(train, [config for _, config in todo]):
            key, config = todo[index]
            if isinstance(outcome, workers.Failure):
                failures.append((config, outcome.message))
                counts["failed"] += 1
            else:
                store.store(key, config, outcome)
                found[key] = outcome
                counts["trained"] += 1
            bar.set_postfix(counts)
            bar.update()
    if failures:
        raise GridError(failures)
    return [found[config_key(c)] for c in resolved]


def results(configs: Iterable[Mapping], runs: Iterable[Run], split: str = "test",
            label: Callable[[dict], str] | None = None) -> pd.DataFrame:
    """A long table, one row per (run, task, metric) of ``split``, with the configuration's scalar fields as columns
    (nested dicts flattened as ``key.subkey``) and, when ``label`` is given, a ``method`` column ``label(config)``."""
    rows = []
    for config, result in zip(configs, runs, strict=True):
        c = complete(config)
        fields = {k: v for k, v in c.items() if not isinstance(v, (dict, list))}
        fields.update({f"{k}.{kk}": vv for k, v in c.items() if isinstance(v, dict) for kk, vv in v.items()})
        if label is not None:
            fields["method"] = label(c)
        for task, scores in result.metrics[split].items():
            for metric, value in scores.items():
                rows.append({**fields, "task": task, "metric": metric, "value": value})
    return pd.DataFrame(rows)


def best_hyperparameters(table: pd.DataFrame, hyper: list[str], method: str = "method", value: str = "value",
                         higher_is_better: bool = True) -> pd.DataFrame:
    """For every method, the hyperparameter values whose mean ``value`` (over seeds, tasks and metrics) is best.

    Pass the validation table: the test numbers of the chosen settings are then an honest estimate.
    """
    means = table.groupby([method, *hyper], as_index=False)[value].mean()
    best = means.groupby(method)[value].idxmax() if higher_is_better else means.groupby(method)[value].idxmin()
    return means.loc[best, [method, *hyper]].reset_index(drop=True)


@dataclass
class Tuned:
    """The runs of ``tune_then_repeat``: ``chosen`` (one row per method with its chosen hyperparameters), and the
    tuning runs and the repeated runs at the chosen values as (method, configuration, run) triples."""

    chosen: pd.DataFrame
    tuning: list[tuple[str, dict, Run]]
    runs: list[tuple[str, dict, Run]]

    def table(self, split: str = "test") -> pd.DataFrame:
        """``results`` of the repeated runs on ``split``, with a ``method`` column."""
        return _labelled(self.runs, split)


def _labelled(triples: list[tuple[str, dict, Run]], split: str) -> pd.DataFrame:
    names = {config_key(c): name for name, c, _ in triples}
    return results([c for _, c, _ in triples], [r for _, _, r in triples], split, label=lambda c: names[config_key(c)])


def split_seeds(first: int, reporting: int, tuning: int = 1) -> tuple[list[int], list[int]]:
    """The seeds of a chapter: ``tuning`` seeds from ``first`` that choose the hyperparameters, then ``reporting``
    other seeds that report the results, so that no reported run is one its hyperparameters were chosen on. A
    chapter that tunes nothing asks for ``tuning=0``."""
    if not _whole(0)(first):
        raise TypeError(f"SEED must be a whole number >= 0 (the first seed), not {first!r}.")
    if not _whole(2)(reporting) or not _whole(0)(tuning):
        raise ValueError(f"split_seeds: give at least 2 reporting seeds and 0 or more tuning seeds ({reporting=}, "
                         f"{tuning=}); one reporting seed has no confidence interval.")
    return list(range(first, first + tuning)), list(range(first + tuning, first + tuning + reporting))


def tune_then_repeat(methods: Mapping[str, Mapping], grid: Mapping[str, Iterable], seeds: Iterable[int],
                     tuning_seeds: Iterable[int], cache_dir: str | Path | None = None, progress: bool = True) -> Tuned:
    """Give every method the same hyperparameter ``grid``: train each grid point on the ``tuning_seeds``, keep the
    point with the best mean validation score (over tuning seeds, tasks and metrics, higher is better), then train
    every one of ``seeds`` there.

    ``methods`` maps a name to its configuration; ``grid`` maps configuration keys to candidate values, e.g.
    ``{"lr": [1e-3, 3e-3]}``. The reporting ``seeds`` and the ``tuning_seeds`` must be disjoint: a run the choice
    was made on would flatter the method it chose for. It costs (grid points x tuning seeds + seeds) runs per method.
    """
    seeds, tuning_seeds, grid = list(seeds), list(tuning_seeds), {k: list(v) for k, v in grid.items()}
    if not seeds or not tuning_seeds or not grid or not all(grid.values()):
        raise ValueError("tune_then_repeat: give at least one seed, one tuning seed and one value per grid key "
                         f"({seeds=}, {tuning_seeds=}, {grid=}).")
    if set(seeds) & set(tuning_seeds):
        raise ValueError(f"tune_then_repeat: seeds {sorted(set(seeds) & set(tuning_seeds))} both tune and report; "
                         "the reporting seeds must be disjoint from the tuning seeds (see split_seeds).")
    keys = {}
    for name, config in methods.items():
        key = config_key({k: v for k, v in config.items() if k not in grid and k != "seed"})
        if key in keys:
            raise ValueError(f"tune_then_repeat: methods {keys[key]!r} and {name!r} have the same configuration.")
        keys[key] = name
    points = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    tuning = [(name, {**config, **point, "seed": seed}) for name, config in methods.items() for point in points
              for seed in tuning_seeds]
    tuning = [(n, c, r) for (n, c), r in zip(tuning, run_grid([c for _, c in tuning], cache_dir, progress))]
    chosen = best_hyperparameters(_labelled(tuning, "val"), list(grid))
    chosen = chosen.set_index("method").loc[list(methods)].reset_index()
    repeated = [(row["method"], {**methods[row["method"]], **{k: row[k] for k in grid}, "seed": seed})
                for row in chosen.to_dict("records") for seed in seeds]
    runs = run_grid([c for _, c in repeated], cache_dir, progress)
    return Tuned(chosen, tuning, [(n, c, r) for (n, c), r in zip(repeated, runs)])


@dataclass
class Comparison:
    """Methods against a reference method, tuned alike (``compare_with``): the ``tuned`` runs, their ``test`` table,
    each run's per-task change against the reference run of its seed (``relative``), its Delta_m (``delta``: method,
    seed, relative) and one ``overview`` row per other method: the interval of its Delta_m, its passes per step,
    seconds per epoch (and their ratio to the reference's) and its chosen hyperparameters."""

    tuned: Tuned
    test: pd.DataFrame
    relative: pd.DataFrame
    delta: pd.DataFrame
    overview: pd.DataFrame


def compare_with(methods: Mapping[str, Mapping], reference: str, grid: Mapping[str, Iterable], seeds: Iterable[int],
                 tuning_seeds: Iterable[int], tasks: Iterable[Task], cache_dir: str | Path | None = None,
                 progress: bool = True) -> Comparison:
    """Tune every method alike (``tune_then_repeat``) and compare each with ``reference`` seed by seed, in Delta_m
    over ``tasks`` (positive: better than the reference)."""
    if reference not in methods:
        raise KeyError(f"compare_with: the reference {reference!r} is not among the methods {sorted(methods)}.")
    seeds = list(seeds)
    tuned = tune_then_repeat(methods, grid, seeds, tuning_seeds, cache_dir, progress)
    test = tuned.table("test")
    relative = relative_to_baseline(test, list(tasks), match=["seed"], baseline=reference, method="method")
    delta = relative.groupby(["method", "seed"], as_index=False).relative.mean()
    summary = summarize(delta, by=["method"], value="relative").set_index("method")
    summary["half_width"] = (summary.ci_high - summary.ci_low) / 2
    cost = pd.DataFrame([dict(method=n, passes=(r.cost["forward_passes"] + r.cost["backward_passes"]) / r.cost["steps"],
                              seconds_per_epoch=r.cost["seconds"] / r.cost["epochs"]) for n, _, r in tuned.runs])
    cost = cost.groupby("method").mean()
    cost[f"seconds vs {reference}"] = cost.seconds_per_epoch / cost.loc[reference, "seconds_per_epoch"]
    others = [m for m in methods if m != reference]
    overview = summary.reindex(others).join(cost).join(tuned.chosen.set_index("method"))
    return Comparison(tuned, test, relative, delta, overview)


HYPERPARAMETER_NAMES = {"lr": "learning rate", "weight_decay": "weight decay"}


def grid_edge_note(chosen: pd.DataFrame, grid: Mapping[str, Iterable], method: str = "method") -> str:
    """A sentence naming the methods whose chosen value lies at an end of a grid axis of three or more values
    (where a wider grid could have chosen differently), or saying that none does."""
    notes = []
    for key, values in grid.items():
        values = list(values)
        if len(values) < 3:
            continue
        edge = chosen[chosen[key].isin([min(values), max(values)])]
        if len(edge):
            picks = ", ".join(f"{name}: {value:g}" for name, value in zip(edge[method], edge[key]))
            notes.append(f"{len(edge)} of the {len(chosen)} methods chose a {HYPERPARAMETER_NAMES.get(key, key)} at the "
                         f"edge of the grid ({picks})")
    if notes:
        return "; ".join(notes) + ", so a wider grid could move them."
    searched = [HYPERPARAMETER_NAMES.get(k, k) for k, v in grid.items() if len(list(v)) >= 3]
    return f"Every method chose a {' and a '.join(searched)} inside the grid." if searched else ""


def confidence_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval (low, high) of the mean; a single value has an infinite interval."""
    x = np.asarray(list(values), dtype=float)
    if x.size == 0:
        raise ValueError("confidence_interval: no values.")
    if not np.isfinite(x).all():
        raise ValueError(f"confidence_interval: {int((~np.isfinite(x)).sum())} of the {x.size} values are NaN or "
                         "infinite; drop the runs that have none (and say so) before summarising.")
    mean = float(x.mean())
    if x.size == 1:
        return mean, -np.inf, np.inf
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def paired_differences(wide: pd.DataFrame, reference, level: float = 0.95) -> pd.DataFrame:
    """For every other column of ``wide`` (rows: seeds, columns: methods), the mean and confidence interval of its
    difference from the ``reference`` column, seed by seed: one ``summarize`` row per column, with the interval's
    ``half_width``, the resolution of the comparison (``resolution``).

    Runs with the same seed share their initialisation and batches, so the paired interval is tighter than the
    two methods' separate intervals. A seed missing from either column is left out.
    """
    rows = {}
    for column in wide.columns:
        if column != reference:
            difference = (wide[column] - wide[reference]).dropna()
            mean, low, high = confidence_interval(difference, level)
            rows[column] = {"mean": mean, "ci_low": low, "ci_high": high, "half_width": (high - low) / 2,
                            "n": len(difference)}
    return pd.DataFrame.from_dict(rows, orient="index")


def summarize(table: pd.DataFrame, by: list[str], value: str = "value", level: float = 0.95) -> pd.DataFrame:
    """Mean, confidence interval and number of runs of ``value`` in every cell of ``by``."""
    rows = []
    for key, cell in table.groupby(by, sort=True):
        mean, low, high = confidence_interval(cell[value], level)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "mean": mean, "ci_low": low, "ci_high": high, "n": len(cell)})
    return pd.DataFrame(rows)


def relative_to_baseline(
    table: pd.DataFrame, tasks: Iterable[Task], match: list[str], baseline: str = "single_task",
    method: str = "strategy",
) -> pd.DataFrame:
    """Each task's relative performance (percent, positive = better) against the baseline run it matches.

    ``table`` comes from ``results``; a row whose ``method`` column (by default ``strategy``) equals ``baseline`` is
    the reference of every other row with the same values in ``match`` (e.g. ``["seed", "data.angle"]``) and the same task. The change of a task is
    Delta_m restricted to that task (``metrics.delta_m``): the mean over its metrics of the signed relative change.
    Returns one row per (run, task) with the ``match`` columns, the ``method`` column, ``task`` and ``relative``.
    """
    by_name = {t.name: t for t in tasks}
    is_base = table[method] == baseline
    if not is_base.any():
        raise ValueError(f"relative_to_baseline: the table has no {baseline!r} runs to compare with.")

    def scores(rows: pd.DataFrame) -> dict:
        return {task: dict(zip(cell.metric, cell.value)) for task, cell in rows.groupby("task")}

    base = {key: scores(rows) for key, rows in table[is_base].groupby(match)}
    out = []
    for key, rows in table[~is_base].groupby([*match, method]):
        reference = base.get(key[:-1])
        if reference is None:
            raise KeyError(f"relative_to_baseline: no {baseline!r} run for {dict(zip(match, key[:-1]))}.")
        for task, values in scores(rows).items():
            change = delta_m({task: values}, {task: reference[task]}, [by_name[task]])
            out.append({**dict(zip([*match, method], key)), "task": task, "relative": change})
    return pd.DataFrame(out)


def resolution(differences: pd.DataFrame, unit: str = " points", level: float = 0.95, decimals: int = 1) -> str:
    """What a set of paired comparisons (``paired_differences`` rows, or ``summarize`` rows of paired quantities) can
    resolve, as a sentence: the half-widths of their intervals. A difference "not separated" from zero is then one no larger than about that."""
    half = (differences.ci_high - differences.ci_low) / 2
    if not np.isfinite(half).all():
        raise ValueError("resolution: every comparison needs at least two paired seeds for a finite interval.")
    low, high, n = half.min(), half.max(), int(differences["n"].min())
    span = (f"{low:.{decimals}f}{unit}" if round(low, decimals) == round(high, decimals)
            else f"{low:.{decimals}f} to {high:.{decimals}f}{unit}")
    return (f"Resolution: with {n} paired seeds, the half-widths of the {100 * level:.0f}% intervals of the "
            f"differences are {span}; a difference smaller than that is not resolved by these seeds.")


def sign_of(row: Mapping) -> int:
    """Which side of zero a ``summarize`` or ``paired_differences`` row's interval lies on: 1 above, -1 below, 0 when
    it contains zero (the seeds do not separate the quantity from zero)."""
    return 1 if row["ci_low"] > 0 else -1 if row["ci_high"] < 0 else 0


def describe_interval(row: Mapping, unit: str = "%", level: float = 0.95, decimals: int = 1) -> str:
    """A ``summarize`` row as text: ``+1.2% (95% CI -0.3 to +2.7)``."""
    f = f"+.{decimals}f"
    return f"{row['mean']:{f}}{unit} ({100 * level:.0f}% CI {row['ci_low']:{f}} to {row['ci_high']:{f}})"

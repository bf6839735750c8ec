"""Grids of runs (methods x seeds x hyperparameters), cached on disk, and the tuned comparisons built on them.

A run is described by a plain configuration dict (``mtlutils.config``); its cache file is named by a hash of the
resolved configuration, so re-running a notebook reuses every finished run and trains only what changed. The runs
of a grid train side by side, in worker processes on this machine's cores or on a Dask cluster
(``mtlutils.workers``); their results come back here, and only this process writes the cache (``mtlutils.cache``).
Everything a grid is given (each configuration, the environment variables, the cache folder) is checked here before
any run trains, and a grid whose runs are all cached starts no worker and contacts no scheduler.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from . import cache, data, models, published, runtime, stacked, toy, workers
from .config import build_strategy, complete, config_key, describe_config, resolve
from .metrics import delta_m
from .record import READINGS, Run
from .strategies import AGGREGATOR_LABELS
from .tasks import Task, TaskSuite
from .train import fit


@functools.lru_cache(maxsize=32)  # a synthetic suite drawn per seed: one per seed of a grid
def _suite(dataset: str, size: str, data_seed: int, data_json: str) -> TaskSuite:
    with runtime.one_thread():  # the same data bit for bit, whichever process builds it
        return data.load(dataset, size, seed=data_seed, **json.loads(data_json))


def suite_for(config: Mapping) -> TaskSuite:
    """The dataset of a configuration (kept in memory across the runs of a grid)."""
    return _suite_of(complete(config))


def _suite_of(c: Mapping) -> TaskSuite:
    """``suite_for`` of a configuration already completed."""
    return _suite(c["dataset"], c["size"], c["data_seed"], json.dumps(c["data"], sort_keys=True))


def train(config: Mapping, progress: bool = False) -> Run:
    """Train the run a configuration describes (no cache), with torch on one thread."""
    return _train_resolved(resolve(config), progress)


def _train_resolved(c: dict, progress: bool = False) -> Run:
    with runtime.one_thread():
        suite = _suite_of(c)
        net = models.for_suite(suite, seed=c["seed"], **c["model"])
        return fit(
            net, suite, build_strategy(c), epochs=c["epochs"], steps=c["steps"], batch_size=c["batch_size"],
            seed=c["seed"], eval_every=c["eval_every"], eval_at=c["eval_at"], progress=progress,
            gradient_cosine_every=c["gradient_cosine_every"], device=c["device"],
        )


def _train_job(job: list[dict]) -> list[Run | workers.Failure]:
    """The runs of one job: a run alone, or the members of a job as one stacked network (``mtlutils.stacked``)."""
    if len(job) == 1:
        return [_train_resolved(job[0])]
    with runtime.one_thread():
        suites = [_suite_of(m) for m in job]
        nets = [models.for_suite(suite, seed=m["seed"], **m["model"]) for suite, m in zip(suites, job)]
        device = runtime.resolve_device(job[0]["device"])
        outcomes = stacked.fit_members(nets, suites, [build_strategy(m) for m in job], job, device)
    return [workers.Failure(f"{type(o).__name__}: {o}") if isinstance(o, Exception) else o for o in outcomes]


def run(config: Mapping, cache_dir: str | Path | None = None) -> Run:
    """The run of one configuration: read from the cache when present, otherwise trained and stored."""
    return run_grid([config], cache_dir, progress=False)[0]


class GridError(RuntimeError):
    """Runs of a grid failed; ``failures`` lists (configuration, message). The other runs finished and are cached."""

    def __init__(self, failures: list[tuple[dict, str]]):
        self.failures = failures
        lines = "\n".join(f"- {describe_config(config)}: {message}" for config, message in failures)
        super().__init__(f"{len(failures)} run(s) of the grid failed; the others finished and are cached, so running "
                         f"the grid again trains only these:\n{lines}")


def run_grid(configs: Iterable[Mapping], cache_dir: str | Path | None = None, progress: bool = True) -> list[Run]:
    """Every configuration's run: read from the cache, fetched from the book's site (``mtlutils.published``), or
    trained where ``mtlutils.workers`` sends the runs (on this machine's cores by default) and stored as each one
    finishes. One progress bar counts the runs trained, found in the cache and failed. Failed runs raise one
    GridError after the others have finished."""
    resolved = [resolve(c) for c in configs]
    store = cache.RunCache(cache_dir if cache_dir is not None else cache.default_cache_dir())
    unique = {config_key(c): c for c in resolved}  # a configuration asked for twice trains once
    found = {key: hit for key, config in unique.items() if (hit := store.load(key, config)) is not None}
    missing = {key: config for key, config in unique.items() if key not in found}
    if missing:
        store.check_writable()
        if (url := published.runs_url()) is not None:
            found.update(published.fetch(missing, store, url))
        todo = [(key, config) for key, config in missing.items() if key not in found]
        if todo:
            found.update(_train_and_store(todo, store, len(unique), progress))
    return [found[config_key(c)] for c in resolved]


def _train_and_store(todo: list[tuple[str, dict]], store: cache.RunCache, total: int, progress: bool
                     ) -> dict[str, Run]:
    """Train the runs of ``todo`` where the workers are, in jobs of runs trained together (``stacked.jobs``),
    storing each run as its job finishes."""
    where = workers.where()  # checks the environment variables before any run starts
    groups = stacked.jobs([config for _, config in todo], stacked.members_per_job())
    if workers.scheduler_address() is None:  # the runs train on this machine: it must have their devices
        for device in {config["device"] for _, config in todo}:
            runtime.resolve_device(device)
    trained, failures = {}, []
    counts = {"trained": 0, "cached": total - len(todo), "failed": 0}
    with tqdm(total=total, initial=counts["cached"], disable=not progress, desc=f"runs {where}") as bar:
        bar.set_postfix(counts)
        for index, outcomes in workers.execute(_train_job, [[todo[i][1] for i in g] for g in groups]):
            members = [todo[i] for i in groups[index]]
            if isinstance(outcomes, workers.Failure):  # the job failed as a whole
                outcomes = [outcomes] * len(members)
            for (key, config), outcome in zip(members, outcomes, strict=True):
                if isinstance(outcome, workers.Failure):
                    failures.append((config, outcome.message))
                    counts["failed"] += 1
                else:
                    store.store(key, config, outcome)
                    trained[key] = outcome
                    counts["trained"] += 1
                bar.set_postfix(counts)
                bar.update()
    if failures:
        raise GridError(failures)
    return trained


def step_times(methods: Mapping[str, Mapping], steps: int = 10, rounds: int = 5, skip: int = 3) -> pd.Series:
    """Each method's milliseconds of compute per training step, timed in this process: every method gets its own
    network and the same batches, skips ``skip`` steps (first-call allocations), then the methods take turns,
    ``steps`` steps each, for ``rounds`` rounds (so a slow moment of the machine hits all of them); the median over
    the rounds. Torch runs on one thread and the clock is this thread's CPU time (``time.thread_time``), so another
    process on the machine does not inflate the figures, as it inflates the wall time of runs trained beside it."""
    if steps < 1 or rounds < 1 or skip < 0:
        raise ValueError(f"step_times: give steps >= 1, rounds >= 1 and skip >= 0 (got {steps}, {rounds}, {skip}).")
    resolved = {name: resolve({**config, "device": "cpu"}) for name, config in methods.items()}
    per_round: dict[str, list[float]] = {name: [] for name in methods}
    with runtime.one_thread():
        trainers = {}
        for name, c in resolved.items():
            suite = _suite_of(c)
            net = models.for_suite(suite, seed=c["seed"], **c["model"])
            strategy = build_strategy(c)
            torch.manual_seed(c["seed"])
            strategy.setup(net, suite.tasks, seed=c["seed"])
            batches = _endless(suite, c["batch_size"])
            for _ in range(skip):
                strategy.step(net, next(batches))
            trainers[name] = (net, strategy, batches)
        for _ in range(rounds):
            for name, (net, strategy, batches) in trainers.items():
                drawn = [next(batches) for _ in range(steps)]
                start = time.thread_time()
                for batch in drawn:
                    strategy.step(net, batch)
                per_round[name].append(1000 * (time.thread_time() - start) / steps)
    return pd.Series({name: float(np.median(times)) for name, times in per_round.items()}, name="ms per step")


def _endless(suite: TaskSuite, batch_size: int):
    order = torch.Generator().manual_seed(0)
    while True:
        yield from suite.train.batches(batch_size, order)


def toy_paths(methods: Mapping[str, Mapping], steps: int, imbalance: bool = False, settle: bool = False
              ) -> dict[str, np.ndarray]:
    """The path of each named strategy configuration (``strategy``, ``strategy_kwargs``, ``optimizer``, ``lr``, ...)
    on the toy landscape from every one of ``toy.STARTS``, shape (steps + 1, starts, 2), computed side by side where
    a grid's runs are (``mtlutils.workers``).

    An aggregator couples the points of one network, so under ``"aggregated"`` every start is its own trajectory;
    the other strategies move every start at once, which gives each point exactly its own path (``toy.trajectory``).
    With ``settle``, ``steps`` is a cap: each job stops once its points have reached the Pareto set or stopped.
    """
    jobs = [(complete(config), starts, steps, imbalance, settle) for config in methods.values()
            for starts in ([[s] for s in toy.STARTS] if config["strategy"] == "aggregated" else [toy.STARTS])]
    paths = dict(workers.execute(_toy_path, jobs))
    failed = [outcome.message for outcome in paths.values() if isinstance(outcome, workers.Failure)]
    if failed:
        raise RuntimeError(f"toy_paths: {len(failed)} path(s) failed: {failed[0]}")
    per_method = iter(np.concatenate([paths[i] for i in range(len(jobs))], axis=1).transpose(1, 0, 2))
    return {name: np.stack([next(per_method) for _ in toy.STARTS], axis=1) for name in methods}


def _toy_path(job: tuple) -> np.ndarray:
    config, starts, steps, imbalance, settle = job
    with runtime.one_thread():
        return toy.trajectory(build_strategy(config), starts, steps, imbalance, settle)


def grid(base: Mapping | None = None, **axes: Iterable) -> list[dict]:
    """Every combination of the values in ``axes`` on top of ``base``: ``grid(b, seed=[0, 1], lr=[1e-3, 1e-2])``."""
    names = list(axes)
    return [{**(base or {}), **dict(zip(names, values))} for values in itertools.product(*(axes[n] for n in names))]


def single_task_configs(config: Mapping, task_names: Iterable[str]) -> list[dict]:
    """The single-task baselines of a multi-task configuration: one run per task, everything else equal."""
    return [{**config, "strategy": "single_task", "strategy_kwargs": {"task": name}} for name in task_names]


def many_task_methods(base: Mapping, selective: Mapping, group_size: int = 2,
                      aggregators: Iterable[str] = ("pcgrad", "upgrad")) -> dict[str, dict]:
    """Averaged training and the ways of training many tasks at once set against it, as ``{label: configuration
    on top of base}``: averaged training; alternated training and random groups of ``group_size``
    (Pascal et al., 2021); selective group updates with the options ``selective`` (Jeong & Yoon, 2025); and the
    torchjd ``aggregators`` under their labels (``strategies.AGGREGATOR_LABELS``)."""
    random = {"strategy": "random_groups"}
    return {
        "Averaged": {**base, "strategy": "averaged"},
        "Alternated (k=1)": {**base, **random, "strategy_kwargs": {"group_size": 1}},
        f"RandomGroups (k={group_size})": {**base, **random, "strategy_kwargs": {"group_size": group_size}},
        "SelectiveGroups": {**base, "strategy": "selective_groups", "strategy_kwargs": dict(selective)},
        **{AGGREGATOR_LABELS[name]: {**base, "strategy": "aggregated", "strategy_kwargs": {"aggregator": name}}
           for name in aggregators},
    }


def pair_transfer(base: Mapping, tasks: Iterable[Task], seeds: Iterable[int], cache_dir: str | Path | None = None,
                  progress: bool = True, among: Iterable[str] | None = None, at: str = "end") -> pd.DataFrame:
    """The realised transfer of every pair of tasks, seed by seed: a network trained on the mean of the two losses
    alone (``Averaged`` with weight 1/2 on each, 0 on the other tasks) against the single-task networks of the same
    seed. ``gain`` is Delta_m over the two tasks (percent, positive when training them together helped).
    ``among`` names the tasks whose pairs are trained (by default all of ``tasks``, the suite's tasks). Every run is
    read ``at`` its end or at its chosen step (``Run.scores``; a suite of two tasks, so that a pair's step is chosen
    on the pair alone).

    Returns one row per (seed, pair), the pairs in ``itertools.combinations`` order of the tasks, with columns
    ``seed``, ``pair`` (its index), ``first``, ``second`` and ``gain``.
    """
    tasks, seeds = list(tasks), list(seeds)
    directions = {higher for t in tasks for higher in t.higher_is_better.values()}
    if at not in READINGS or at == "chosen" and not (base.get("eval_every") or base.get("eval_at")):
        raise ValueError(f"pair_transfer: at={at!r}; read the runs at one of {READINGS}, and at their chosen step "
                         "only when they are evaluated during training (eval_every).")
    if at == "chosen" and len(directions) > 1:
        raise ValueError("pair_transfer: the tasks' metrics mix higher- and lower-is-better, so no one validation "
                         "score chooses a step; read the runs at='end'.")
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
    test = [r.scores(at, directions == {True})["test"] for r in runs]
    alone = {(c["seed"], c["strategy_kwargs"]["task"]): scores for c, scores in zip(singles, test[len(jobs):])}
    rows = []
    for (seed, pair), scores in zip(jobs, test):
        chosen = [t for t in tasks if t.name in pair]
        gain = delta_m({t.name: scores[t.name] for t in chosen},
                       {t.name: alone[seed, t.name][t.name] for t in chosen}, chosen)
        rows.append({"seed": seed, "pair": pairs.index(pair), "first": pair[0], "second": pair[1], "gain": gain})
    return pd.DataFrame(rows)


def results(configs: Iterable[Mapping], runs: Iterable[Run], split: str = "test",
            label: Callable[[dict], str] | None = None, at: str = "end", higher_is_better: bool = True
            ) -> pd.DataFrame:
    """A long table, one row per (run, task, metric) of ``split``, with the configuration's scalar fields as columns
    (nested dicts flattened as ``key.subkey``) and, when ``label`` is given, a ``method`` column ``label(config)``.
    Each run is read ``at`` its end or at its chosen step (``Run.scores``: the best validation score, the highest
    or the lowest as ``higher_is_better`` says)."""
    rows = []
    for config, result in zip(configs, runs, strict=True):
        c = complete(config)
        fields = {k: v for k, v in c.items() if not isinstance(v, (dict, list))}
        fields.update({f"{k}.{kk}": vv for k, v in c.items() if isinstance(v, dict) for kk, vv in v.items()})
        if label is not None:
            fields["method"] = label(c)
        for task, task_scores in result.scores(at, higher_is_better)[split].items():
            for metric, value in task_scores.items():
                rows.append({**fields, "task": task, "metric": metric, "value": value})
    return pd.DataFrame(rows)

"""A run's configuration: its defaults and rules, its cache key, the registries of strategies and optimizers, and a
chapter's settings and seeds.

A run is described by a plain dict (see ``DEFAULTS``). ``complete`` fills in the defaults and checks every value,
the strategy's options included, in the caller's process before any work; ``resolve`` also says which device
``"auto"`` means here (``runtime.resolve_device``), and ``config_key`` hashes the resolved configuration, so a CPU
result never stands in for a GPU one. Numbers of any integer or float type (numpy's included) are made plain
Python numbers first, so a configuration has one key however its numbers were made.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from typing import Callable, Mapping

import numpy as np

from . import cache, runtime, strategies

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

STRATEGIES = {  # a configuration's strategy name -> its class
    "single_task": strategies.SingleTask,
    "averaged": strategies.Averaged,
    "alternated": strategies.Alternated,
    "random_groups": strategies.RandomGroups,
    "count_matched_groups": strategies.CountMatchedGroups,
    "selective_groups": strategies.SelectiveGroups,
    "aggregated": strategies.Aggregated,
    "scalarized": strategies.Scalarized,
    "split_batch_weighted": strategies.SplitBatchWeighted,
    "affinity_probe": strategies.AffinityProbe,
}
OPTIMIZERS = {"adam": strategies.adam, "sgd": strategies.sgd}


def plain(value):
    """``value`` with every numpy number made a plain bool, int or float, inside mappings, lists and tuples too."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def _whole(least: int, optional: bool = False) -> Callable[[object], bool]:
    return lambda v: (optional and v is None) or (
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= least)


def _finite(least: float, strict: bool) -> Callable[[object], bool]:
    return lambda v: (isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                      and (v > least if strict else v >= least))


_text, _mapping = (lambda v: isinstance(v, str)), (lambda v: isinstance(v, Mapping))
RULES = {  # configuration key -> (check, what is allowed)
    "dataset": (_text, "a dataset name, e.g. 'clusters'"), "size": (_text, "'smoke', 'small' or 'full'"),
    "data_seed": (_whole(0, optional=True), "a whole number >= 0, or None for the run's own seed"), "data": (_mapping, "a mapping of dataset options"),
    "model": (_mapping, "a mapping of model options"),
    "strategy": (lambda v: isinstance(v, str) and v in STRATEGIES, f"a strategy name: {', '.join(STRATEGIES)}"),
    "strategy_kwargs": (_mapping, "a mapping of the strategy's options"),
    "optimizer": (lambda v: isinstance(v, str) and v in OPTIMIZERS, "an optimizer name, 'adam' or 'sgd'"),
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
    """The configuration with every default filled in and its numbers made plain, checked before any work: an
    unknown key, a value of the wrong kind or out of range (``RULES``) or a strategy option its strategy refuses is
    refused with the setting, the value and what is allowed. ``steps`` given without ``epochs`` means steps."""
    if not isinstance(config, Mapping):
        raise TypeError(f"A run's configuration is a mapping of settings (see config.DEFAULTS), not {config!r}.")
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise KeyError(f"Unknown configuration key(s) {sorted(unknown)}; the keys are {sorted(DEFAULTS)}.")
    c = plain({**DEFAULTS, **({"epochs": None} if config.get("steps") is not None else {}), **config})
    for key, (check, allowed) in RULES.items():
        if not check(c[key]):
            raise ValueError(f"Run setting {key}={c[key]!r} is not allowed: {key} must be {allowed}.")
    if c["data_seed"] is None:  # a synthetic suite drawn anew for every seed
        c["data_seed"] = c["seed"]
    if (c["epochs"] is None) == (c["steps"] is None):
        raise ValueError(f"Run settings epochs={c['epochs']!r} and steps={c['steps']!r}: give the number of epochs "
                         "or of steps to train, one of the two.")
    build_strategy(c)  # the strategy checks its own options
    return c


def resolve(config: Mapping) -> dict:
    """The complete configuration with ``device="auto"`` replaced by the device it means here."""
    c = complete(config)
    c["device"] = runtime.device_name("auto") if c["device"] == "auto" else c["device"]
    return c


def config_key(config: Mapping) -> str:
    """A stable hash of the resolved configuration (and of the cache format)."""
    text = json.dumps({"format": cache.FORMAT, **resolve(config)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def describe_config(config: Mapping) -> str:
    """The entries of a configuration that differ from ``DEFAULTS``, as compact JSON."""
    changed = {k: v for k, v in complete(config).items() if DEFAULTS[k] != v}
    return json.dumps(changed, sort_keys=True, default=str)


def build_strategy(c: Mapping) -> strategies.Strategy:
    """The strategy object of a completed configuration, with its optimizer factory; a strategy option it refuses
    is reported with the configuration's words."""
    factory = OPTIMIZERS[c["optimizer"]](lr=c["lr"], weight_decay=c["weight_decay"])
    try:
        return STRATEGIES[c["strategy"]](**c["strategy_kwargs"], optimizer_factory=factory)
    except (TypeError, ValueError) as error:
        raise type(error)(f"Run setting strategy_kwargs={c['strategy_kwargs']!r} does not fit strategy "
                          f"{c['strategy']!r}: {error}") from None


def torchjd_methods(base: Mapping, overrides: Mapping[str, Mapping] | None = None) -> dict[str, dict[str, dict]]:
    """Every torchjd method that applies to two tasks, as ``{family: {label: configuration on top of base}}``.
    ``overrides`` maps a method's registry name to settings of its own (an aggregator's ``aggregator_kwargs``, a
    batch size), its ``strategy_kwargs`` merged into the method's.

    Every name of ``strategies.AGGREGATORS``, ``SPLIT_WEIGHTINGS`` and ``SCALARIZERS`` must have a label, so a
    method added there cannot be left out of a comparison that claims to hold all of them."""
    overrides = dict(overrides or {})
    families = {}
    for family, (strategy, keyword, registry, labels) in strategies.TORCHJD_FAMILIES.items():
        unlabelled = set(registry) - set(labels) - set(strategies.COVERED_BY_AVERAGED)
        if unlabelled:
            raise KeyError(f"torchjd_methods: no label for the {family} method(s) {sorted(unlabelled)}; add them "
                           "beside their registry in mtlutils.strategies.")
        families[family] = {}
        for name, label in labels.items():
            own = dict(overrides.pop(name, {}))
            options = {keyword: name, **own.pop("strategy_kwargs", {})}
            families[family][label] = {**base, **own, "strategy": strategy, "strategy_kwargs": options}
    if overrides:
        raise KeyError(f"torchjd_methods: overrides for {sorted(overrides)}, which are not torchjd methods of the "
                       "book (the names of strategies.AGGREGATORS, SPLIT_WEIGHTINGS and SCALARIZERS).")
    return families


def settings(table: Mapping[str, Mapping], size: str, overrides: Mapping | None = None) -> dict:
    """A chapter's settings: ``table[size]`` with the entries of ``overrides`` replaced. An unknown size or
    setting is refused with the valid ones, and so is an override of another kind than the setting it replaces
    (a whole number, a number, a list, a mapping, a string), a count below 1 (``seeds`` below 2) or a number that
    is not finite."""
    if size not in table:
        raise ValueError(f"SIZE must be one of {', '.join(map(repr, table))}, not {size!r}.")
    overrides = plain(dict(overrides or {}))
    unknown = set(overrides) - set(table[size])
    if unknown:
        raise KeyError(f"OVERRIDES names unknown setting(s) {sorted(unknown)}; this chapter's are "
                       f"{sorted(table[size])}.")
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


TIE_SEED_OFFSET = 1000  # tie seeds start this far past a chapter's first seed, beyond any reporting seed


def split_seeds(first: int, reporting: int, tuning: int = 1) -> tuple[list[int], list[int]]:
    """The seeds of a chapter: ``tuning`` seeds from ``first`` that choose the hyperparameters, then ``reporting``
    other seeds that report the results, so that no reported run is one its hyperparameters were chosen on. A
    chapter that tunes nothing asks for ``tuning=0``."""
    if not _whole(0)(first):
        raise TypeError(f"SEED must be a whole number >= 0 (the first seed), not {first!r}.")
    if not _whole(2)(reporting) or not _whole(0)(tuning) or tuning + reporting > TIE_SEED_OFFSET:
        raise ValueError(f"split_seeds: give at least 2 reporting seeds and 0 or more tuning seeds, {TIE_SEED_OFFSET} "
                         f"at most together ({reporting=}, {tuning=}); one reporting seed has no confidence interval.")
    first, reporting, tuning = int(first), int(reporting), int(tuning)
    return list(range(first, first + tuning)), list(range(first + tuning, first + tuning + reporting))


def tie_seeds(first: int, n: int) -> list[int]:
    """The ``n`` seeds that settle near-ties in ``tuning.tune_then_repeat``: from ``first + TIE_SEED_OFFSET``, so
    that they are neither tuning nor reporting seeds of ``split_seeds(first, ...)`` and stay the same whatever the
    number of reporting seeds (a choice does not move when a chapter reports more seeds)."""
    return list(range(first + TIE_SEED_OFFSET, first + TIE_SEED_OFFSET + n))

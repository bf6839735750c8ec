"""How long each chapter's full mode takes on this machine, estimated from measured step times.

    .venv/bin/python benchmarks/full_mode_time.py                  # every chapter
    .venv/bin/python benchmarks/full_mode_time.py --chapters 03 05 --out /tmp/full-time

1. **What full mode trains.** Each chapter is executed in full mode as `make book` executes it (book/build.py), on a
   data root the data scripts prepare from a few files in the datasets' real formats (tests/fixtures.py), with a
   kernel start-up file that records every configuration the chapter asks ``run_grid`` for. To count them in
   minutes, it trains the runs of the synthetic suites (generated at full size) and of NYUv2 for one epoch only,
   and CelebA's with a network a few channels wide. The runs are counted from the chapter's own code (its
   grids, tuning seeds, reporting seeds and equal-cost runs), not from a formula.
2. **What a step costs.** For every distinct network, batch size and strategy among those runs, a few steps are
   trained and evaluated on data of the real shapes (MultiMNIST 36 x 36, CelebA 64 x 64, NYUv2 288 x 384), on the
   device full mode picks (``device="auto"``), one torch thread on the CPU as in the chapters' runs, and the
   median time of a step after the first is kept. SelectiveGroups is timed in its warm-up, where every task is its
   own group: its most expensive steps.
3. **The estimate.** Every run's steps on the real training split (its epochs times the batches of an epoch, or
   its step count scaled by the ratio of real to fixture batches per epoch), times its step time, plus its
   evaluations (val and test after training and at every ``eval_at``) at the measured time per image. Runs that
   the chapter asks for twice train once. The wall time divides the sum over ``MTLUTILS_WORKERS`` worker
   processes (the cores, by default), as the run engine spreads the runs; the chapter's time outside its run
   grids (the toy landscape, affinity propagation, figures) is added as it was measured on the fixtures.
4. **On a GPU.** Beside it, the time on one NVIDIA H200 from step times measured there (``H200_STEPS``: one run at
   a time, at the real shapes): each run's step is its step here scaled by the ratio of a reference step there
   to the same reference step here, the reference of its dataset's network and of its method's family (the
   averaged loss; grouped updates, by SelectiveGroups in its warm-up; torchjd's aggregators, by UPGrad), the
   averaged loss's where its family has none; its evaluations by the averaged loss's ratio. The clusters MLP has
   no reference there (its step is a few kernel launches, which a GPU does not shorten): its runs count at their
   time here. One worker process uses the GPU, one run at a time; stacked runs (``MTLUTILS_BATCH``) shorten the
   LeNet chapters further.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "book"))

from data_scripts import multimnist as multimnist_script, nyuv2 as nyuv2_script  # noqa: E402
from mtlutils import config, experiments, models, runtime, workers  # noqa: E402
from mtlutils.tasks import Split  # noqa: E402
from mtlutils.train import fit  # noqa: E402
from tests.fixtures import prepare_data_root  # noqa: E402

STARTUP = r'''
import json, os, time
import mtlutils
import mtlutils.config as _config
import mtlutils.experiments as _experiments
_run_grid = _experiments.run_grid

def _recorded(configs, *args, **kwargs):
    start = time.perf_counter()
    configs = [_config.resolve(c) for c in configs]
    with open(os.environ["FULL_MODE_PLAN"], "a") as plan:
        for c in configs:
            suite = _experiments.suite_for(c)
            plan.write(json.dumps({"config": c, "fixture": [len(suite.train), len(suite.val), len(suite.test)]},
                                  default=str) + "\n")
    try:
        return _run_grid([_cheaper(c) for c in configs], *args, **kwargs)
    finally:
        with open(os.environ["FULL_MODE_PLAN"], "a") as plan:
            plan.write(json.dumps({"grid_seconds": time.perf_counter() - start}) + "\n")

# the runs are counted, not timed, here: a synthetic suite is generated at full size, and NYUv2's network takes
# seconds a step on the CPU even on the fixtures, so their runs train one epoch only; CelebA's network is narrowed to
# a few channels (NYUv2's is not: a narrow SegNet can miss every pixel of a metric and leave no relative change)
ONE_EPOCH = ("clusters", "nyuv2")
NARROW = {"celeba": {"widths": [4, 4, 4, 4]}}

def _cheaper(config):
    if config["dataset"] in ONE_EPOCH:
        config = {**config, "epochs": 1, "steps": None}
    if config["dataset"] in NARROW:
        config = {**config, "model": {**config["model"], **NARROW[config["dataset"]]}}
    return config

_experiments.run_grid = mtlutils.run_grid = _recorded
'''

MNIST_TRAIN = round(multimnist_script.TRAIN_FRACTION * 60_000)
NYUV2_VAL = round(nyuv2_script.VAL_FRACTION * 795)
# (train, val, test) images of each dataset as its data script prepares it in full
REAL_SPLITS = {
    "multimnist": (MNIST_TRAIN, 60_000 - MNIST_TRAIN, 10_000),
    "digit_attributes": (MNIST_TRAIN, 60_000 - MNIST_TRAIN, 10_000),
    "celeba": (162_770, 19_867, 19_962),
    "nyuv2": (795 - NYUV2_VAL, NYUV2_VAL, 654),
}
# step times measured on one NVIDIA H200 at the real shapes (median of a few steps, one run at a time): a reference
# configuration of a dataset's network, the method family it stands for, and its seconds a step
H200_STEPS = [
    (dict(dataset="celeba", batch_size=256, strategy="averaged"), "averaged", 0.028),
    (dict(dataset="celeba", data={"attributes": "tag9"}, batch_size=256, strategy="selective_groups"), "grouped",
     0.175),
    (dict(dataset="celeba", data={"attributes": "tag9"}, batch_size=256, strategy="aggregated",
          strategy_kwargs={"aggregator": "upgrad"}), "aggregated", 0.095),
    (dict(dataset="nyuv2", batch_size=8, strategy="averaged"), "averaged", 0.047),
    (dict(dataset="nyuv2", batch_size=8, strategy="selective_groups"), "grouped", 0.138),
    (dict(dataset="nyuv2", batch_size=8, strategy="aggregated", strategy_kwargs={"aggregator": "upgrad"}),
     "aggregated", 0.109),
    (dict(dataset="multimnist", batch_size=256, strategy="averaged"), "averaged", 0.0031),
]
GROUPED = ("alternated", "random_groups", "count_matched_groups", "selective_groups", "affinity_probe")
FAMILY = {**{s: "grouped" for s in GROUPED}, "aggregated": "aggregated", "split_batch_weighted": "aggregated"}
SAME_NETWORK = {"digit_attributes": "multimnist"}  # LeNet on MNIST digits, as MultiMNIST's
NOT_COST = ("lr", "weight_decay", "seed", "epochs", "steps", "eval_at", "eval_every")  # leave a step's cost alone


def planned_runs(build, source: Path, data_root: Path, out: Path) -> tuple[list[dict], float]:
    """Every distinct run the chapter's full mode asks for, with the split sizes it saw on the fixtures, and the
    seconds the chapter spent outside its run grids (the toy landscape, affinity propagation, figures)."""
    plan = out / f"{source.stem}.plan.jsonl"
    plan.unlink(missing_ok=True)
    os.environ.update(FULL_MODE_PLAN=str(plan), MTLUTILS_DATA=str(data_root))
    start = time.perf_counter()
    build.execute(source, "full", out / "executed", cache_dir=out / f"cache-{source.stem[:2]}")
    other = time.perf_counter() - start
    runs = {}
    for record in map(json.loads, plan.read_text().splitlines()):
        if "grid_seconds" in record:
            other -= record["grid_seconds"]
        else:
            runs[config.config_key(record["config"])] = record
    return list(runs.values()), other


def cost_key(described: dict) -> str:
    return config.config_key({k: v for k, v in described.items() if k not in NOT_COST})


def full_batches(split: Split, batch_size: int) -> Split:
    """``split`` repeated until it holds one batch: the fixtures of the real formats hold fewer images than a
    batch (CelebA's 16 against its batch of 256), and a step is timed on a whole batch."""
    times = -(-batch_size // len(split))
    tiled = lambda t: t.repeat(times, *[1] * (t.dim() - 1))  # noqa: E731
    return Split(tiled(split.x), {name: tiled(y) for name, y in split.y.items()})


def step_cost(described: dict, steps: int = 4) -> dict:
    """Seconds per training step (on whole batches) and per evaluated image of a configuration, on the data root
    of real shapes."""
    c = config.resolve({**described, "epochs": None, "steps": steps, "eval_at": None, "eval_every": None})
    suite = experiments.suite_for(c)
    suite = dataclasses.replace(suite, train=full_batches(suite.train, c["batch_size"]))
    with runtime.one_thread():
        net = models.for_suite(suite, seed=c["seed"], **c["model"])
        run = fit(net, suite, config.build_strategy(c), steps=steps, batch_size=c["batch_size"], seed=c["seed"],
                  progress=False, device=c["device"])
    return {"step": statistics.median(run.history.seconds.iloc[1:]),
            "image": run.cost["evaluation_seconds"] / (len(suite.val) + len(suite.test))}


def steps_and_seconds(record: dict, cost: dict) -> tuple[float, float]:
    """A run's training steps on the real dataset and its seconds there (training and evaluation)."""
    config, fixture = record["config"], record["fixture"]
    train, val, test = REAL_SPLITS.get(config["dataset"], fixture)  # a synthetic suite is generated at full size
    batches = math.ceil(train / config["batch_size"])
    if config["steps"] is not None:
        steps = config["steps"] * batches / math.ceil(fixture[0] / config["batch_size"])
    else:
        steps = config["epochs"] * batches
    evaluations = 1 + len(config.get("eval_at") or [])
    return steps, steps * cost["step"] + evaluations * (val + test) * cost["image"]


def gpu_ratios(costs: dict) -> dict[tuple[str, str], float]:
    """(dataset, family): a reference step's seconds on the H200 over its seconds here (``H200_STEPS``); the
    reference steps are timed here and added to ``costs`` where they are missing."""
    ratios = {}
    for reference, family, seconds in H200_STEPS:
        described = config.resolve({**reference, "size": "full"})
        key = cost_key(described)
        if key not in costs:
            costs[key] = step_cost(described)
        ratios[reference["dataset"], family] = seconds / costs[key]["step"]
    return ratios


def gpu_seconds(record: dict, cost: dict, ratios: dict) -> float:
    """A run's seconds on the H200 (training and evaluation), scaled from its seconds here (``gpu_ratios``)."""
    steps, seconds = steps_and_seconds(record, cost)
    dataset = SAME_NETWORK.get(record["config"]["dataset"], record["config"]["dataset"])
    if (dataset, "averaged") not in ratios:  # no step of this network was measured on the GPU
        return seconds
    family = FAMILY.get(record["config"]["strategy"], "averaged")
    step = ratios.get((dataset, family), ratios[dataset, "averaged"])
    return steps * cost["step"] * step + (seconds - steps * cost["step"]) * ratios[dataset, "averaged"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter numbers (default: every chapter)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the executed chapters and the records")
    args = parser.parse_args()
    out = (args.out or Path(tempfile.mkdtemp(prefix="full-mode-time-"))).resolve()
    ipython = out / "ipython" / "profile_default" / "startup"
    ipython.mkdir(parents=True, exist_ok=True)
    (ipython / "00-plan.py").write_text(STARTUP)
    os.environ["IPYTHONDIR"] = str(out / "ipython")
    import build

    fixtures = prepare_data_root(out / "fixtures")
    real_shapes = prepare_data_root(out / "real-shapes", nyuv2_shape=(288, 384), celeba_side=64)
    chosen = [s for s in build.NOTEBOOKS if args.chapters is None or s.stem[:2] in args.chapters]
    plans = {}
    for source in chosen:
        start = time.perf_counter()
        plans[source.stem] = planned_runs(build, source, fixtures, out)
        print(f"{source.stem}: {len(plans[source.stem][0])} runs, counted in {time.perf_counter() - start:.0f} s",
              flush=True)
    os.environ["MTLUTILS_DATA"] = str(real_shapes)
    costs = {}
    for record in (r for plan, _ in plans.values() for r in plan):
        key = cost_key(record["config"])
        if key not in costs:
            costs[key] = step_cost(record["config"])
    ratios = gpu_ratios(costs)
    device = config.resolve({})["device"]
    lines = [f"Full mode on this machine ({device}, {workers.worker_count()} workers), from measured step times, "
             "and on one H200 from the step times measured there:", "",
             "| chapter | runs | steps | runs' time, summed | outside the runs | wall time | on one H200 |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for stem, (plan, other) in plans.items():
        steps, seconds = map(sum, zip(*(steps_and_seconds(r, costs[cost_key(r["config"])]) for r in plan)))
        wall = other + seconds / workers.worker_count()
        gpu = other + sum(gpu_seconds(r, costs[cost_key(r["config"])], ratios) for r in plan)
        lines.append(f"| {stem} | {len(plan)} | {steps / 1e6:.2f} M | {seconds / 3600:.1f} h | "
                     f"{other / 60:.0f} min | {wall / 3600:.1f} h | {gpu / 3600:.1f} h |")
    table = "\n".join(lines)
    (out / "full_mode_time.md").write_text(table + "\n")
    print(table)
    print(f"(written to {out / 'full_mode_time.md'})")


if __name__ == "__main__":
    main()

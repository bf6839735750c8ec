"""LeNet's training step and evaluation with its convolution weights stored channels-last (as ``models.lenet``
builds it) against the default layout, side by side on one CPU thread, as every run trains.

    python benchmarks/memory_format.py [--repeats 30] [--batch 64]

Both copies start from the same weights and train on the same MultiMNIST batch (small mode); they take turns, one
step each, for ``--repeats`` rounds, so that a slow moment of the machine hits both. The table gives the median
step (Averaged, Adam) and the median evaluation of 1,024 test images, and each layout's ratio to the default.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mtlutils import data, models
from mtlutils.strategies import Averaged, adam
from mtlutils.train import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    suite = data.load("multimnist", "small")
    batch = next(suite.train.batches(args.batch))
    test = next(suite.test.batches(1024))
    layouts = {"default (NCHW)": models.for_suite(suite, seed=0).to(memory_format=torch.contiguous_format),
               "channels-last": models.for_suite(suite, seed=0)}
    strategies = {name: Averaged(optimizer_factory=adam()) for name in layouts}
    for name, net in layouts.items():
        strategies[name].setup(net, suite.tasks, seed=0)
    steps, evals = {name: [] for name in layouts}, {name: [] for name in layouts}
    for round_ in range(args.repeats + 3):  # three rounds of warm-up
        for name, net in layouts.items():
            start = time.perf_counter()
            strategies[name].step(net, batch)
            middle = time.perf_counter()
            evaluate(net, test, suite.tasks)
            if round_ >= 3:
                steps[name].append(middle - start)
                evals[name].append(time.perf_counter() - middle)
    base_step, base_eval = (statistics.median(v["default (NCHW)"]) for v in (steps, evals))
    print(f"LeNet on MultiMNIST (small), batch {args.batch}, one thread, medians of {args.repeats} interleaved rounds")
    print(f"{'layout':<16} {'step (ms)':>10} {'ratio':>7} {'evaluation (ms)':>16} {'ratio':>7}")
    for name in layouts:
        step, evaluation = statistics.median(steps[name]), statistics.median(evals[name])
        print(f"{name:<16} {1e3 * step:>10.2f} {step / base_step:>7.2f} {1e3 * evaluation:>16.1f} "
              f"{evaluation / base_eval:>7.2f}")


if __name__ == "__main__":
    main()

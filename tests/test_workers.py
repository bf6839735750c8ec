"""Runs on every core: the same results as serial runs, failures reported after the rest, dead workers retried."""

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from mtlutils import experiments, workers
from tests import jobs
from tests.same_runs import assert_same_run

ROOT = Path(__file__).resolve().parent.parent

# a convolutional network (whose results depend on torch's thread count), a group-updating strategy, a regression
GRID = [
    dict(dataset="multimnist", size="smoke", epochs=1, seed=0),
    dict(dataset="digit_attributes", size="smoke", epochs=1, strategy="alternated", seed=1),
    dict(dataset="clusters", size="smoke", epochs=3, strategy="selective_groups",
         strategy_kwargs={"warmup": 2, "beta": 0.1}, seed=2),
    dict(dataset="clusters", size="smoke", epochs=3, strategy="random_groups", strategy_kwargs={"group_size": 2}),
    *[dict(dataset="clusters", size="smoke", epochs=2, strategy="aggregated", strategy_kwargs={"aggregator": "pcgrad"},
           seed=seed) for seed in (3, 4)],  # one stacked job, whose members draw random numbers
]
SLOW = [dict(dataset="multimnist", size="smoke", epochs=4, seed=s) for s in range(4)]  # about 2 s each


@pytest.fixture(autouse=True)
def _fresh_pool():
    yield
    workers.shutdown()


def grid_with(count, configs, folder, monkeypatch):
    monkeypatch.setenv("MTLUTILS_WORKERS", str(count))
    return experiments.run_grid(configs, folder, progress=False)


def test_local_workers_give_the_serial_results_bit_for_bit(tmp_path, monkeypatch):
    serial = grid_with(1, GRID, tmp_path / "serial", monkeypatch)
    parallel = grid_with(2, GRID, tmp_path / "parallel", monkeypatch)
    for a, b in zip(serial, parallel, strict=True):
        assert_same_run(a, b)
    assert len(list((tmp_path / "parallel").glob("*.json"))) == len(GRID)


def test_the_worker_count_is_read_and_checked(monkeypatch):
    monkeypatch.delenv("MTLUTILS_WORKERS", raising=False)
    monkeypatch.delenv("MTLUTILS_DEVICE", raising=False)
    assert workers.worker_count() == (max(1, torch.cuda.device_count()) if torch.cuda.is_available()
                                      else os.cpu_count())
    monkeypatch.setenv("MTLUTILS_DEVICE", "cuda")  # runs bound for the GPU: one worker per GPU, at least one
    assert workers.worker_count() == max(1, torch.cuda.device_count())
    monkeypatch.delenv("MTLUTILS_DEVICE")
    monkeypatch.setenv("MTLUTILS_WORKERS", "3")
    assert workers.worker_count() == 3 and workers.where() == "in 3 worker processes"
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("MTLUTILS_WORKERS", bad)
        with pytest.raises(ValueError, match=f"MTLUTILS_WORKERS must be a positive integer.*{bad!r}"):
            workers.worker_count()


@pytest.mark.parametrize("count", [1, 2])
def test_a_failing_run_is_reported_after_the_others_finish_and_they_stay_cached(tmp_path, monkeypatch, capsys, count):
    diverging = dict(dataset="clusters", size="smoke", epochs=3, lr=1e12, optimizer="sgd")  # a NaN loss
    good = GRID[2:4]
    monkeypatch.setenv("MTLUTILS_WORKERS", str(count))
    with pytest.raises(experiments.GridError) as error:
        experiments.run_grid([good[0], diverging, good[1]], tmp_path, progress=True)
    assert len(error.value.failures) == 1 and '"lr": 1000000000000.0' in str(error.value)
    assert "NonFiniteLossError: The loss of task" in str(error.value)
    assert "trained=2, cached=0, failed=1" in capsys.readouterr().err
    monkeypatch.setattr(experiments, "_train_job", lambda *a, **k: pytest.fail("a finished run was trained again"))
    monkeypatch.setenv("MTLUTILS_WORKERS", "1")
    assert len(experiments.run_grid(good, tmp_path, progress=False)) == 2


def test_the_progress_bar_counts_trained_cached_and_failed_runs(tmp_path, monkeypatch, capsys):
    grid_with(1, GRID[2:3], tmp_path, monkeypatch)
    capsys.readouterr()
    monkeypatch.setenv("MTLUTILS_WORKERS", "1")
    experiments.run_grid(GRID[2:4], tmp_path, progress=True)
    bar = capsys.readouterr().err
    assert "runs in this process" in bar and "trained=1, cached=1, failed=0" in bar


def test_a_worker_killed_mid_run_is_reported_and_its_run_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_BATCH", "1")  # four runs, each alone, so that both workers train for seconds
    serial = grid_with(1, SLOW, tmp_path / "serial", monkeypatch)

    def kill_a_worker():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not multiprocessing.active_children():
            time.sleep(0.05)
        time.sleep(3)  # the workers have started and are training
        os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    with pytest.warns(workers.WorkerLostWarning, match="A worker process died while"):
        parallel = grid_with(2, SLOW, tmp_path / "parallel", monkeypatch)
    killer.join()
    for a, b in zip(serial, parallel, strict=True):
        assert_same_run(a, b)


def test_a_job_whose_worker_dies_twice_fails_and_the_others_finish(monkeypatch):
    monkeypatch.setenv("MTLUTILS_WORKERS", "2")
    with pytest.warns(workers.WorkerLostWarning):
        outcomes = dict(workers.execute(jobs.double_or_die, [1, -1, 2, 3]))
    assert outcomes[0] == 2 and outcomes[2] == 4 and outcomes[3] == 6
    assert isinstance(outcomes[1], workers.Failure) and "died twice" in outcomes[1].message


def test_a_job_that_raises_comes_back_as_a_failure_naming_the_error(monkeypatch):
    for count in ("1", "2"):
        monkeypatch.setenv("MTLUTILS_WORKERS", count)
        outcomes = dict(workers.execute(jobs.double_or_raise, [1, -4]))
        assert outcomes[0] == 2 and "ValueError: no negative numbers, got -4 (jobs.py, line" in outcomes[1].message


def test_ctrl_c_sent_to_the_process_group_leaves_the_workers_to_the_parent(monkeypatch):
    monkeypatch.setenv("MTLUTILS_WORKERS", "2")
    assert dict(workers.execute(jobs.slow_double, [1, 2])) == {0: 2, 1: 4}  # both workers have started
    children = multiprocessing.active_children()
    assert len(children) == 2
    for child in children:
        os.kill(child.pid, signal.SIGINT)
    time.sleep(0.5)
    assert all(child.is_alive() for child in children)
    assert dict(workers.execute(jobs.double_or_raise, [3, 4])) == {0: 6, 1: 8}
    workers.shutdown()
    assert not any(child.is_alive() for child in children)


def test_a_worker_that_dies_between_grids_is_replaced(monkeypatch):
    monkeypatch.setenv("MTLUTILS_WORKERS", "2")
    assert dict(workers.execute(jobs.double_or_raise, [1, 2])) == {0: 2, 1: 4}
    os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
    time.sleep(1)
    assert dict(workers.execute(jobs.double_or_raise, [3, 4])) == {0: 6, 1: 8}


UNGUARDED = """
import os
os.environ["MTLUTILS_WORKERS"] = "2"
from mtlutils import workers
print(sorted(workers.execute(abs, [-1, -2])))
"""


@pytest.mark.parametrize("guarded", [False, True])
def test_a_script_that_starts_workers_outside_its_main_guard_is_told_so(guarded, tmp_path):
    script = tmp_path / "grid.py"
    body = UNGUARDED.replace("print(", 'if __name__ == "__main__":\n    print(') if guarded else UNGUARDED
    script.write_text(body)
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if guarded:
        assert done.returncode == 0 and done.stdout.strip() == "[(0, 1), (1, 2)]", done.stderr
    else:
        assert done.returncode != 0
        assert f"{script}, line 5, starts worker processes" in done.stderr
        assert 'if __name__ == "__main__":' in done.stderr and "died" not in done.stderr


ORPHANS = """
import os, threading, time
from mtlutils import workers
if __name__ == "__main__":
    os.environ["MTLUTILS_WORKERS"] = "2"
    threading.Thread(target=lambda: list(workers.execute(time.sleep, [120, 120])), daemon=True).start()
    while workers._pool is None or len(workers._pool._processes) < 2:
        time.sleep(0.1)
    print(*workers._pool._processes, flush=True)
    time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the processes from /proc")
def test_workers_stop_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(ORPHANS)
    parent = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(map(alive, pids))
        parent.terminate()  # SIGTERM, as a kernel is stopped: no atexit, no shutdown of the pool
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(map(alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(map(alive, pids))
    finally:
        parent.kill()

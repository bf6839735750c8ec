"""A real Dask cluster on 127.0.0.1 (a scheduler and two worker processes) gets the runs through
MTLUTILS_SCHEDULER and gives the serial results bit for bit."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtlutils import experiments, workers
from tests.same_runs import assert_same_run
from tests.test_workers import GRID

BIN = Path(sys.executable).parent


@pytest.fixture
def cluster(tmp_path):
    """The address of a scheduler with two single-threaded workers, each its own process; all stopped at the end."""
    address_file = tmp_path / "scheduler.json"
    common = ["--no-dashboard"]
    scheduler = subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--scheduler-file", address_file, *common], cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        processes += [subprocess.Popen([BIN / "dask", "worker", "--scheduler-file", address_file, "--nthreads", "1",
                                        "--no-nanny", "--host", "127.0.0.1", *common], cwd=tmp_path,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        from distributed import Client

        with Client(scheduler_file=str(address_file), timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
            address = client.scheduler.address
        assert address.startswith("tcp://127.0.0.1:")
        yield address
    finally:
        workers.shutdown()
        for process in processes[::-1]:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a worker still closing its connection to the scheduler
                process.kill()
                process.wait()


def test_a_grid_on_a_dask_cluster_gives_the_serial_results(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_WORKERS", "1")
    serial = experiments.run_grid(GRID, tmp_path / "serial", progress=False)
    monkeypatch.setenv("MTLUTILS_SCHEDULER", cluster)
    assert workers.where() == f"on the Dask cluster at {cluster}"
    on_cluster = experiments.run_grid(GRID, tmp_path / "cluster", progress=False)
    for a, b in zip(serial, on_cluster, strict=True):
        assert_same_run(a, b)
    from distributed import Client

    with Client(cluster) as client:  # each worker process trained runs: it built their datasets
        built = client.run(lambda: __import__("mtlutils.experiments").experiments._suite.cache_info().currsize)
    assert len(built) == 2 and all(n > 0 for n in built.values())
    assert len(list((tmp_path / "cluster").glob("*.json"))) == len(GRID)  # written here, by the caller


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    import dask

    monkeypatch.setenv("MTLUTILS_SCHEDULER", "tcp://127.0.0.1:9")
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), pytest.raises(ConnectionError, match="Could not reach the Dask scheduler at tcp://127.0.0.1:9"):
        experiments.run_grid(GRID[:2], tmp_path, progress=False)

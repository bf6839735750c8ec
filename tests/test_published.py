"""The book's runs fetched from its site (mtlutils.published), served by a real HTTP server on 127.0.0.1: used when
they pass the cache's checks, retrained with a warning when not, and never needed to train."""

import json
import socket
import sys
import warnings
from pathlib import Path

import nbformat
import pytest

from mtlutils import cache, config, experiments, published
from tests.fileserver import FileServer
from tests.same_runs import assert_same_run

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "book"))
import build  # noqa: E402

GRID = [dict(dataset="clusters", size="smoke", epochs=1, batch_size=64, seed=seed) for seed in range(3)]


@pytest.fixture(scope="module")
def book_runs(tmp_path_factory):
    """The runs of ``GRID`` as a built book's ``_runs/`` folder holds them: {file name: bytes}, and the runs."""
    folder = tmp_path_factory.mktemp("book-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MTLUTILS_BATCH", "1")  # alone, as a run retrained here alone trains
        runs = experiments.run_grid(GRID, folder, progress=False)
    files = {path.name: path.read_bytes() for path in folder.glob("*.json")}
    files["index.json"] = published.index([name[:-5] for name in files])
    return files, runs


@pytest.fixture
def site(book_runs, monkeypatch):
    """The runs served at ``/book/_runs/``, with ``MTLUTILS_RUNS_URL`` pointing there and one local worker."""
    files, _ = book_runs
    with FileServer() as server:
        server.files = {f"/book/_runs/{name}": body for name, body in files.items()}
        monkeypatch.setenv("MTLUTILS_RUNS_URL", f"{server.url}/book/_runs")
        monkeypatch.setenv("MTLUTILS_WORKERS", "1")
        monkeypatch.setenv("MTLUTILS_BATCH", "1")
        yield server


def no_training(monkeypatch):
    monkeypatch.setattr(experiments, "_train_job", lambda *a, **k: pytest.fail("a published run was trained"))


def test_runs_missing_here_come_from_the_site_and_are_kept(site, book_runs, tmp_path, monkeypatch):
    no_training(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fetched = experiments.run_grid(GRID, tmp_path / "mine", progress=False)
    for run, expected in zip(fetched, book_runs[1], strict=True):
        assert_same_run(run, expected, times=True)
    keys = {config.config_key(c) for c in GRID}
    assert {p.stem for p in (tmp_path / "mine").glob("*.json")} == keys
    asked = [path for path, _ in site.requests]
    assert asked.count("/book/_runs/index.json") <= 1  # read once per process
    site.requests.clear()
    experiments.run_grid(GRID, tmp_path / "mine", progress=False)  # now local: nothing asked of the site
    assert site.requests == []


def test_a_damaged_published_run_is_trained_here_with_a_warning_naming_it(site, book_runs, tmp_path):
    key = config.config_key(GRID[1])
    body = site.files[f"/book/_runs/{key}.json"]
    site.files[f"/book/_runs/{key}.json"] = body[:-40] + bytes(40)  # the end of the file changed
    with pytest.warns(cache.DamagedCacheWarning, match=rf"{key}\.json is not used: its contents do not match"):
        runs = experiments.run_grid(GRID, tmp_path / "mine", progress=False)
    assert_same_run(runs[1], book_runs[1][1])  # trained here, the same run
    assert cache.RunCache(tmp_path / "mine").load(key, config.resolve(GRID[1])) is not None


def test_a_site_without_the_runs_or_unreachable_trains_them_here(book_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("MTLUTILS_WORKERS", "1")
    monkeypatch.setenv("MTLUTILS_BATCH", "1")
    with FileServer() as server:  # serves nothing: every request is a 404
        monkeypatch.setenv("MTLUTILS_RUNS_URL", f"{server.url}/gone/_runs/")
        with pytest.warns(published.PublishedRunsUnavailable, match=r"gone/_runs/ cannot be used .*train here"):
            runs = experiments.run_grid(GRID[:1], tmp_path / "mine", progress=False)
    assert_same_run(runs[0], book_runs[1][0])
    monkeypatch.setenv("MTLUTILS_RUNS_URL", f"{server.url}/closed/")  # the server is gone: no connection
    with pytest.warns(published.PublishedRunsUnavailable, match="cannot be used"):
        experiments.run_grid(GRID[1:2], tmp_path / "mine", progress=False)


def test_a_run_the_index_lists_but_the_site_lacks_is_trained_here(site, tmp_path):
    key = config.config_key(GRID[2])
    del site.files[f"/book/_runs/{key}.json"]
    with pytest.warns(published.PublishedRunsUnavailable, match=rf"{key}\.json could not be downloaded"):
        experiments.run_grid(GRID, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / f"{key}.json").exists()


def test_an_empty_setting_turns_fetching_off_and_a_malformed_one_is_refused_before_any_run(site, tmp_path,
                                                                                            monkeypatch):
    monkeypatch.setenv("MTLUTILS_RUNS_URL", "")
    experiments.run_grid(GRID[:1], tmp_path / "mine", progress=False)
    assert site.requests == []
    monkeypatch.setenv("MTLUTILS_RUNS_URL", "mtl-book.github.io/_runs")
    no_training(monkeypatch)
    with pytest.raises(ValueError, match=r"MTLUTILS_RUNS_URL='mtl-book.github.io/_runs' is not a URL"):
        experiments.run_grid(GRID[1:2], tmp_path / "mine", progress=False)


@pytest.mark.xdist_group("smoke-book")
def test_a_chapter_runs_from_the_runs_of_a_built_book_and_retrains_a_damaged_one(smoke_executed, smoke_cache, tmp_path,
                                                                                  monkeypatch):
    chapter = build.NOTEBOOKS[0]
    smoke_executed(chapter)  # a built book whose runs include the chapter's
    site = tmp_path / "site" / "_runs"
    build.ship_runs(sorted(smoke_cache.glob("*.json")), site)
    with socket.socket() as probe:  # a port with no scheduler behind it: a run left to train fails to reach it
        probe.bind(("127.0.0.1", 0))
        nobody = probe.getsockname()[1]
    monkeypatch.setenv("MTLUTILS_SCHEDULER", f"tcp://127.0.0.1:{nobody}")
    with FileServer() as server:
        server.files = {f"/_runs/{path.name}": path.read_bytes() for path in site.iterdir()}
        monkeypatch.setenv("MTLUTILS_RUNS_URL", f"{server.url}/_runs/")
        build.execute(chapter, "smoke", tmp_path / "executed", cache_dir=tmp_path / "mine")
        fetched = {path.name for path in (tmp_path / "mine").glob("*.json")}
        asked = {path.removeprefix("/_runs/") for path, _ in server.requests} - {"index.json"}
        assert fetched and fetched == asked  # every run came from the site: none trained

        damaged = sorted(fetched)[0]
        server.files[f"/_runs/{damaged}"] = server.files[f"/_runs/{damaged}"].replace(b'"loss', b'"LOSS', 1)
        monkeypatch.delenv("MTLUTILS_SCHEDULER")  # this time a run may train, here
        monkeypatch.setenv("MTLUTILS_WORKERS", "1")
        executed = build.execute(chapter, "smoke", tmp_path / "again", cache_dir=tmp_path / "mine-again")
    said = "".join(output.get("text", "") for cell in nbformat.read(executed, as_version=4).cells
                   for output in cell.get("outputs", []) if output.get("name") == "stderr")
    assert f"{server.url}/_runs/{damaged} is not used: its contents do not match their checksum" in said
    retrained, published = stored_run(tmp_path / "mine-again" / damaged), stored_run(smoke_cache / damaged)
    assert retrained.history.step.equals(published.history.step)  # retrained, alone here, where the book may
    for split, tasks in published.metrics.items():                 # have stacked it: equal up to float rounding
        for task, scores in tasks.items():
            assert retrained.metrics[split][task] == pytest.approx(scores, rel=1e-4, abs=1e-6)


def stored_run(path):
    """The run in the cache file ``path``, checked against the configuration its header names."""
    data = path.read_bytes()
    config_of_file = json.loads(data.partition(b"\n")[0])["config"]
    return cache.verified(data, path.stem, config_of_file, str(path), "")

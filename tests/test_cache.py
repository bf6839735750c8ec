"""The run cache: verified files that load bit for bit, never run code, and are retrained when damaged."""

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mtlutils import cache, config, experiments
from tests.same_runs import assert_same_run

ROOT = Path(__file__).resolve().parent.parent
# one group-updating strategy, so that the run has affinity snapshots, groups and measurements to store
CONFIG = dict(dataset="clusters", size="smoke", epochs=2, batch_size=64, data={"angle": 90},
              strategy="affinity_probe", strategy_kwargs={"lookahead_every": 3}, gradient_cosine_every=4)
OTHER = {**CONFIG, "seed": 1}


@pytest.fixture
def trained(tmp_path):
    """A run trained once and stored: (cache folder, its key, the run)."""
    folder = tmp_path / "runs"
    run = experiments.run(CONFIG, folder)
    return folder, config.config_key(CONFIG), run


def test_a_stored_run_reads_back_bit_for_bit(trained):
    folder, key, run = trained
    assert run.affinity and run.cosines and run.measurements["lookahead"] and run.groups
    assert [p.name for p in folder.iterdir()] == [f"{key}.json"]  # no temporary file left
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = cache.RunCache(folder).load(key, config.resolve(CONFIG))
    assert_same_run(again, run, times=True)


frames = st.integers(0, 6).flatmap(lambda n: st.fixed_dictionaries({
    "step": hnp.arrays(np.int64, n), "loss": hnp.arrays(np.float64, n), "groups": st.lists(st.text(), min_size=n, max_size=n),
}).map(pd.DataFrame))
values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**62, 2**62) | st.floats(allow_nan=False) | st.text()
    | hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]), hnp.array_shapes(min_dims=0, max_side=3)),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
) | frames


def same(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and list(a.columns) == list(b.columns) and all(
            a[c].dtype == b[c].dtype and same(a[c].to_numpy() if a[c].dtype.kind in "biuf" else a[c].tolist(),
                                              b[c].to_numpy() if b[c].dtype.kind in "biuf" else b[c].tolist())
            for c in a.columns)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or a != a and b != b)


@settings(max_examples=100, deadline=None)
@given(values)
def test_encoding_round_trips_through_json_exactly(value):
    assert same(cache.decode(json.loads(json.dumps(cache.encode(value)))), value)


def test_what_cannot_be_stored_exactly_is_refused():
    for value in (np.array(["a"], dtype=object), {1: "a"}, {"__array__": 1}, object()):
        with pytest.raises(TypeError, match="cache: cannot store"):
            cache.encode(value)


def retrained_with_warning(folder, described, match):
    """The run of ``described`` through the grid, which must warn about the named file and train it again."""
    path = folder / f"{config.config_key(described)}.json"
    with pytest.warns(cache.DamagedCacheWarning, match=match) as record:
        run = experiments.run(described, folder)
    assert str(path) in str(record[0].message)
    with warnings.catch_warnings():  # and the file written in its place is whole
        warnings.simplefilter("error")
        assert_same_run(experiments.run(described, folder), run)
    return run


def test_a_truncated_file_is_retrained_with_a_warning(trained):
    folder, key, run = trained
    path = folder / f"{key}.json"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_same_run(retrained_with_warning(folder, CONFIG, "cut short or changed"), run)
    path.write_bytes(path.read_bytes()[:10])  # not even a whole header
    assert_same_run(retrained_with_warning(folder, CONFIG, "cannot be read"), run)


def test_a_file_with_one_byte_changed_is_retrained_with_a_warning(trained):
    folder, key, run = trained
    path = folder / f"{key}.json"
    data = bytearray(path.read_bytes())
    position = data.index(b'"__array__"') + 40  # inside an array's bytes, where a change would still parse
    data[position] = ord("A") if data[position] != ord("A") else ord("B")
    path.write_bytes(bytes(data))
    assert_same_run(retrained_with_warning(folder, CONFIG, "checksum"), run)


def test_a_run_filed_under_another_key_is_not_returned_as_this_one(trained):
    folder, key, run = trained
    other_path = folder / f"{config.config_key(OTHER)}.json"
    other_path.write_bytes((folder / f"{key}.json").read_bytes())
    other = retrained_with_warning(folder, OTHER, "another key")
    assert other.metrics != run.metrics
    # the same file, its header edited to claim the other key: the configuration it records still tells
    header, _, body = (folder / f"{key}.json").read_bytes().partition(b"\n")
    forged = {**json.loads(header), "key": other_path.stem}
    other_path.write_bytes(json.dumps(forged).encode() + b"\n" + body)
    assert retrained_with_warning(folder, OTHER, "another configuration").metrics == other.metrics


def test_loading_a_cache_file_cannot_run_code(tmp_path):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / f"{config.config_key(CONFIG)}.json").write_bytes(pickle.dumps(Payload()))
    with pytest.warns(cache.DamagedCacheWarning, match="cannot be read"):
        experiments.run(CONFIG, folder)
    assert not marker.exists()


TWO_WRITERS = """
import sys
from mtlutils import experiments
print(experiments.run(%r, sys.argv[1]).metrics["test"])
"""


def test_two_processes_asking_for_one_run_at_once_leave_one_whole_file(tmp_path):
    folder = tmp_path / "runs"
    env = {**os.environ, "MTLUTILS_WORKERS": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", TWO_WRITERS % CONFIG, str(folder)], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    assert outputs[0][0] == outputs[1][0]  # both got the same run
    assert [p.name for p in folder.iterdir()] == [f"{config.config_key(CONFIG)}.json"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stored = cache.RunCache(folder).load(config.config_key(CONFIG), config.resolve(CONFIG))
    assert str(stored.metrics["test"]) == outputs[0][0].strip()

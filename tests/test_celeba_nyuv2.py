"""CelebA and NYUv2: preparation on fixtures in their real file formats, loading, networks and NYUv2's metrics."""

import numpy as np
import pytest
import torch

from data_scripts import celeba as celeba_script
from data_scripts import nyuv2 as nyuv2_script
from mtlutils import data, models
from mtlutils.datasets import nyuv2
from tests.fixtures import write_celeba, write_nyuv2

NAMES = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Black_Hair", "Blond_Hair", "Brown_Hair", "Goatee", "Mustache",
         "No_Beard", "Rosy_Cheeks", "Wearing_Hat", "Young"]


@pytest.fixture
def celeba_root(tmp_path):
    raw = tmp_path / "celeba" / "raw"
    signs = write_celeba(raw, [0, 0, 0, 1, 2, 2], np.random.default_rng(0), names=NAMES)
    celeba_script.prepare(raw, tmp_path / "celeba", progress=False)
    return tmp_path, [f"{i:06d}.jpg" for i in range(1, 7)], signs


def test_celeba_preparation_keeps_the_official_splits_and_labels(celeba_root):
    root, images, signs = celeba_root
    suite = data.load("celeba", "full", root=root)
    assert (len(suite.train), len(suite.val), len(suite.test)) == (3, 1, 2)
    assert suite.train.x.shape == (3, 3, 64, 64) and suite.train.x.dtype == torch.uint8
    assert suite.task_names == NAMES
    assert suite.test.y["Young"].tolist() == [float(s > 0) for s in signs[4:, -1]]
    out = models.for_suite(suite)(suite.train.x)
    assert out["Goatee"].shape == (3, 1)



@pytest.mark.parametrize("side", [8, 16])
def test_celeba_prepared_at_another_side_loads_and_trains_the_same_network(tmp_path, side):
    raw = tmp_path / "celeba" / "raw"
    write_celeba(raw, [0, 0, 1, 2], np.random.default_rng(1), names=NAMES)
    celeba_script.prepare(raw, tmp_path / "celeba", progress=False, side=side)
    suite = data.load("celeba", "full", root=tmp_path)
    assert suite.train.x.shape == (2, 3, side, side)
    assert models.for_suite(suite)(suite.train.x)["Young"].shape == (2, 1)


@pytest.mark.parametrize("side", [7, 0, 16.0, True])
def test_celeba_refuses_a_side_the_network_cannot_take_before_downloading(tmp_path, side, capsys):
    with pytest.raises(ValueError, match="at least 8"):
        celeba_script.prepare(tmp_path, tmp_path / "out", side=side)
    with pytest.raises(SystemExit):
        celeba_script.main(["--root", str(tmp_path), "--side", "4"])
    assert "at least 8" in capsys.readouterr().err and not (tmp_path / "celeba").exists()

def test_celeba_tag_subset_and_bad_requests(celeba_root, tmp_path):
    root, _, _ = celeba_root
    assert len(data.load("celeba", "full", root=root, attributes="tag9").tasks) == 9
    with pytest.raises(ValueError, match="unknown attribute"):
        data.load("celeba", "full", root=root, attributes=["Smiling_Wide"])
    with pytest.raises(ValueError, match="only a 'full' size"):
        data.load("celeba", "small")
    with pytest.raises(data.DataNotPrepared, match=r"python -m data_scripts\.celeba"):
        data.load("celeba", "full", root=tmp_path / "empty")


@pytest.fixture
def nyuv2_root(tmp_path):
    extracted = tmp_path / "extracted" / "nyuv2"
    write_nyuv2(extracted, np.random.default_rng(0))
    nyuv2_script.prepare(extracted, tmp_path / "nyuv2")
    return tmp_path


def test_nyuv2_preparation_yields_channel_first_splits(nyuv2_root):
    suite = data.load("nyuv2", "full", root=nyuv2_root)
    assert (len(suite.train), len(suite.val), len(suite.test)) == (9, 1, 3)
    assert suite.train.x.shape == (9, 3, 16, 24)
    assert suite.train.y["segmentation"].shape == (9, 16, 24) and suite.train.y["segmentation"].min() >= -1
    assert suite.train.y["depth"].shape == (9, 1, 16, 24) and suite.train.y["normal"].shape == (9, 3, 16, 24)
    net = models.for_suite(suite, widths=(4, 8))
    out = net(suite.train.x[:2])
    assert out["segmentation"].shape == (2, 13, 16, 24) and out["normal"].shape == (2, 3, 16, 24)
    for task in suite.tasks:
        assert torch.isfinite(task.loss(out[task.name], suite.train.y[task.name][:2]))


def test_segmentation_metrics_match_a_hand_computation_with_ignored_pixels():
    target = torch.tensor([[[0, 0, 1], [1, 2, -1]]])  # one ignored pixel
    labels = torch.tensor([[[0, 1, 1], [1, 1, 0]]])
    # valid pixels: 5, correct: (0,0) (0,2) (1,0) -> 3/5. IoU = inter / (truth + predicted - inter) over valid
    # pixels: class 0: 1/(2+1-1) = 1/2; class 1: 2/(2+4-2) = 1/2; class 2: 0/(1+0-0) = 0 -> mean 1/3.
    assert nyuv2.pixel_accuracy(labels, target) == pytest.approx(3 / 5)
    assert nyuv2.mean_iou(labels, target) == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)


def test_depth_metrics_ignore_pixels_without_depth():
    target = torch.tensor([[[[2.0, 0.0], [4.0, 1.0]]]])
    prediction = torch.tensor([[[[1.0, 9.0], [5.0, 1.5]]]])
    # valid: 2, 4, 1 with errors 1, 1, 0.5 -> abs 2.5/3; rel (1/2 + 1/4 + 0.5/1)/3
    assert nyuv2.abs_error(prediction, target) == pytest.approx(2.5 / 3)
    assert nyuv2.rel_error(prediction, target) == pytest.approx((0.5 + 0.25 + 0.5) / 3)


def test_normal_metrics_ignore_pixels_without_normal():
    target = torch.zeros(1, 3, 1, 4)
    target[0, :, 0, 0] = torch.tensor([0.0, 0.0, 1.0])
    target[0, :, 0, 1] = torch.tensor([0.0, 0.0, 1.0])
    target[0, :, 0, 2] = torch.tensor([1.0, 0.0, 0.0])  # pixel 3 has no normal
    prediction = torch.zeros(1, 3, 1, 4)
    prediction[0, :, 0, 0] = torch.tensor([0.0, 0.0, 2.0])  # 0 degrees (length does not matter)
    prediction[0, :, 0, 1] = torch.tensor([1.0, 0.0, 1.0])  # 45 degrees
    prediction[0, :, 0, 2] = torch.tensor([0.0, 1.0, 0.0])  # 90 degrees
    prediction[0, :, 0, 3] = torch.tensor([1.0, 1.0, 1.0])
    angles = sorted(nyuv2.normal_angles(prediction, target).tolist())
    assert angles == pytest.approx([0.0, 45.0, 90.0], abs=1e-3)
    metrics = nyuv2.NORMAL_METRICS
    assert metrics["angle_mean"](prediction, target) == pytest.approx(45.0, abs=1e-3)
    assert metrics["angle_median"](prediction, target) == pytest.approx(45.0, abs=1e-3)
    assert metrics["within_11.25"](prediction, target) == pytest.approx(1 / 3)
    assert metrics["within_30"](prediction, target) == pytest.approx(1 / 3)
    assert metrics["within_22.5"](prediction, target) == pytest.approx(1 / 3)


def test_an_empty_prepared_celeba_file_names_itself_and_the_command(celeba_root):
    root, _, _ = celeba_root
    (root / "celeba" / "val_images.npy").write_bytes(b"")
    with pytest.raises(data.DataDamaged, match=r"(?s)val_images\.npy of dataset 'celeba' is damaged or incomplete "
                                               r"\(.*the file has 0 bytes\).*python -m data_scripts\.celeba --root"):
        data.load("celeba", "full", root=root)

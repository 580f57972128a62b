"""Datasets, loaders on generated data, the inverse ISP, and SensorDataset."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from adcforge.errors import AdcforgeError, ConfigError
from sim import isp, load_sensor
from sim.data import (DATASETS, SCENE_CLASSES, DatasetNote, SensorDataset, load_dataset,
                      make_scenes)


@pytest.mark.parametrize("name", DATASETS)
def test_bundled_datasets_shapes_ranges_and_determinism(name):
    x, y, classes = load_dataset(name, "train", seed=0)
    xt, yt, _ = load_dataset(name, "test", seed=0)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.ndim == 3 and x.shape[1:] == xt.shape[1:]
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) == set(range(len(classes)))
    assert len(x) > 3 * len(xt) > 0
    x2, y2, _ = load_dataset(name, "train", seed=0)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    x[0] = -1.0  # the caller's copy; the cache is not touched
    assert np.array_equal(load_dataset(name, "train", seed=0)[0], x2)


def test_digits_is_sklearn_digits_scaled():
    from sklearn.datasets import load_digits

    x, y, classes = load_dataset("digits", "train")
    xt, yt, _ = load_dataset("digits", "test")
    assert classes == [str(i) for i in range(10)]
    assert len(x) + len(xt) == len(load_digits().images) == 1797
    assert x.max() == 1.0 and x.shape[1:] == (8, 8)


def test_hdr_scenes_have_a_lamp_50_to_200_times_the_subject():
    x, y, classes = load_dataset("hdr", "test")
    assert classes == list(SCENE_CLASSES) and x.shape[1:] == (16, 16)
    peak = x.reshape(len(x), -1).max(axis=1)
    subject = np.median(x.reshape(len(x), -1), axis=1)
    ratio = peak / subject
    assert np.all(peak > 0.95)
    assert 30 < np.percentile(ratio, 5) and np.percentile(ratio, 95) < 260
    plain, _, _ = load_dataset("scenes", "test")
    assert np.median(plain.reshape(len(plain), -1).max(axis=1)) < 0.9  # no lamp


def test_scene_classes_differ_in_their_pattern_not_their_brightness():
    x, y = make_scenes(2000, np.random.default_rng(0), hdr=False)
    means = [x[y == c].mean() for c in range(4)]
    assert max(means) / min(means) < 1.1
    # gratings: energy along the labelled axis
    def axis_var(imgs, axis):
        return imgs.mean(axis=axis).var(axis=1).mean()
    h, v = x[y == 0], x[y == 1]
    assert axis_var(h, 2) > 3 * axis_var(h, 1)  # horizontal stripes: rows differ
    assert axis_var(v, 1) > 3 * axis_var(v, 2)


def _write_folder(root, sizes=(8, 8), per_class=5, colour=True):
    rng = np.random.default_rng(0)
    for c in ("cats", "dogs"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, sizes + ((3,) if colour else ()), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")


def test_image_folder_seeded_split(tmp_path):
    _write_folder(tmp_path, per_class=10)
    x, y, classes = load_dataset(tmp_path, "train", seed=0)
    xt, yt, _ = load_dataset(tmp_path, "test", seed=0)
    assert classes == ["cats", "dogs"]
    assert x.shape == (16, 8, 8) and xt.shape == (4, 8, 8)
    assert list(np.bincount(yt)) == [2, 2]
    assert 0 <= x.min() and x.max() <= 1
    xb, _, _ = load_dataset(tmp_path, "train", seed=0, mode="bayer")
    assert xb.shape == (16, 8, 8)


def test_image_folder_train_test_subfolders_and_gray_images(tmp_path):
    _write_folder(tmp_path / "train", per_class=3, colour=False)
    _write_folder(tmp_path / "test", per_class=2, colour=False)
    x, y, _ = load_dataset(tmp_path, "train")
    xt, yt, _ = load_dataset(tmp_path, "test")
    assert len(x) == 6 and len(xt) == 4
    # a gray PNG value v maps to the linear inverse-ISP value of v
    v = np.asarray(Image.open(tmp_path / "train" / "cats" / "0.png"), dtype=np.float64) / 255
    assert np.allclose(x[0], isp.unprocess_gray(v), atol=1e-6)


def test_image_folder_errors_name_the_problem(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AdcforgeError, match="empty: no class sub-folders"):
        load_dataset(empty)
    (empty / "cats").mkdir()
    with pytest.raises(AdcforgeError, match="no images in the class folders cats"):
        load_dataset(empty)
    bad = tmp_path / "bad"
    _write_folder(bad, per_class=3)
    (bad / "cats" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(AdcforgeError, match=r"broken\.png: cannot read image"):
        load_dataset(bad, "train", seed=0)
    mixed = tmp_path / "mixed"
    _write_folder(mixed, per_class=3)
    Image.fromarray(np.zeros((6, 10, 3), np.uint8)).save(mixed / "dogs" / "z.png")
    with pytest.warns(DatasetNote, match=r"mixed: 1 images resized to 8x8 \(height x width\), "
                                         r"the folder's most common size"):
        x, _, _ = load_dataset(mixed, "train")
    assert x.shape[1:] == (8, 8)
    x, _, _ = load_dataset(mixed, "train", size=(6, 10))
    assert x.shape[1:] == (6, 10)
    with pytest.raises(ConfigError, match="neither a bundled dataset"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="split 'val'"):
        load_dataset("digits", "val")


def test_cifar10_and_cifar100_pickles(tmp_path):
    rng = np.random.default_rng(0)
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    for name, n in [("data_batch_1", 6), ("data_batch_2", 4), ("test_batch", 3)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, n))}
        (c10 / name).write_bytes(pickle.dumps(batch))
    (c10 / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": [f"c{i}".encode() for i in range(10)]}))
    x, y, classes = load_dataset(tmp_path, "train")
    assert x.shape == (10, 32, 32) and y.dtype == np.int64 and classes[3] == "c3"
    assert load_dataset(c10, "test")[0].shape == (3, 32, 32)
    c100 = tmp_path / "c100"
    c100.mkdir()
    for name, n in [("train", 5), ("test", 2)]:
        (c100 / name).write_bytes(pickle.dumps(
            {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"fine_labels": list(rng.integers(0, 100, n))}))
    (c100 / "meta").write_bytes(pickle.dumps(
        {b"fine_label_names": [f"f{i}".encode() for i in range(100)]}))
    x, y, classes = load_dataset(c100, "train", mode="bayer")
    assert x.shape == (5, 32, 32) and len(classes) == 100


def test_inverse_isp_inverts_the_forward_isp():
    rng = np.random.default_rng(0)
    srgb = rng.uniform(0, 0.8, (16, 16, 3))
    params = isp.random_params(rng)
    cam = isp.unprocess(srgb, params, pattern=None)
    assert np.allclose(isp.process(cam, params), srgb, atol=1e-6)
    # sRGB transfer function: 0.5 sRGB is 0.214 linear (IEC 61966-2-1)
    assert isp.srgb_to_linear(np.array(0.5)) == pytest.approx(0.21404, abs=1e-4)
    assert isp.inverse_smoothstep(isp.smoothstep(np.array([0.1, 0.5, 0.9]))) == pytest.approx(
        [0.1, 0.5, 0.9])
    mosaic = isp.mosaic(cam, "RGGB")
    assert mosaic[0, 0] == cam[0, 0, 0] and mosaic[0, 1] == cam[0, 1, 1]
    assert mosaic[1, 1] == cam[1, 1, 2]
    # gray path: white stays white, black stays black
    assert isp.unprocess_gray(np.ones((2, 2, 3))) == pytest.approx(1.0)
    assert isp.unprocess_gray(np.zeros((2, 2))) == pytest.approx(0.0)


def test_sensor_dataset_fresh_noise_and_photon_range():
    x, y, _ = load_dataset("digits", "test")
    sensor = load_sensor("phone", width=8, height=8)
    ds = SensorDataset(sensor, x, y, photons=200.0, seed=1)
    a, la = ds[0]
    b, lb = ds[0]
    assert a.shape == (8, 8) and a.dtype == torch.float32 and la == lb == int(y[0])
    assert not torch.equal(a, b)  # fresh noise
    # mean signal follows the image: white pixels ≈ 200 photons × η × K above black
    dn, labels, white = ds.sample(list(range(len(x))))
    k = sensor.config.conversion_gain_dn_per_e
    bright = (dn - sensor.config.black_level_dn)[torch.as_tensor(x) > 0.99].mean().item()
    assert bright == pytest.approx(200 * 0.55 * k, rel=0.1)  # mean η over the Bayer quad ≈ 0.55
    ranged = SensorDataset(sensor, x, y, photons=(10.0, 1000.0), seed=2)
    _, _, w = ranged.sample(list(range(len(x))))
    assert 10.0 <= w.min() and w.max() <= 1000.0
    assert np.median(np.log(w.numpy())) == pytest.approx(np.log(100.0), abs=0.3)  # log-uniform
    batches = list(ranged.batches(100))
    assert sum(len(b[1]) for b in batches) == len(x)
    loader = torch.utils.data.DataLoader(ds, batch_size=32)
    xb, yb = next(iter(loader))
    assert xb.shape == (32, 8, 8) and yb.shape == (32,)
    with pytest.raises(ConfigError, match="sensor is 16x16"):
        SensorDataset(load_sensor("phone", width=16, height=16), x, y, photons=10.0)


def test_patch_task_puts_the_class_in_a_bright_minority_of_the_pixels():
    from sim.data import PATCH_CLASSES, PATCH_SIDE, make_patches

    x, y = make_patches(400, np.random.default_rng(3))
    assert x.shape == (400, 16, 16) and set(np.unique(y)) == set(range(len(PATCH_CLASSES)))
    glint = x > 0.99
    assert set(glint.sum(axis=(1, 2))) == {0, 4} and 0.3 < glint.any(axis=(1, 2)).mean() < 0.7
    bright = (x > 0.1) & ~glint
    assert np.all(bright.sum(axis=(1, 2)) == PATCH_SIDE**2)  # the patch, nothing else
    assert np.all(x[~bright & ~glint] <= 0.04) and np.all(x[bright] >= 0.25)
    # no class is brighter on average: the patch mean is its level whatever the texture
    means = np.array([x[i][bright[i]].mean() for i in range(len(x))])
    for c in range(len(PATCH_CLASSES)):
        assert 0.40 < means[y == c].mean() < 0.45
    # the flat class has no texture inside the patch; the others do
    spread = np.array([x[i][bright[i]].std() / means[i] for i in range(len(x))])
    assert np.all(spread[y == 3] < 1e-6) and np.all(spread[y != 3] > 0.05)

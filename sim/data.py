"""Datasets for the sensor model: bundled (no download), image folders, CIFAR; a torch Dataset.

:func:`load_dataset` returns ``(images, labels, class_names)``: images float32 ``[N, H, W]`` in
[0, 1] as linear relative radiance (1.0 = white), labels int64 ``[N]``. Bundled names
(:data:`DATASETS`):

- ``digits``: scikit-learn's 8×8 handwritten digits (10 classes), scaled to [0, 1]; seeded 80/20
  split.
- ``hdr``: procedural night scenes, 16×16: a dim textured subject (4 classes that differ in dark
  detail, low contrast and texture) and a bright lamp in the frame at 50–200× the subject's
  brightness.
- ``scenes``: the same subjects at ordinary brightness, no lamp.
- ``patch``: procedural, 16×16: a small bright textured patch (6×6, 14 % of the pixels) whose
  texture is the class (4 classes), on a large dim flat background, and in half the images a
  small glint at white — the task's information lies in a minority band of the sample
  histogram, so that where an ADC puts its thresholds decides the outcome
  (:func:`make_patches`).

Any other argument is a directory: an ImageFolder tree (a sub-folder per class; ``train/`` and
``test/`` sub-folders are the split when present, else a seeded 80/20 split per class) or a
CIFAR-10/100 python-pickle folder. Colour images go through the inverse ISP (:mod:`sim.isp`) to
linear grayscale (``mode="gray"``, default) or an RGGB mosaic (``mode="bayer"``).

:class:`SensorDataset` turns images into sensor samples in DN with fresh noise on every access.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from adcforge.errors import AdcforgeError, ConfigError

from . import isp

DATASETS = ("digits", "hdr", "scenes", "patch")
SCENE_CLASSES = ("horizontal", "vertical", "diagonal", "spots")
SCENE_SIZE = 16
SCENE_COUNTS = {"train": 4000, "test": 1000}
PATCH_CLASSES = ("horizontal", "vertical", "checker", "flat")
PATCH_SIZE = 16
PATCH_SIDE = 6
PATCH_COUNTS = {"train": 4000, "test": 1000}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
SPLITS = ("train", "test")
TEST_FRACTION = 0.2


class DatasetError(AdcforgeError):
    """A dataset folder or file is missing, empty, unreadable or inconsistent."""


def load_dataset(name_or_dir: str | os.PathLike, split: str = "train", seed: int = 0,
                 mode: str = "gray", size: tuple[int, int] | None = None):
    """Load a dataset split; return ``(images float32 [N, H, W], labels int64 [N], class_names)``.

    ``name_or_dir``: one of :data:`DATASETS` or a directory (ImageFolder or CIFAR python-pickle).
    ``split``: ``"train"`` or ``"test"``. ``seed`` fixes the procedural scenes and seeded splits.
    ``mode``: ``"gray"`` (linear luminance) or ``"bayer"`` (RGGB mosaic of linear camera RGB;
    folders and CIFAR only). ``size``: ``(height, width)`` to resize folder images to; without
    it, to the folder's most common size (:func:`common_size`; a :class:`DatasetNote` warning
    says how many were resized). Raises :class:`DatasetError` /
    :class:`~adcforge.errors.ConfigError` naming the problem (and the file).
    """
    if split not in SPLITS:
        raise ConfigError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if mode not in ("gray", "bayer"):
        raise ConfigError(f"mode {mode!r} is not one of gray, bayer")
    name = os.fspath(name_or_dir)
    if name in DATASETS:
        if mode != "gray":
            raise ConfigError(f"dataset {name!r} is grayscale; mode must be 'gray'")
        if name == "digits":
            images, labels, classes = _digits(split, seed)
        elif name == "patch":
            images, labels = _patches_cached(split, seed)
            classes = list(PATCH_CLASSES)
        else:
            images, labels = _scenes_cached(name == "hdr", split, seed)
            classes = list(SCENE_CLASSES)
        return images.copy(), labels.copy(), list(classes)
    path = Path(name)
    if not path.exists():
        raise ConfigError(f"dataset {name!r} is neither a bundled dataset "
                          f"({', '.join(DATASETS)}) nor an existing directory")
    if not path.is_dir():
        raise DatasetError(f"{path}: a dataset must be a directory (ImageFolder or CIFAR)")
    cifar = _cifar_dir(path)
    if cifar is not None:
        return _load_cifar(cifar, split, mode)
    return _load_image_folder(path, split, seed, mode, size)


# -- digits ---------------------------------------------------------------------------------------
def _seeded_split(labels: np.ndarray, split: str, seed: int) -> np.ndarray:
    """Return indices of ``split``: per class, a seeded permutation; the first 20 % are test."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5917]))
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(math.ceil(TEST_FRACTION * len(idx))) if len(idx) > 1 else 0
        chosen.append(idx[:n_test] if split == "test" else idx[n_test:])
    return np.sort(np.concatenate(chosen))


@lru_cache(maxsize=8)
def _digits(split: str, seed: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images / 16.0).astype(np.float32)
    labels = d.target.astype(np.int64)
    idx = _seeded_split(labels, split, seed)
    return images[idx], labels[idx], [str(i) for i in range(10)]


# -- procedural scenes ----------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _scenes_cached(hdr: bool, split: str, seed: int):
    n = SCENE_COUNTS[split]
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(hdr), SPLITS.index(split)]))
    images, labels = make_scenes(n, rng, hdr=hdr, size=SCENE_SIZE)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def make_scenes(n: int, rng: np.random.Generator, hdr: bool, size: int = SCENE_SIZE):
    """Generate ``n`` labelled scenes ``[n, size, size]`` (float32, [0, 1]) and labels.

    Subject: a level ``L`` modulated by a class pattern of low contrast (15–40 %): 0 horizontal
    grating, 1 vertical grating, 2 diagonal grating (periods 3–7 px, random phase), 3 two to four
    small dark spots (dark detail; zero-mean, so that no class is brighter on average). Every
    class also carries a random fine texture (±8 %) and a smooth illumination gradient. Ordinary
    scenes: ``L`` in 0.15–0.5. HDR (``hdr=True``): ``L`` is 1/200–1/50 of white and a lamp
    (Gaussian core, σ 0.7–1.5 px, peak 1.0 = white, plus a faint 1/r² glare) sits near an edge of
    the frame, so the lamp is 50–200× the subject.
    """
    labels = rng.integers(0, len(SCENE_CLASSES), size=n).astype(np.int64)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    yy, xx = yy[None], xx[None]
    period = rng.uniform(3.0, 7.0, size=(n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    contrast = rng.uniform(0.15, 0.40, size=(n, 1, 1))
    k = 2 * np.pi / period
    lab = labels[:, None, None]
    coord = np.where(lab == 0, yy, np.where(lab == 1, xx, (xx + yy) / np.sqrt(2)))
    pattern = np.sin(k * coord + phase)
    # spots: 2..4 dark Gaussian dots of radius ~1 px
    spots = np.zeros((n, size, size))
    n_spots = rng.integers(2, 5, size=n)
    for j in range(4):
        cy = rng.uniform(2, size - 3, size=(n, 1, 1))
        cx = rng.uniform(2, size - 3, size=(n, 1, 1))
        r = rng.uniform(0.8, 1.5, size=(n, 1, 1))
        on = (j < n_spots)[:, None, None]
        spots = spots + on * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    spot_pattern = -2.0 * np.clip(spots, 0, 1)
    spot_pattern -= spot_pattern.mean(axis=(1, 2), keepdims=True)  # darker detail, same mean
    pattern = np.where(lab == 3, spot_pattern, pattern)
    texture = rng.uniform(-0.08, 0.08, size=(n, size, size))
    gy, gx = rng.uniform(-0.15, 0.15, size=(2, n, 1, 1))
    gradient = 1.0 + gy * (yy / size - 0.5) * 2 + gx * (xx / size - 0.5) * 2
    if hdr:
        level = 1.0 / rng.uniform(50.0, 200.0, size=(n, 1, 1))
    else:
        level = rng.uniform(0.15, 0.5, size=(n, 1, 1))
    image = level * gradient * (1.0 + contrast * pattern + texture)
    if hdr:
        # the lamp: near an edge or corner so that the subject stays visible
        edge = rng.integers(0, 4, size=n)
        along = rng.uniform(1, size - 2, size=n)
        inset = rng.uniform(0.5, 3.0, size=n)
        ly = np.select([edge == 0, edge == 1, edge == 2], [inset, size - 1 - inset, along], along)
        lx = np.select([edge == 0, edge == 1, edge == 2], [along, along, inset], size - 1 - inset)
        ly, lx = ly[:, None, None], lx[:, None, None]
        sigma = rng.uniform(0.7, 1.5, size=(n, 1, 1))
        d2 = (yy - ly) ** 2 + (xx - lx) ** 2
        lamp = np.exp(-d2 / (2 * sigma**2)) + 0.02 * sigma**2 / (d2 + sigma**2)
        lamp = lamp / lamp.max(axis=(1, 2), keepdims=True)
        image = image + lamp
    return np.clip(image, 0.0, 1.0).astype(np.float32), labels


@lru_cache(maxsize=8)
def _patches_cached(split: str, seed: int):
    n = PATCH_COUNTS[split]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9A7C, SPLITS.index(split)]))
    images, labels = make_patches(n, rng)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def make_patches(n: int, rng: np.random.Generator, size: int = PATCH_SIZE,
                 side: int = PATCH_SIDE):
    """Generate ``n`` labelled patch images ``[n, size, size]`` (float32, [0, 1]) and labels.

    Background: flat at 2–4 % of white (the bulk of the histogram). Patch: a ``side × side``
    square at a random position, level ``L`` uniform in 0.35–0.50 of white, modulated by the
    class texture of contrast ``c`` uniform in 8–16 %: 0 horizontal stripes, 1 vertical stripes
    (period 2 or 3 px, random phase), 2 checkerboard (cells of 1 or 2 px), 3 flat. Every texture
    is ``±1`` made zero-mean over the patch, so no class is brighter on average. The classes differ only
    inside the patch, by a few per cent of its level. Half of the images also hold a 2×2
    specular glint at white away from the patch (0.8 % of all pixels, so the 99.9th percentile
    that sets a range-setting ADC lies at white): codes spread evenly over the range put one
    threshold into the patch's band, where the class is.
    """
    labels = rng.integers(0, len(PATCH_CLASSES), size=n).astype(np.int64)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    yy, xx = yy[None], xx[None]
    period = rng.integers(2, 4, size=(n, 1, 1)).astype(np.float64)
    phase = rng.integers(0, 3, size=(n, 1, 1)).astype(np.float64)
    cell = rng.integers(1, 3, size=(n, 1, 1)).astype(np.float64)
    stripes_h = np.where(np.floor((yy + phase) / period * 2) % 2 == 0, 1.0, -1.0)
    stripes_v = np.where(np.floor((xx + phase) / period * 2) % 2 == 0, 1.0, -1.0)
    checker = np.where((np.floor(yy / cell) + np.floor(xx / cell)) % 2 == 0, 1.0, -1.0)
    lab = labels[:, None, None]
    texture = np.select([lab == 0, lab == 1, lab == 2], [stripes_h, stripes_v, checker], 0.0)
    texture = texture - texture.mean(axis=(1, 2), keepdims=True)
    level = rng.uniform(0.35, 0.50, size=(n, 1, 1))
    contrast = rng.uniform(0.08, 0.16, size=(n, 1, 1))
    patch = level * (1.0 + contrast * texture)
    images = np.repeat(rng.uniform(0.02, 0.04, size=(n, 1, 1)), size, 1).repeat(size, 2)
    y0 = rng.integers(0, size - side + 1, size=n)
    x0 = rng.integers(0, size - side + 1, size=n)
    glint = rng.random(n) < 0.5
    gy = rng.integers(0, size - 1, size=n)
    gx = rng.integers(0, size - 1, size=n)
    for i in range(n):
        if glint[i]:  # a 2x2 specular glint at white, outside the patch
            while (y0[i] - 1 <= gy[i] <= y0[i] + side) and (x0[i] - 1 <= gx[i] <= x0[i] + side):
                gy[i], gx[i] = rng.integers(0, size - 1), rng.integers(0, size - 1)
            images[i, gy[i]:gy[i] + 2, gx[i]:gx[i] + 2] = 1.0
        images[i, y0[i]:y0[i] + side, x0[i]:x0[i] + side] = patch[i]
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels


# -- image folders --------------------------------------------------------------------------------
def _read_image(path: Path, mode: str, size):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64) / 65535.0
                gray = True
            elif im.mode in ("L", "LA", "1", "P") and not (im.mode == "P" and "RGB" in str(
                    im.palette.mode if im.palette else "")):
                arr = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
                gray = True
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
                gray = False
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read image ({exc})") from None
    if mode == "bayer":
        rgb = np.repeat(arr[..., None], 3, axis=-1) if gray else arr
        if rgb.shape[0] % 2 or rgb.shape[1] % 2:
            raise DatasetError(f"{path}: a Bayer mosaic needs even height and width "
                               f"(got {rgb.shape[0]}x{rgb.shape[1]}); pass size=")
        return isp.unprocess(rgb).astype(np.float32)
    return isp.unprocess_gray(arr).astype(np.float32)


def _class_folders(root: Path):
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{root}: no class sub-folders (an ImageFolder has one folder of "
                           f"images per class)")
    files, labels = [], []
    for i, c in enumerate(classes):
        found = sorted(p for p in (root / c).rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        files += found
        labels += [i] * len(found)
    if not files:
        raise DatasetError(f"{root}: no images in the class folders {', '.join(classes)} "
                           f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
    return files, np.asarray(labels, dtype=np.int64), classes


def _load_image_folder(root: Path, split: str, seed: int, mode: str, size):
    if (root / "train").is_dir() and (root / "test").is_dir():
        files, labels, classes = _class_folders(root / split)
        other_classes = _class_folders(root / ("test" if split == "train" else "train"))[2]
        if other_classes != classes:
            raise DatasetError(f"{root}: train/ and test/ have different class folders "
                               f"({classes} vs {other_classes})")
    else:
        files, labels, classes = _class_folders(root)
        idx = _seeded_split(labels, split, seed)
        files = [files[i] for i in idx]
        labels = labels[idx]
        if not files:
            raise DatasetError(f"{root}: the {split} split is empty (too few images per class)")
    if size is None:
        size, resized = common_size(root)
        if resized:
            warnings.warn(f"{root}: {resized} images resized to {size[0]}x{size[1]} (height x "
                          f"width), the folder's most common size; set data.size (train "
                          f"--size HxW) to choose", DatasetNote, stacklevel=3)
    images = [_read_image(f, mode, size) for f in files]
    return np.stack(images), labels, classes


class DatasetNote(UserWarning):
    """Something a loader did that the user should know (images resized)."""


@lru_cache(maxsize=16)
def common_size(root: Path) -> tuple[tuple[int, int], int]:
    """Return the most common image size ``(height, width)`` of an image folder (all splits;
    ties to the larger image) and how many images have another size."""
    from collections import Counter

    from PIL import Image, UnidentifiedImageError

    counts: Counter = Counter()
    for f in sorted(p for p in root.rglob("*") if p.is_file()
                    and p.suffix.lower() in IMAGE_EXTENSIONS):
        try:
            with Image.open(f) as im:  # the header only
                counts[(im.size[1], im.size[0])] += 1
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DatasetError(f"{f}: cannot read image ({exc})") from None
    (size, n), = sorted(counts.items(), key=lambda kv: (-kv[1], -kv[0][0] * kv[0][1]))[:1]
    return size, sum(counts.values()) - n


# -- CIFAR ----------------------------------------------------------------------------------------
def _cifar_dir(path: Path):
    for cand in (path, path / "cifar-10-batches-py", path / "cifar-100-python"):
        if (cand / "data_batch_1").is_file() and (cand / "test_batch").is_file():
            return cand
        if (cand / "train").is_file() and (cand / "test").is_file() and (cand / "meta").is_file():
            return cand
    return None


def _unpickle(path: Path):
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read CIFAR batch ({exc})") from None


def _load_cifar(root: Path, split: str, mode: str):
    if (root / "data_batch_1").is_file():  # CIFAR-10
        names = ([f"data_batch_{i}" for i in range(1, 6) if (root / f"data_batch_{i}").is_file()]
                 if split == "train" else ["test_batch"])
        label_key, meta_name, meta_key = b"labels", "batches.meta", b"label_names"
    else:  # CIFAR-100
        names = [split]
        label_key, meta_name, meta_key = b"fine_labels", "meta", b"fine_label_names"
    data, labels = [], []
    for n in names:
        batch = _unpickle(root / n)
        try:
            data.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
        except (KeyError, ValueError) as exc:
            raise DatasetError(f"{root / n}: not a CIFAR batch ({exc})") from None
    rgb = np.concatenate(data).transpose(0, 2, 3, 1).astype(np.float64) / 255.0
    labels = np.concatenate(labels)
    classes = [str(i) for i in range(int(labels.max()) + 1)]
    if (root / meta_name).is_file():
        meta = _unpickle(root / meta_name)
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in meta.get(meta_key, [])]
    images = isp.unprocess(rgb) if mode == "bayer" else isp.unprocess_gray(rgb)
    return images.astype(np.float32), labels, classes


# -- sensor samples -------------------------------------------------------------------------------
class SensorDataset(torch.utils.data.Dataset):
    """Sensor samples of labelled images, with fresh temporal noise on every access.

    ``sensor``: a :class:`~sim.Sensor` whose ``height × width`` match the images.
    ``images``: ``[N, H, W]`` linear radiance in [0, 1] (1.0 = white). ``photons``: mean photons
    per pixel at white, a number, or ``(lo, hi)`` sampled log-uniformly per item. Item ``i`` is
    ``(dn float32 [H, W], label int64)``. :meth:`batches` yields whole batches at once from the
    batched torch backend (much faster than a DataLoader over items).
    """

    def __init__(self, sensor, images, labels, photons, seed: int = 0, device="cpu",
                 exposure_s: float | None = None):
        images = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if images.ndim != 3 or tuple(images.shape[1:]) != (sensor.height, sensor.width):
            raise ConfigError(f"images are shaped {tuple(images.shape)} but the sensor is "
                              f"{sensor.height}x{sensor.width}; load it with "
                              f"height={images.shape[-2]}, width={images.shape[-1]}")
        if len(labels) != len(images):
            raise ConfigError(f"{len(images)} images but {len(labels)} labels")
        if isinstance(photons, (tuple, list)):
            lo, hi = (float(p) for p in photons)
            if not 0 < lo <= hi:
                raise ConfigError(f"photons range {photons!r} must satisfy 0 < lo <= hi")
            self.photons = (lo, hi)
        else:
            if not float(photons) >= 0:
                raise ConfigError(f"photons {photons!r} must be >= 0")
            self.photons = float(photons)
        self.sensor = sensor
        self.images = images
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.seed = int(seed)
        self.device = torch.device(device)
        self.exposure_s = exposure_s
        self._ts = None
        self._gen = None
        self._worker = None

    def __len__(self) -> int:
        return len(self.images)

    def _backend(self):
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker = None if info is None else info.id
        if self._ts is None or worker != self._worker:
            self._ts = self.sensor.torch(self.device)
            self._gen = torch.Generator(device=self.device)
            self._gen.manual_seed(self.seed * 1000003 + (0 if worker is None else worker + 1))
            self._worker = worker
        return self._ts, self._gen

    def _photons_at_white(self, n: int, gen):
        if isinstance(self.photons, float):
            return torch.full((n, 1, 1), self.photons, device=self.device)
        lo, hi = self.photons
        u = torch.rand((n, 1, 1), generator=gen, device=self.device)
        return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))

    def sample(self, index):
        """Return ``(dn [B, H, W] float32, labels [B], photons_at_white [B])`` for indices."""
        ts, gen = self._backend()
        index = torch.as_tensor(index, dtype=torch.long)
        images = self.images[index].to(self.device)
        white = self._photons_at_white(len(index), gen)
        dn = ts.capture(images * white, generator=gen, exposure_s=self.exposure_s)
        return dn, self.labels[index].to(self.device), white.flatten()

    def __getitem__(self, i):
        dn, label, _ = self.sample([int(i)])
        return dn[0], label[0]

    def batches(self, batch_size: int, shuffle: bool = True, drop_last: bool = False):
        """Yield ``(dn [B, H, W], labels [B])`` batches over one epoch, fresh noise each time."""
        _, gen = self._backend()
        n = len(self)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(
            int(torch.randint(0, 2**62, (1,), generator=gen, device=self.device)))) if shuffle
            else torch.arange(n))
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            if drop_last and len(idx) < batch_size:
                break
            dn, labels, _ = self.sample(idx)
            yield dn, labels

"""A sensor instance: a validated configuration plus its fixed patterns, and frame capture.

:class:`Sensor` keeps the fixed-pattern maps of one piece of silicon (PRNU, DSNU, row/column
offsets, hot pixels, comparator offsets), drawn once from its seed; every :meth:`Sensor.capture`
draws fresh temporal noise. :meth:`Sensor.torch` gives the batched torch backend with the same maps.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from adcforge.errors import ConfigError

from . import stages
from .config import (CHANNELS, ConfigGeometry, SensorConfig, load_sensor_yaml, temperature_factor,
                     validate)
from .poisson import poisson

# Child seeds of one sensor seed, one per fixed pattern, so that switching on one pattern never
# changes another; the last one seeds the temporal noise.
_FIXED = ("prnu", "dsnu", "row", "column", "hot", "comparator")
_CHUNK_PIXELS = 1 << 16


def list_presets() -> list[str]:
    """Return the names of the bundled sensor presets."""
    folder = resources.files("sim") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_path(name: str):
    """Return the bundled YAML of preset ``name`` (a Traversable); ConfigError if unknown."""
    path = resources.files("sim") / "presets" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown sensor preset {name!r} (presets: {', '.join(list_presets())}; "
                          f"or give a path to a sensor YAML)")
    return path


def load_config(name_or_path: str | os.PathLike, **overrides: Any) -> SensorConfig:
    """Load and validate a sensor configuration by preset name or YAML path, with overrides.

    ``overrides`` replace YAML keys after loading and are validated like the file's own keys.
    Raises :class:`~adcforge.errors.ConfigError` for an unknown preset, an unreadable file, or
    any invalid key or value.
    """
    text = os.fspath(name_or_path)
    if text in list_presets():
        path = preset_path(text)
        origin = f"preset '{text}' ({path})"
        raw = load_sensor_yaml(path)
    elif Path(text).suffix.lower() in (".yaml", ".yml") or Path(text).exists() or os.sep in text:
        origin = text
        raw = load_sensor_yaml(text)
    else:
        preset_path(text)  # raises the "unknown preset" error
        raise AssertionError
    if overrides:
        raw = {**raw, **overrides}
        origin += f" with overrides {', '.join(f'{k}={v!r}' for k, v in overrides.items())}"
    return validate(raw, origin)


def load_sensor(name_or_path: str | os.PathLike, seed: int = 0, **overrides: Any) -> "Sensor":
    """Load a sensor by preset name or YAML path, apply ``overrides`` and validate.

    ``overrides`` replace YAML keys after loading (e.g. ``width=8, height=8``) and are validated
    like the file's own keys. ``seed`` fixes the instance's fixed patterns and its noise
    sequence. Raises :class:`~adcforge.errors.ConfigError` for an unknown preset, an unreadable
    file, or any invalid key or value.
    """
    return Sensor(load_config(name_or_path, **overrides), seed=seed)


class Sensor(ConfigGeometry):
    """One simulated sensor: configuration, fixed patterns, and a temporal-noise generator.

    ``capture`` returns frames in DN (uint16, ``height × width``). Two instances with the same
    configuration and seed are identical silicon and produce identical frame sequences.
    """

    def __init__(self, config: SensorConfig, seed: int = 0):
        if not isinstance(config, SensorConfig):
            config = validate(config)
        self.config = config
        self.seed = int(seed)
        root = np.random.SeedSequence(self.seed)
        children = root.spawn(len(_FIXED) + 1)
        self._fixed_seeds = dict(zip(_FIXED, children[:-1]))
        self._rng = np.random.default_rng(children[-1])
        self._make_fixed_patterns()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | os.PathLike, seed: int = 0) -> "Sensor":
        """Load and validate a sensor YAML file."""
        return cls(validate(load_sensor_yaml(path), os.fspath(path)), seed=seed)

    def with_config(self, seed: int | None = None, **overrides: Any) -> "Sensor":
        """Return a new sensor with some keys replaced (validated) and the same or a new seed."""
        raw = {**self.config.to_dict(), **overrides}
        return Sensor(validate(raw, f"sensor '{self.config.name}' with overrides"),
                      seed=self.seed if seed is None else seed)

    def _fixed_rng(self, name: str) -> np.random.Generator:
        return np.random.default_rng(self._fixed_seeds[name])

    def _make_fixed_patterns(self) -> None:
        c = self.config
        shape = (c.height, c.width)
        # quantum efficiency per pixel (colour filter array) times the PRNU gain map
        self.qe_map = qe_map(c)
        if c.prnu_percent > 0:
            gain = 1.0 + self._fixed_rng("prnu").standard_normal(shape) * (c.prnu_percent / 100.0)
            self.prnu_map = np.maximum(gain, 0.0)
        else:
            self.prnu_map = np.ones(shape)
        self.response_map = self.qe_map * self.prnu_map
        self.dsnu_map = (self._fixed_rng("dsnu").standard_normal(shape) * c.dsnu_e
                         if c.dsnu_e > 0 else np.zeros(shape))
        self.row_offsets = (self._fixed_rng("row").standard_normal((c.height, 1)) * c.row_fpn_e
                            if c.row_fpn_e > 0 else None)
        self.column_offsets = (self._fixed_rng("column").standard_normal(c.width) * c.column_fpn_e
                               if c.column_fpn_e > 0 else None)
        factor = temperature_factor(c)
        self.dark_map = np.full(shape, c.dark_current_e_per_s * factor)
        self._dark_uniform = c.dark_current_e_per_s * factor
        self.hot_mask = np.zeros(shape, dtype=bool)
        if c.hot_pixel_fraction > 0:
            self.hot_mask = self._fixed_rng("hot").random(shape) < c.hot_pixel_fraction
            self.dark_map[self.hot_mask] = c.hot_pixel_dark_current_e_per_s * factor
            self._dark_uniform = None
        self.thresholds = None
        self._threshold_table = None
        if c.comparator_offset_dn > 0:
            nominal = np.arange(c.max_dn, dtype=np.float64) + 0.5
            offsets = self._fixed_rng("comparator").standard_normal(c.max_dn)
            self.thresholds = np.sort(nominal + offsets * c.comparator_offset_dn)
            self._threshold_table = stages.ThresholdTable(self.thresholds)

    # -- properties ---------------------------------------------------------------------------
    @property
    def exposure_s(self) -> float:
        """Default exposure time in seconds."""
        return self.config.exposure_s

    @property
    def dark_current_e_per_s(self) -> float:
        """Mean dark current at the operating temperature (e⁻/s), hot pixels excluded."""
        return self.config.dark_current_at_temp_e_per_s

    def __repr__(self) -> str:
        c = self.config
        return (f"Sensor({c.name or 'unnamed'!r}, {c.width}x{c.height}, "
                f"K={c.conversion_gain_dn_per_e} DN/e-, {c.adc_bits} bit, seed={self.seed})")

    # -- capture ------------------------------------------------------------------------------
    def _photons(self, photons) -> np.ndarray:
        arr = np.asarray(photons, dtype=np.float64)
        if arr.ndim != 0 and arr.shape != (self.height, self.width):
            raise ValueError(f"photons must be a scalar or shaped (height, width) = "
                             f"({self.height}, {self.width}); got shape {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError("photons must be finite and >= 0 (mean photons per pixel)")
        return arr

    def run_stages(self, photons, exposure_s=None, rng=None, rows=slice(None)):
        """Run every stage in :data:`sim.stages.STAGES` order; return ``{stage: array}``.

        ``photons``: mean photons per pixel (scalar or the ``rows`` of a ``height × width``
        array). ``rng`` defaults to the sensor's temporal generator. Used by tests and by
        ``capture``.
        """
        c = self.config
        rng = self._rng if rng is None else rng
        t = c.exposure_s if exposure_s is None else float(exposure_s)
        out = {}
        x = stages.apply_photoelectrons(photons, self.response_map[rows])
        out["photoelectrons"] = x
        x = out["dark_current"] = stages.apply_dark_current(x, self.dark_map[rows], t)
        x = out["shot_noise"] = stages.apply_shot_noise(x, rng, c.poisson_gaussian_above_e)
        x = out["dsnu"] = stages.apply_dsnu(x, self.dsnu_map[rows])
        x = out["full_well"] = stages.apply_full_well(x, c.full_well_e)
        x = out["read_noise"] = stages.apply_read_noise(
            x, c.read_noise_e, rng,
            None if self.row_offsets is None else self.row_offsets[rows], self.column_offsets)
        x = out["conversion_gain"] = stages.apply_conversion_gain(x, c.conversion_gain_dn_per_e)
        x = out["gain_nonlinearity"] = stages.apply_gain_nonlinearity(
            x, c.gain_nonlinearity_percent, c.max_dn)
        x = out["black_level"] = stages.apply_black_level(x, c.black_level_dn)
        out["adc"] = stages.apply_adc(x, c.max_dn, self._threshold_table)
        return out

    def capture(self, photons, exposure_s: float | None = None, threads: int | None = None):
        """Capture one frame; return DN as uint16 ``(height, width)``.

        ``photons``: mean photons per pixel reaching the photodiode during the exposure, a scalar
        (flat field) or a ``(height, width)`` array (a scene). ``exposure_s`` defaults to the
        configured ``exposure_s`` (it sets the dark signal). The stages run fused, in the order of
        :data:`sim.stages.STAGES`, on row chunks that fit in cache; a frame of more than one chunk
        gives each chunk its own generator (seeded from the sensor's) and runs the chunks on
        ``threads`` threads (default: the CPU count). The result does not depend on ``threads``.
        """
        arr = self._photons(photons)
        t = self.config.exposure_s if exposure_s is None else float(exposure_s)
        if not t >= 0:
            raise ValueError(f"exposure_s must be >= 0 s (got {exposure_s!r})")
        if self.width * self.height <= _CHUNK_PIXELS:
            return self._fused(arr, t, self._rng, slice(None))
        rows_per = max(1, _CHUNK_PIXELS // self.width)
        bounds = [(r, min(r + rows_per, self.height)) for r in range(0, self.height, rows_per)]
        seeds = self._rng.integers(0, 2**63, size=len(bounds))
        frame = np.empty((self.height, self.width), dtype=np.uint16)

        def work(i):
            rows = slice(*bounds[i])
            ph = arr if arr.ndim == 0 else arr[rows]
            gen = np.random.Generator(np.random.PCG64(int(seeds[i])))
            frame[rows] = self._fused(ph, t, gen, rows)

        n = min(threads or os.cpu_count() or 1, len(bounds))
        if n > 1:
            with ThreadPoolExecutor(n) as pool:
                list(pool.map(work, range(len(bounds))))
        else:
            for i in range(len(bounds)):
                work(i)
        return frame

    def _fused(self, photons, t, rng, rows):
        """All stages on the ``rows`` of the frame, in place on one buffer; equals run_stages."""
        c = self.config
        e = np.multiply(self.response_map[rows], photons)
        if self._dark_uniform is None:
            e += self.dark_map[rows] * t
        else:
            e += self._dark_uniform * t
        e = poisson(e, rng, c.poisson_gaussian_above_e)
        e += self.dsnu_map[rows]
        np.minimum(e, c.full_well_e, out=e)
        noise = rng.standard_normal(e.shape, dtype=np.float32)
        e += noise * np.float64(c.read_noise_e)
        if self.row_offsets is not None:
            e += self.row_offsets[rows]
        if self.column_offsets is not None:
            e += self.column_offsets
        e *= c.conversion_gain_dn_per_e
        if c.gain_nonlinearity_percent:
            e = stages.apply_gain_nonlinearity(e, c.gain_nonlinearity_percent, c.max_dn)
        e += c.black_level_dn
        return stages.apply_adc(e, c.max_dn, self._threshold_table)

    def torch(self, device="cpu"):
        """Return the batched torch backend (:class:`~sim.torch_backend.TorchSensor`)."""
        from .torch_backend import TorchSensor

        return TorchSensor(self, device=device)


def qe_map(cfg: SensorConfig) -> np.ndarray:
    """Return η per pixel (``height × width``): the scalar, or each channel's η in CFA layout."""
    shape = (cfg.height, cfg.width)
    if not isinstance(cfg.quantum_efficiency, tuple):
        return np.full(shape, float(cfg.quantum_efficiency))
    qe = dict(zip(CHANNELS, cfg.quantum_efficiency))
    out = np.empty(shape)
    pattern = cfg.cfa.lower()
    for i, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[dy::2, dx::2] = qe[pattern[i]]
    return out


def cfa_channel_map(cfg: SensorConfig) -> np.ndarray | None:
    """Return the channel index (0=r, 1=g, 2=b) of each pixel, or ``None`` for a mono sensor."""
    if cfg.cfa is None:
        return None
    out = np.empty((cfg.height, cfg.width), dtype=np.int8)
    for i, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[dy::2, dx::2] = CHANNELS.index(cfg.cfa.lower()[i])
    return out


__all__ = ["Sensor", "cfa_channel_map", "list_presets", "load_config", "load_sensor",
           "preset_path", "qe_map"]

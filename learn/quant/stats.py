"""Sample statistics: the histogram of integer sensor samples that starts and calibrates every
quantizer, and the per-bin numbers read off it (centroids, histogram-equalised values, the
inverse CDF). Numpy only, except that :meth:`SampleStats.noise_dn` also takes torch tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adcforge.errors import ConfigError


@dataclass
class SampleStats:
    """Histogram of integer sensor samples (DN) that initialises and calibrates quantizers.

    ``counts[v]`` is the number of samples equal to ``v`` (``0..max_dn``); ``lo`` is the lowest
    sample, ``hi`` the 99.9th percentile (the range a camera whose gain is set for the scene uses);
    ``black`` the sensor's black level in DN.
    """

    counts: np.ndarray
    max_dn: int
    black: float = 0.0
    gain_dn_per_e: float = 0.0
    read_noise_dn: float = 0.0

    @classmethod
    def from_samples(cls, samples, max_dn: int, black: float = 0.0, gain_dn_per_e: float = 0.0,
                     read_noise_dn: float = 0.0) -> "SampleStats":
        """Build the histogram of integer samples in ``0..max_dn``; ``gain_dn_per_e`` (K) and
        ``read_noise_dn`` describe the sensor's temporal noise (:meth:`noise_dn`)."""
        s = np.asarray(samples).astype(np.int64).ravel()
        if s.size == 0:
            raise ConfigError("no sensor samples to calibrate the quantizer on (empty dataset)")
        s = np.clip(s, 0, max_dn)
        return cls(np.bincount(s, minlength=max_dn + 1).astype(np.int64), int(max_dn),
                   float(black), float(gain_dn_per_e), float(read_noise_dn))

    def noise_dn(self, mean_dn):
        """Temporal noise (DN rms) of a sample whose mean is ``mean_dn``, by the EMVA 1288
        linear model ``σ_y² = σ_read² + σ_q² + K (μ_y - black)`` (dark shot noise and the dark
        offset cancel); ``σ_q² = 1/12``. Works on numbers, numpy arrays and torch tensors."""
        signal = (mean_dn - self.black) * self.gain_dn_per_e
        signal = signal.clamp(min=0) if hasattr(signal, "clamp") else np.maximum(signal, 0)
        return (self.read_noise_dn**2 + 1 / 12 + signal) ** 0.5

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def cdf(self) -> np.ndarray:
        """``cdf[v] = P(x <= v)``."""
        return np.cumsum(self.counts) / self.total

    def quantile(self, q: float) -> int:
        """Return the smallest sample value ``v`` with ``P(x <= v) >= q``."""
        return int(np.searchsorted(self.cdf, q - 1e-12, side="left"))

    @property
    def lo(self) -> int:
        return int(np.flatnonzero(self.counts)[0])

    @property
    def hi(self) -> int:
        return max(self.quantile(0.999), self.lo + 1)

    @property
    def scale(self) -> float:
        """``hi - lo`` (at least 1): every quantizer normalises samples as
        ``u = (x - lo) / scale``, so that learning rates mean the same at every light level."""
        return float(max(self.hi - self.lo, 1))

    @property
    def values(self) -> np.ndarray:
        return np.arange(self.max_dn + 1)

    def mean_abs(self, offset: float) -> float:
        return float((np.abs(self.values - offset) * self.counts).sum() / self.total)


def bin_centroids(stats: SampleStats, thresholds: np.ndarray) -> np.ndarray:
    """Return the mean sample (DN) of each bin of an integer ladder (bin midpoint if empty)."""
    v = stats.values.astype(np.float64)
    w = stats.counts.astype(np.float64)
    levels = len(thresholds) + 1
    codes = np.searchsorted(thresholds, v, side="right")
    mass = np.bincount(codes, weights=w, minlength=levels)
    sums = np.bincount(codes, weights=w * v, minlength=levels)
    edges = np.concatenate([[min(stats.lo, thresholds[0] - 1)], thresholds,
                            [max(stats.hi, thresholds[-1]) + 1]]).astype(np.float64)
    mid = (edges[:-1] + edges[1:] - 1) / 2
    return np.where(mass > 0, sums / np.maximum(mass, 1e-300), mid)


def bin_cdf_mid(stats: SampleStats, thresholds_int) -> np.ndarray:
    """Per bin of an integer ladder: ``(P(x < t_k) + P(x < t_{k+1})) / 2`` (``t_0 = -inf``,
    ``t_L = +inf``), the histogram-equalised value of the code, in [0, 1]."""
    below = np.concatenate([[0.0], stats.cdf])  # below[v] = P(x < v)
    t = np.clip(np.asarray(thresholds_int, dtype=np.int64), 0, stats.max_dn + 1)
    edges = np.concatenate([[0.0], below[t], [1.0]])
    return (edges[:-1] + edges[1:]) / 2


def inverse_cdf_knots(stats: SampleStats):
    """Knots ``(p, u)`` of the training samples' inverse CDF: a threshold at ``u`` (normalised
    units) has the fraction ``p`` of samples below it, ``p`` strictly increasing (a run of equal
    ``p`` over empty sample values becomes one knot in its middle). A threshold at ``p`` splits
    the training samples at ``p`` up to the one sample value that straddles ``p``."""
    below = np.concatenate([[0.0], stats.cdf])  # below[v] = P(x < v) = P(x <= v - 1/2)
    u = (np.arange(stats.max_dn + 2) - 0.5 - float(stats.lo)) / stats.scale
    p, start = np.unique(below, return_index=True)
    stop = np.concatenate([start[1:], [len(below)]]) - 1
    return p, (u[start] + u[stop]) / 2

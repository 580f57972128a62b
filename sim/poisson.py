"""Poisson sampling for the shot-noise stage (numpy).

Exact by default: :meth:`numpy.random.Generator.poisson` (Hörmann's PTRS for λ ≥ 10, the
multiplication method below). The frame pipeline (:mod:`sim.sensor`) calls it on row chunks that
fit in cache, from several threads, each chunk with its own generator. The explicit fast mode
``gaussian_above`` replaces the draw by a rounded Gaussian above a stated mean; its error is
measured by ``adcforge bench sim --fast`` and documented in docs/sim.md.

(A whole-array vectorised PTRS + guide-table inversion was written and verified exact by χ² tests,
but on the 2-core development machine it ran 3–7× slower than these per-element C samplers,
so it is not used; see docs/sim.md.)
"""

from __future__ import annotations

import numpy as np


def gaussian_shot(lam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return ``round(λ + √λ·N(0, 1))`` clipped at 0 (the fast mode's approximation), float64."""
    out = rng.standard_normal(lam.shape)
    out *= np.sqrt(lam)
    out += lam
    np.rint(out, out=out)
    return np.maximum(out, 0.0, out=out)


def poisson(lam, rng, gaussian_above=None):
    """Draw Poisson(λ) per element of ``lam`` (float64, ≥ 0); return float64 counts.

    ``gaussian_above``: ``None`` = exact. A number ``m`` uses :func:`gaussian_shot` wherever
    ``λ > m`` (the explicit, inexact fast mode).
    """
    lam = np.asarray(lam, dtype=np.float64)
    if gaussian_above is None:
        return rng.poisson(lam).astype(np.float64)
    out = np.empty_like(lam)
    big = lam > gaussian_above
    if not np.any(big):
        return rng.poisson(lam).astype(np.float64)
    small = ~big
    out[small] = rng.poisson(lam[small])
    out[big] = gaussian_shot(lam[big], rng)
    return out

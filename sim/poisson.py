"""Poisson sampling for the shot-noise stage (numpy).

:func:`poisson` draws exactly (numpy's :meth:`numpy.random.Generator.poisson`) unless the fast
mode is asked for explicitly with ``gaussian_above``.
"""

from __future__ import annotations

import numpy as np


def poisson(lam, rng, gaussian_above=None):
    """Draw Poisson(λ) per element of ``lam`` (float64 array, ≥ 0); return float64 counts.

    ``gaussian_above``: ``None`` = exact. A number ``m`` replaces the Poisson draw by
    ``round(λ + √λ·N(0, 1))`` (clipped at 0) wherever ``λ > m``; the error of this approximation is
    measured by ``adcforge bench sim --fast`` and documented in docs/sim.md.
    """
    lam = np.asarray(lam, dtype=np.float64)
    if gaussian_above is None:
        return rng.poisson(lam).astype(np.float64)
    out = np.empty_like(lam)
    big = lam > gaussian_above
    small = ~big
    out[small] = rng.poisson(lam[small])
    lb = lam[big]
    out[big] = np.maximum(np.rint(lb + np.sqrt(lb) * rng.standard_normal(lb.shape)), 0.0)
    return out

"""Integer ladders: the rules that place integer thresholds, in numpy (no torch).

- the fixed-ladder methods (:data:`FIXED_LADDERS`: ``hist``, ``uniform``, ``uniform-full``,
  ``sqrt``, ``lloyd``) and ``fixed``, a ladder given by hand (:func:`check_thresholds`);
- the starts of learned thresholds (:func:`start_ladder`: ``quantile``, ``uniform``, or a
  computed ladder such as the task-aware one of :func:`weighted_int_thresholds`);
- the export of float thresholds to the integer word (:func:`export_int_thresholds`,
  :func:`make_strict`).

Threshold convention: a float threshold ``θ`` of an exclusive quantizer (``code = #(x > θ)``)
exports as ``t = floor(θ) + 1``; an inclusive one (``#(x >= θ)``, e.g. round half up) as
``t = ceil(θ)``. Either way ``x >= t`` holds for exactly the same integers ``x``.
"""

from __future__ import annotations

import numpy as np

from adcforge.design import threshold_problem
from adcforge.errors import ConfigError

from .stats import SampleStats

INITS = ("quantile", "uniform", "task")
TASK_WEIGHTS = ("fisher", "abs")


def make_strict(t, top: int) -> np.ndarray:
    """Clamp integer thresholds to ``1..top`` and make them strictly increasing, moving as few
    as possible: first pushed up past their predecessor, then down below their successor."""
    t = np.clip(np.asarray(t, dtype=np.int64), 1, top).copy()
    n = len(t)
    if n > top:
        raise ConfigError(f"{n} thresholds do not fit a sample word whose largest value is {top}")
    for i in range(1, n):
        t[i] = max(t[i], t[i - 1] + 1)
    for i in range(n - 1, -1, -1):
        t[i] = min(t[i], top - (n - 1 - i))
        if i < n - 1:
            t[i] = min(t[i], t[i + 1] - 1)
    return t


def export_int_thresholds(theta, inclusive: bool, top: int) -> np.ndarray:
    """Integer thresholds ``t`` with ``x >= t ⇔ x > θ`` (``x >= θ`` if inclusive), made strict."""
    theta = np.asarray(theta, dtype=np.float64)
    t = np.ceil(theta) if inclusive else np.floor(theta) + 1
    return make_strict(np.clip(t, -1, top + 1).astype(np.int64), top)


def check_thresholds(thresholds, levels: int, top: int) -> np.ndarray:
    """Return a hand-given ladder as int64 after checking it: ``levels - 1`` integers, strictly
    increasing, in ``1..top``; a ConfigError names the first offending entry."""
    key = "quantizer.thresholds"
    if not isinstance(thresholds, (list, tuple)):
        raise ConfigError(f"{key}: method 'fixed' needs a list of {levels - 1} integer "
                          f"thresholds, got {thresholds!r}")
    if len(thresholds) != levels - 1:
        raise ConfigError(f"{key}: {levels - 1} thresholds are needed for "
                          f"{levels.bit_length() - 1} bits, got {len(thresholds)}")
    bad = threshold_problem(thresholds, top)
    if bad:
        raise ConfigError(f"{key}[{bad[0]}]: got {bad[1]!r}; {bad[2]} (the sample word)")
    return np.asarray(thresholds, dtype=np.int64)


# -- the fixed-ladder rules --------------------------------------------------------------------
def uniform_int_thresholds(lo: float, hi: float, levels: int, top: int) -> np.ndarray:
    """Uniform ADC over the integers ``lo..hi``: ``code = floor((x - lo) L / (hi - lo + 1))``."""
    k = np.arange(1, levels)
    return make_strict(np.ceil(lo + k * (hi - lo + 1) / levels).astype(np.int64), top)


def sqrt_int_thresholds(lo: float, hi: float, levels: int, top: int) -> np.ndarray:
    """Square-root companding: ``code = floor(L sqrt((x - lo) / (hi - lo + 1)))``."""
    k = np.arange(1, levels)
    return make_strict(np.ceil(lo + (hi - lo + 1) * (k / levels) ** 2).astype(np.int64), top)


def hist_int_thresholds(stats: SampleStats, levels: int, top: int) -> np.ndarray:
    """Histogram equalisation: ``t_k`` with ``P(x < t_k)`` nearest to ``k / L``."""
    below = np.concatenate([[0.0], stats.cdf])  # below[v] = P(x < v), v = 0..max_dn + 1
    t = [int(np.argmin(np.abs(below - k / levels))) for k in range(1, levels)]
    return make_strict(t, top)


def lloyd_max(stats: SampleStats, levels: int, iterations: int = 100):
    """Run Lloyd-Max (MSE-optimal scalar quantizer) on the histogram; return
    ``(float thresholds, centroids)``: thresholds are centroid midpoints (``x >= θ`` → upper)."""
    v = stats.values.astype(np.float64)
    w = stats.counts.astype(np.float64)
    t = hist_int_thresholds(stats, levels, stats.max_dn).astype(np.float64) - 0.5
    c = np.zeros(levels)
    for _ in range(iterations):
        codes = np.searchsorted(t, v, side="right")
        mass = np.bincount(codes, weights=w, minlength=levels)
        sums = np.bincount(codes, weights=w * v, minlength=levels)
        edges = np.concatenate([[stats.lo - 0.5], t, [stats.hi + 0.5]])
        mid = (edges[:-1] + edges[1:]) / 2
        c = np.where(mass > 0, sums / np.maximum(mass, 1e-300), mid)
        c = np.maximum.accumulate(c)
        new_t = (c[:-1] + c[1:]) / 2
        if np.allclose(new_t, t):
            break
        t = new_t
    return t, c


def lloyd_int_thresholds(stats: SampleStats, levels: int, top: int) -> np.ndarray:
    """Lloyd-Max's float thresholds exported as an inclusive integer ladder."""
    theta, _ = lloyd_max(stats, levels)
    return export_int_thresholds(theta, True, top)


FIXED_LADDERS = {
    "hist": hist_int_thresholds,
    "uniform": lambda s, levels, top: uniform_int_thresholds(s.lo, s.hi, levels, top),
    "uniform-full": lambda s, levels, top: uniform_int_thresholds(0, s.max_dn, levels, top),
    "sqrt": lambda s, levels, top: sqrt_int_thresholds(s.lo, s.hi, levels, top),
    "lloyd": lloyd_int_thresholds,
}
"""The fixed-ladder methods: ``name -> rule(stats, levels, top)`` (integer thresholds)."""


def fixed_ladder(method: str, stats: SampleStats, levels: int, top: int,
                 thresholds=None) -> np.ndarray:
    """The integer ladder of a fixed method: a rule of :data:`FIXED_LADDERS`, or for ``fixed``
    the ``thresholds`` given (checked)."""
    if method == "fixed":
        return check_thresholds(thresholds, levels, top)
    if method not in FIXED_LADDERS:
        raise ConfigError(f"unknown fixed method {method!r}")
    return FIXED_LADDERS[method](stats, levels, top)


# -- starts of learned thresholds --------------------------------------------------------------
def start_ladder(stats: SampleStats, levels: int, top: int, init) -> np.ndarray:
    """The integer ladder learned thresholds start at: ``quantile`` (histogram equalisation),
    ``uniform`` (over the samples' range), or an integer ladder computed outside (the task-aware
    start, :func:`weighted_int_thresholds`), checked."""
    if not isinstance(init, str):
        return check_thresholds([int(t) for t in init], levels, top)
    if init == "task":
        raise ConfigError("quantizer.init: 'task' needs the task-aware ladder; train computes it "
                          "(learn.train.task_start) and passes the thresholds")
    if init == "quantile":
        return hist_int_thresholds(stats, levels, top)
    if init == "uniform":
        return uniform_int_thresholds(stats.lo, stats.hi, levels, top)
    raise ConfigError(f"quantizer.init: unknown init {init!r}; allowed: {', '.join(INITS)}")


def weighted_int_thresholds(values: np.ndarray, weights: np.ndarray, levels: int,
                            top: int, rule: str = "abs") -> np.ndarray:
    """Thresholds that split a weighted sample mass into ``levels`` equal parts: ``t_k`` with
    ``M(x < t_k)`` nearest to ``k / L`` of the total. ``values``: integer samples (DN);
    ``weights``: one per sample, >= 0 (e.g. ``|∂loss/∂sample|``). ``rule``:

    - ``abs``: ``M(v) = Σ_{x = v} w`` (the histogram weighted by the weights);
    - ``fisher``: ``M(v) = (Σ_{x = v} w²)^(1/3)``, the threshold density of high-resolution
      quantization theory for a distortion weighted by the squared sensitivity (Panter–Dite:
      density ∝ (p(v) · E[w² | v])^(1/3)); it puts codes into sparse stretches of the histogram
      where the loss is sensitive, instead of into the bulk.

    All-zero weights fall back to the plain histogram."""
    v = np.clip(np.asarray(values, dtype=np.int64).ravel(), 0, top)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if rule == "abs":
        mass = np.bincount(v, weights=w, minlength=top + 1)
    elif rule == "fisher":
        mass = np.bincount(v, weights=w * w, minlength=top + 1) ** (1 / 3)
    else:
        raise ConfigError(f"quantizer.task_weight: unknown {rule!r}; allowed: "
                          f"{', '.join(TASK_WEIGHTS)}")
    if not mass.sum() > 0:
        mass = np.bincount(v, minlength=top + 1).astype(np.float64)
    below = np.concatenate([[0.0], np.cumsum(mass) / mass.sum()])
    t = [int(np.argmin(np.abs(below - k / levels))) for k in range(1, levels)]
    return make_strict(t, top)

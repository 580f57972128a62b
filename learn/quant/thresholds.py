"""Threshold parameterisations: small modules that map their parameters to the float ladder.

Every part is built from the sample statistics and an integer start ladder (``levels - 1``
strictly increasing integers, :func:`~learn.quant.ladders.start_ladder`) and gives

- ``forward()``: the thresholds in normalised units ``u = (x - lo) / scale`` (float64,
  ``levels - 1``, strictly increasing), what the gradient estimators compare samples with;
- :meth:`Thresholds.dn`: the same thresholds in DN, what the integer export rounds;
- ``parameters()``: what trains at the thresholds' learning rate (none for :class:`FixedLadder`).

Learned parts start at ``t - 1/2`` (between the start's integers, so they export to the start
itself) and are exclusive (``code = #(x > θ)``); :class:`FixedLadder` holds its integers and is
inclusive (``code = #(x >= t)``).

- :class:`AbsoluteThresholds` (``absolute``): ``θ = base + cumsum(softplus(gaps))`` in normalised
  units; ``base`` is ``θ_1`` itself, so Adam moves it by about the learning rate (in units of the
  data range) per step.
- :class:`RelativeThresholds` (``relative``): ``θ_1 = softplus(base)`` above the lowest sample,
  so steps are relative to the threshold's own scale (thresholds barely leave their start).
- :class:`DNThresholds` (``dn``): as ``absolute`` but ``base`` and the gaps are in DN, so an Adam
  step moves a threshold by about the learning rate *in DN* whatever the sample range (the
  trainer gives it ``train.lr_thresholds_dn``).
- :class:`QuantileThresholds` (``quantile``): the thresholds are the training samples' inverse
  CDF at ``p_k = cumsum(softmax(z))_k``; ``z`` (the log bin masses) starts at the start ladder's
  bin masses. Invariant to gain, black level and light: a step changes the fraction of samples
  in a bin by a relative amount.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .stats import SampleStats, inverse_cdf_knots

DTYPE = torch.float64


def _inv_softplus(y):
    """``softplus^-1(y)`` for ``y > 0`` (numpy)."""
    return y + np.log(-np.expm1(-y))


class Thresholds(nn.Module):
    """Base of the parameterisations: the start ladder, the normalisation, ``dn()``."""

    name = "?"
    inclusive = False  # code = #(x > θ); FixedLadder: #(x >= t)
    anchored_at_lo = False  # the lowest sample is θ_1's left neighbour (the gap window)

    def __init__(self, stats: SampleStats, start):
        super().__init__()
        self.start = np.asarray(start, dtype=np.int64)
        self.levels = len(self.start) + 1
        self.lo = float(stats.lo)
        self.scale = stats.scale

    def start_u(self) -> np.ndarray:
        """The start's float thresholds ``t - 1/2`` in normalised units."""
        return (self.start.astype(np.float64) - 0.5 - self.lo) / self.scale

    def forward(self) -> torch.Tensor:
        """Thresholds in normalised units (float64, ``levels - 1``)."""
        raise NotImplementedError

    def dn(self) -> torch.Tensor:
        """Thresholds in DN (float64, ``levels - 1``)."""
        return self() * self.scale + self.lo


class _CumulativeGaps(Thresholds):
    """``θ = first + cumsum(softplus(gaps))``: strictly increasing by construction."""

    def _init_gaps(self, theta: np.ndarray, base: float) -> None:
        self.base = nn.Parameter(torch.tensor([base], dtype=DTYPE))
        self.gaps = nn.Parameter(torch.as_tensor(_inv_softplus(np.diff(theta)), dtype=DTYPE))

    def first(self) -> torch.Tensor:
        return self.base

    def cumulative(self) -> torch.Tensor:
        first = self.first()
        return torch.cat([first, first + torch.cumsum(F.softplus(self.gaps), 0)])

    def forward(self):
        return self.cumulative()


class AbsoluteThresholds(_CumulativeGaps):
    """``absolute``: ``base`` is ``θ_1`` in normalised units (module docstring)."""

    name = "absolute"

    def __init__(self, stats: SampleStats, start):
        super().__init__(stats, start)
        theta = self.start_u()
        self._init_gaps(theta, theta[0])


class RelativeThresholds(_CumulativeGaps):
    """``relative``: ``θ_1 = softplus(base)`` above the lowest sample (module docstring)."""

    name = "relative"
    anchored_at_lo = True

    def __init__(self, stats: SampleStats, start):
        super().__init__(stats, start)
        theta = self.start_u()
        self._init_gaps(theta, _inv_softplus(max(theta[0], 0.5 / self.scale)))

    def first(self):
        return F.softplus(self.base)


class DNThresholds(_CumulativeGaps):
    """``dn``: ``base`` and the gaps in DN above ``lo`` (module docstring)."""

    name = "dn"

    def __init__(self, stats: SampleStats, start):
        super().__init__(stats, start)
        theta = self.start_u() * self.scale
        self._init_gaps(theta, theta[0])

    def forward(self):
        return self.cumulative() / self.scale


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``fp(x)`` through the knots ``(xp, fp)`` (``xp`` increasing), with the
    gradient of the segment."""
    i = torch.searchsorted(xp, x.detach()).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    return f0 + (x - x0) * (f1 - f0) / (x1 - x0)


class QuantileThresholds(Thresholds):
    """``quantile``: the inverse CDF of the training samples at ``cumsum(softmax(log_mass))``
    (module docstring)."""

    name = "quantile"

    def __init__(self, stats: SampleStats, start):
        super().__init__(stats, start)
        knot_p, knot_u = inverse_cdf_knots(stats)
        self.register_buffer("knot_p", torch.as_tensor(knot_p))
        self.register_buffer("knot_u", torch.as_tensor(knot_u))
        below = np.concatenate([[0.0], stats.cdf])[np.clip(self.start, 0, stats.max_dn + 1)]
        mass = np.maximum(np.diff(np.concatenate([[0.0], below, [1.0]])), 1e-6)
        self.log_mass = nn.Parameter(torch.as_tensor(np.log(mass), dtype=DTYPE))

    def forward(self):
        p = torch.cumsum(torch.softmax(self.log_mass, 0), 0)[:-1]
        return _interp(p, self.knot_p, self.knot_u)


class FixedLadder(Thresholds):
    """A fixed integer ladder (the ``hist``, ``uniform``, ... methods and ``fixed``): no
    parameters, inclusive, ``dn()`` the integers themselves."""

    name = "fixed"
    inclusive = True

    def __init__(self, stats: SampleStats, ladder):
        super().__init__(stats, ladder)
        self.register_buffer("ladder", torch.as_tensor(self.start, dtype=torch.int64))

    def forward(self):
        return (self.dn() - self.lo) / self.scale

    def dn(self):
        return self.ladder.to(DTYPE)


THRESHOLD_PARAMS = {"absolute": AbsoluteThresholds, "relative": RelativeThresholds,
                    "quantile": QuantileThresholds, "dn": DNThresholds}
"""The learned parameterisations by their name in ``quantizer.threshold_param``."""

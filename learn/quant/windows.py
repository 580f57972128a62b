"""Straight-through windows: the half-width ``w`` per threshold (normalised units) that scales a
gradient estimator — the box's half-width, the smooth steps' rms, the relaxations' temperature
unit.

- :class:`GapWindow` (``gap``): half the mean distance to the neighbouring thresholds (one
  threshold: 5 % of the data range; a parameterisation anchored at the lowest sample, such as
  ``relative``, takes that sample as the first threshold's left neighbour).
- :class:`NoiseWindow` (``noise``): the sensor's temporal noise at the threshold
  (:meth:`~learn.quant.stats.SampleStats.noise_dn`): a box then averages over the samples whose
  code the noise flips, the gradient of the expected code under the sensor's own noise.

Both are at least one DN. ``anneal = (a0, a1)``: the window is at least ``a · (hi - lo)``, ``a``
annealed geometrically from ``a0`` to ``a1`` as the training progress goes from 0 to 1, so that
early in training a threshold feels samples a quarter of the range away and crosses empty
stretches of the histogram.
"""

from __future__ import annotations

import torch
from torch import nn

from adcforge.errors import ConfigError

from .stats import SampleStats


class Window(nn.Module):
    """Base: the annealed floor and the one-DN floor around :meth:`half_width`."""

    name = "?"

    def __init__(self, stats: SampleStats, anneal=None):
        super().__init__()
        self.lo = float(stats.lo)
        self.scale = stats.scale
        self.anneal = None if anneal is None else tuple(map(float, anneal))

    def half_width(self, theta: torch.Tensor, anchored_at_lo: bool) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, theta: torch.Tensor, progress: float = 0.0,
                anchored_at_lo: bool = False) -> torch.Tensor:
        """Half-width per threshold (normalised units) at thresholds ``theta`` (normalised,
        detached here) and training progress ``progress`` in [0, 1]."""
        w = self.half_width(theta.detach(), anchored_at_lo)
        if self.anneal is not None:
            a0, a1 = self.anneal
            w = torch.clamp(w, min=a0 * (a1 / a0) ** min(max(progress, 0.0), 1.0))
        return torch.clamp(w, min=1.0 / self.scale)


class GapWindow(Window):
    """``gap``: half the mean distance to the neighbouring thresholds (module docstring)."""

    name = "gap"

    def half_width(self, th, anchored_at_lo):
        if anchored_at_lo:
            d = torch.diff(torch.cat([torch.zeros_like(th[:1]), th]))
            left = d
            right = torch.cat([d[1:], d[-1:]])
            return (left + right) / 4
        if len(th) == 1:
            return torch.full_like(th, 0.05)
        d = torch.diff(th)
        left = torch.cat([d[:1], d])
        right = torch.cat([d, d[-1:]])
        return (left + right) / 4


class NoiseWindow(Window):
    """``noise``: the sensor's temporal noise at each threshold (module docstring)."""

    name = "noise"

    def __init__(self, stats: SampleStats, anneal=None):
        super().__init__(stats, anneal)
        if stats.gain_dn_per_e <= 0:
            raise ConfigError("quantizer.ste_window: 'noise' needs the sensor's conversion gain "
                              "in the sample statistics")
        self.stats = stats

    def half_width(self, th, anchored_at_lo):
        return self.stats.noise_dn(th * self.scale + self.lo) / self.scale


WINDOWS = {"gap": GapWindow, "noise": NoiseWindow}
"""The windows by their name in ``quantizer.ste_window`` (``auto`` is resolved by
:func:`~learn.quant.factory.make_quantizer`)."""

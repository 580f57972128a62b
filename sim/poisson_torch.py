"""Poisson sampling for the torch backend."""

from __future__ import annotations

import torch


def poisson_torch(lam: torch.Tensor, generator: torch.Generator, gaussian_above=None):
    """Draw Poisson(λ) per element of float ``lam`` (≥ 0); return float32 counts (a new tensor).

    ``gaussian_above``: ``None`` = exact (:func:`torch.poisson`); a number uses the rounded
    Gaussian ``round(λ + √λ·N(0, 1))`` (clipped at 0) where ``λ`` exceeds it.
    """
    lam = lam.to(torch.float32)
    if gaussian_above is None:
        return torch.poisson(lam, generator=generator)
    out = torch.poisson(torch.where(lam > gaussian_above, 0.0, lam), generator=generator)
    noise = torch.randn(lam.shape, generator=generator, device=lam.device, dtype=lam.dtype)
    approx = (lam + lam.sqrt() * noise).round_().clamp_(min=0.0)
    return torch.where(lam > gaussian_above, approx, out)

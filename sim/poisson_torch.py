"""Poisson sampling for the torch backend."""

from __future__ import annotations

import torch


def poisson_torch(lam: torch.Tensor, generator: torch.Generator | None, gaussian_above=None):
    """Draw Poisson(λ) per element of float ``lam`` (≥ 0); return float32 counts (a new tensor).

    Exact by default (:func:`torch.poisson`). ``gaussian_above``: a number switches on the explicit
    fast mode, ``round(λ + √λ·N(0, 1))`` clipped at 0 where ``λ`` exceeds it.
    """
    lam = lam.to(torch.float32)
    if gaussian_above is None:
        return torch.poisson(lam, generator=generator)
    over = lam > gaussian_above
    out = torch.poisson(torch.where(over, 0.0, lam), generator=generator)
    noise = torch.randn(lam.shape, generator=generator, device=lam.device, dtype=lam.dtype)
    approx = (lam + lam.sqrt() * noise).round_().clamp_(min=0.0)
    return torch.where(over, approx, out)

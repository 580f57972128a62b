"""Straight-through estimators: each one an autograd Function and a plain function.

- :func:`heaviside_ste` — forward the hard step ``1[u > 0]``; backward a box of half-width ``w``
  and height ``1 / (2 w)`` (the derivative of a linear ramp of width ``2 w``): only samples within
  ``w`` of the threshold carry a gradient.
- :func:`round_ste` — forward ``floor(x + 1/2)`` (round half up), backward identity.
- :func:`grad_scale` — forward ``x``, backward ``g * grad`` (LSQ's step-size gradient scale).
- :func:`post_round_ste` — forward the nearest power of √2 (sign · √2^-n, ``n`` in
  ``0..max_n``, zero below the smallest level), backward identity inside the representable range
  and zero where the magnitude is clipped at the top.
"""

from __future__ import annotations

import math

import torch

SQRT2 = math.sqrt(2.0)


class HeavisideSTE(torch.autograd.Function):
    """``1[u > 0]`` forward; ``grad * 1[|u| < w] / (2 w)`` backward (``w`` broadcasts, no grad)."""

    @staticmethod
    def forward(ctx, u, width):
        ctx.save_for_backward(u, width)
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        u, width = ctx.saved_tensors
        box = (u.abs() < width).to(grad.dtype) / (2 * width)
        return grad * box, None


def heaviside_ste(u: torch.Tensor, width: torch.Tensor | float) -> torch.Tensor:
    """Return ``1[u > 0]`` with the box straight-through gradient of half-width ``width``."""
    width = torch.as_tensor(width, dtype=u.dtype, device=u.device)
    return HeavisideSTE.apply(u, width)


class RoundSTE(torch.autograd.Function):
    """``floor(x + 1/2)`` forward (round half up), identity backward."""

    @staticmethod
    def forward(ctx, x):
        return torch.floor(x + 0.5)

    @staticmethod
    def backward(ctx, grad):
        return grad


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Return ``x`` rounded half up, with an identity gradient."""
    return RoundSTE.apply(x)


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """Forward ``x``, backward ``g * grad`` (LSQ's step-size gradient scale)."""
    return (x - x * g).detach() + x * g


def post_codes(u: torch.Tensor, max_n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the POST code of real weights ``u`` (in units of the layer scale): ``(sign, n)``.

    ``n = round(-2 log2 |u|)`` (the nearest power of √2 in the log domain), clamped to
    ``0..max_n``; magnitudes below ``√2^-(max_n + 1/2)`` become zero (sign 0, n 0). Both int64.
    """
    mag = u.detach().abs().to(torch.float64)
    with torch.no_grad():
        n_real = -2.0 * torch.log2(mag.clamp_min(1e-30))
        n = torch.floor(n_real + 0.5).clamp(0, max_n)
        zero = n_real > max_n + 0.5
        sign = torch.sign(u.detach()).to(torch.int64)
        sign = torch.where(zero, torch.zeros_like(sign), sign)
        n = torch.where(zero, torch.zeros_like(n), n).to(torch.int64)
    return sign, n


def post_value(sign: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Return ``sign * √2^-n`` as float64."""
    return sign.to(torch.float64) * torch.pow(torch.tensor(SQRT2, dtype=torch.float64),
                                              -n.to(torch.float64))


class PostRoundSTE(torch.autograd.Function):
    """Nearest POST level forward; identity backward for ``|u| <= √2^(1/2)``, zero above."""

    @staticmethod
    def forward(ctx, u, max_n):
        ctx.save_for_backward(u)
        sign, n = post_codes(u, int(max_n))
        return post_value(sign, n).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * (u.abs() <= SQRT2 ** 0.5).to(grad.dtype), None


def post_round_ste(u: torch.Tensor, max_n: int) -> torch.Tensor:
    """Return ``u`` rounded to the nearest ``sign · √2^-n`` (``n <= max_n``), straight-through."""
    return PostRoundSTE.apply(u, max_n)

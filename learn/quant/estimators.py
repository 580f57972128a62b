"""Gradient estimators and relaxations: the training forward of a threshold quantizer.

Each is a module called as ``estimator(u, theta, width, table, temperature, generator)``:
samples ``u`` ``[...]`` and thresholds ``theta`` ``[levels - 1]`` in normalised units, the
window ``width`` per threshold (:mod:`learn.quant.windows`), the decode table ``table``
``[levels, channels]`` as the hardware holds it (fixed point, straight-through), the annealed
``temperature`` and the generator of any noise it draws; it returns the features
``[..., channels]``.

- :class:`StraightThrough` (``learned``): Eq. 1 of "Task-Guided Quantization Strategies",
  ``y = E[0] + Σ_i (E[i+1] - E[i]) H(u - θ_i)`` = ``E[#(u > θ)]`` exactly in the forward pass;
  backward ``H'`` is a density of half-width ``w``: ``box`` (:func:`~learn.ste.heaviside_ste`,
  height ``1 / (2 w)``), ``normal`` or ``logistic`` (:func:`smooth_step_ste`: the gradient of the
  expected code under noise of rms ``w``).
- :class:`GumbelSoftmax` (``gumbel``): logits ``l_k = Σ_{i<=k} (u - θ_i) / w_i`` (``l_0 = 0``)
  have ``argmax = #(u > θ)``; training draws the one-hot ``argmax(l + g)`` (``g`` Gumbel noise)
  forward and backpropagates ``softmax((l + g) / τ)``.
- :class:`BitwiseSigmoids` (``bitwise``): bit ``j`` of the code toggles at thresholds
  ``θ_{m 2^j}``; its soft form is ``Σ_m (-1)^(m+1) sigmoid((u - θ_{m 2^j}) / (τ w))``, ``τ``
  annealed towards 0 (hard steps). It decodes to the code's bits itself (MSB first), so it goes
  with the :class:`~learn.quant.decoders.BitDecoder` only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from adcforge.errors import ConfigError

from ..ste import heaviside_ste

DTYPE = torch.float64
ESTIMATORS = ("box", "normal", "logistic")


# -- the smooth step: the expected code under noise --------------------------------------------
def expected_steps(u: torch.Tensor, width: torch.Tensor, kind: str) -> torch.Tensor:
    """Smooth step ``F(u / w)``: ``normal`` is ``Φ(u / w)``, the probability that a sample whose
    noise-free value lies ``u`` above a threshold, with Gaussian noise of rms ``w``, lands above
    it (so ``Σ_i F((x - θ_i) / w_i)`` is the expected code of the sample); ``logistic`` is
    ``σ(1.702 u / w)``, the logistic curve with the same slope at 0, whose tails are heavier."""
    z = u / width
    if kind == "normal":
        return 0.5 * (1 + torch.erf(z / math.sqrt(2.0)))
    if kind == "logistic":
        return torch.sigmoid(1.702 * z)
    raise ConfigError(f"quantizer.estimator: unknown {kind!r}; allowed: {', '.join(ESTIMATORS)}")


def expected_step_density(u: torch.Tensor, width: torch.Tensor, kind: str) -> torch.Tensor:
    """``d/du`` of :func:`expected_steps`: ``φ(u / w) / w`` (normal) or the logistic density."""
    z = u / width
    if kind == "normal":
        return torch.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * width)
    s = torch.sigmoid(1.702 * z)
    return 1.702 * s * (1 - s) / width


class SmoothStepSTE(torch.autograd.Function):
    """``1[u > 0]`` forward; ``grad · F'(u / w) / w`` backward (``w``, ``kind`` without grad)."""

    @staticmethod
    def forward(ctx, u, width, kind):
        ctx.save_for_backward(u, width)
        ctx.kind = kind
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        u, width = ctx.saved_tensors
        return grad * expected_step_density(u, width, ctx.kind), None, None


def smooth_step_ste(u: torch.Tensor, width: torch.Tensor, kind: str) -> torch.Tensor:
    """Return the hard step ``1[u > 0]`` whose gradient is that of :func:`expected_steps`
    (straight-through: the network sees the codes the hardware makes; the thresholds get the
    gradient of the expected code, which exists wherever the window ``w`` reaches)."""
    if kind not in ("normal", "logistic"):
        raise ConfigError(f"quantizer.estimator: unknown {kind!r}; allowed: "
                          f"{', '.join(ESTIMATORS)}")
    width = torch.as_tensor(width, dtype=u.dtype, device=u.device)
    return SmoothStepSTE.apply(u, width, kind)


# -- the estimators ----------------------------------------------------------------------------
class Estimator(nn.Module):
    """Base: ``forward(u, theta, width, table, temperature, generator) -> [..., channels]``."""

    name = "?"
    decodes_to_bits = False  # True: the output is the code's bits, whatever the decoder

    def forward(self, u, theta, width, table, temperature=1.0, generator=None):
        raise NotImplementedError


class StraightThrough(Estimator):
    """The hard ladder forward, the gradient of ``density`` (``box``, ``normal``, ``logistic``)
    of half-width ``w`` backward (module docstring)."""

    def __init__(self, density: str = "box"):
        super().__init__()
        if density not in ESTIMATORS:
            raise ConfigError(f"quantizer.estimator: unknown {density!r}; allowed: "
                              f"{', '.join(ESTIMATORS)}")
        self.density = density
        self.name = density

    def extra_repr(self) -> str:
        return f"density={self.density!r}"

    def steps(self, u, theta, width):
        """``1[u > θ_i]`` per threshold ``[..., levels - 1]`` with the density's gradient."""
        if self.density == "box":
            return heaviside_ste(u[..., None] - theta, width)
        return smooth_step_ste(u[..., None] - theta, width, self.density)

    def forward(self, u, theta, width, table, temperature=1.0, generator=None):
        steps = self.steps(u, theta, width)
        return table[0] + steps @ (table[1:] - table[:-1])


class GumbelSoftmax(Estimator):
    """Straight-through Gumbel-softmax over the ladder's logits (module docstring)."""

    name = "gumbel"

    @staticmethod
    def logits(u, theta, width):
        """``l_k = Σ_{i<=k} (u - θ_i) / w_i``, ``l_0 = 0``: ``argmax`` is ``#(u > θ)``."""
        d = (u[..., None] - theta) / width
        return torch.cat([torch.zeros_like(d[..., :1]), torch.cumsum(d, -1)], -1)

    def forward(self, u, theta, width, table, temperature=1.0, generator=None):
        logits = self.logits(u, theta, width)
        uniform = torch.rand(logits.shape, generator=generator, dtype=DTYPE,
                             device=logits.device)
        g = -torch.log(-torch.log(uniform.clamp(1e-12, 1 - 1e-12)))
        y = logits + g
        soft = torch.softmax(y / max(temperature, 1e-3), -1)
        hard = F.one_hot(y.argmax(-1), logits.shape[-1]).to(DTYPE)
        onehot = hard - soft.detach() + soft
        return onehot @ table


class BitwiseSigmoids(Estimator):
    """Soft bits: signed sums of sigmoids at the thresholds where each bit toggles (module
    docstring)."""

    name = "bitwise"
    decodes_to_bits = True

    def __init__(self, bits: int):
        super().__init__()
        self.bits = int(bits)
        # sel[i, c] = +-1 where threshold i (0-based) toggles output channel c
        sel = np.zeros((2**self.bits - 1, self.bits))
        for c in range(self.bits):
            j = self.bits - 1 - c
            for m in range(1, 2 ** (self.bits - j)):
                sel[m * 2**j - 1, c] = 1.0 if m % 2 else -1.0
        self.register_buffer("sel", torch.as_tensor(sel))

    def forward(self, u, theta, width, table, temperature=1.0, generator=None):
        z = (u[..., None] - theta) / (width * max(temperature, 1e-6))
        return torch.sigmoid(z) @ self.sel

"""LSQ and LSQ+: a uniform quantizer whose step (and offset) are learned. Its thresholds and its
decode table are both made of the step, so it is one module rather than composed parts."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..ste import grad_scale, round_ste
from .base import DTYPE, Quantizer
from .stats import SampleStats


class LSQQuantizer(Quantizer):
    """``lsq`` / ``lsqplus``: Learned Step Size Quantization (Esser et al. 2020) and LSQ+
    (Bhalgat et al. 2020), unsigned: ``v̂ = s clamp(round((v - β) / s), 0, Q_P) + β`` with
    ``v = (x - black) / scale``, ``β = 0`` for LSQ (learned for LSQ+), the step gradient scaled by
    ``1 / sqrt(N Q_P)``. Round is half up, so ``code >= k ⇔ x >= black + scale (β + (k - ½) s)``.
    The decoded value is ``v̂`` itself (1 channel)."""

    inclusive = True

    def __init__(self, bits: int, stats: SampleStats, input_bits: int, plus: bool,
                 features: int, width: int = 8):
        super().__init__(bits, stats, input_bits, width)
        self.method = "lsqplus" if plus else "lsq"
        self.black = float(stats.black)
        qp = self.levels - 1
        self.g = 1.0 / math.sqrt(max(features, 1) * qp)
        if plus:
            v_lo = (stats.lo - self.black) / self.scale
            v_hi = (stats.hi - self.black) / self.scale
            s0 = (v_hi - v_lo) / qp
            self.beta = nn.Parameter(torch.tensor(v_lo, dtype=DTYPE))
        else:
            s0 = 2 * stats.mean_abs(self.black) / self.scale / math.sqrt(qp)
            self.register_buffer("beta", torch.tensor(0.0, dtype=DTYPE))
        self.step = nn.Parameter(torch.tensor(max(s0, 1e-6), dtype=DTYPE))

    def threshold_parameters(self):
        return [self.step] + ([self.beta] if isinstance(self.beta, nn.Parameter) else [])

    def _s(self):
        return torch.clamp(self.step, min=1e-6)

    def float_thresholds(self):
        k = torch.arange(1, self.levels, dtype=DTYPE, device=self.step.device)
        return self.black + self.scale * (self.beta + (k - 0.5) * self._s())

    def table(self):
        k = torch.arange(self.levels, dtype=DTYPE, device=self.step.device)
        return (k * self._s() + self.beta)[:, None]

    def train_forward(self, x):
        v = (x.to(DTYPE) - self.black) / self.scale
        s = grad_scale(self._s(), self.g)
        beta = grad_scale(self.beta, self.g) if self.beta.requires_grad else self.beta
        vbar = round_ste(torch.clamp((v - beta) / s, 0, self.levels - 1))
        return (vbar * s + beta)[..., None]

"""The quantizer base class: normalisation, the integer ladder, the hard forward, freezing, export.

Every quantizer is an ``nn.Module`` with

- a training forward (``module.train()``): DN float tensor ``[...]`` → features ``[..., C]``,
  differentiable in the method's own way (:meth:`Quantizer.train_forward`);
- a hard forward (``module.eval()``, or after :meth:`Quantizer.freeze`): the integer ladder
  ``code = #{t : x >= t}`` over :meth:`Quantizer.int_thresholds` followed by the fixed-point
  decode table — exactly what the design file and the golden model compute;
- an export: integer thresholds in the sample word (``1..2**input_bits - 1``, strictly
  increasing) and the decode table in signed fixed point
  (:func:`~learn.quant.decoders.decode_fixed`).

Quantizer arithmetic runs in float64 so that float thresholds and their integer export agree on
every integer sample.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .decoders import decode_fixed, fake_quant_table
from .ladders import export_int_thresholds
from .stats import SampleStats

DTYPE = torch.float64


def ladder(x: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Return ``#{t : x >= t}`` for sorted integer thresholds (int64 codes)."""
    return torch.searchsorted(thresholds.to(x.dtype).contiguous(), x.contiguous(), right=True)


class Quantizer(nn.Module):
    """Base class: normalisation, integer ladder, hard forward, freezing, export.

    Samples are normalised as ``u = (x - lo) / scale`` (DN) with ``lo`` the lowest training
    sample and ``scale = hi - lo`` so that learning rates mean the same at every light level.

    A subclass writes :meth:`float_thresholds`, :meth:`table` and :meth:`train_forward` (and
    :meth:`threshold_parameters` when it has trainable thresholds); the trainer sets
    :attr:`temperature` (annealed, for the soft relaxations), :attr:`progress` (0 → 1 over the
    threshold-learning epochs) and :attr:`generator` (for the noise a relaxation draws).
    """

    method = "?"
    inclusive = False
    exportable = True

    def __init__(self, bits: int, stats: SampleStats, input_bits: int, width: int = 8):
        super().__init__()
        self.bits = int(bits)
        self.levels = 2**self.bits
        self.input_bits = int(input_bits)
        self.top = 2**self.input_bits - 1
        self.width = int(width)
        self.stats = stats
        self.lo = float(stats.lo)
        self.scale = stats.scale
        self.temperature = 1.0  # annealed by the trainer for soft methods
        self.progress = 0.0  # set by the trainer
        self.generator: torch.Generator | None = None
        self.register_buffer("frozen", torch.zeros(0, dtype=torch.int64))

    # normalisation
    def to_u(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(DTYPE) - self.lo) / self.scale

    def to_dn(self, u: torch.Tensor) -> torch.Tensor:
        return u * self.scale + self.lo

    # thresholds
    def float_thresholds(self) -> torch.Tensor:
        """Current float thresholds in DN (float64, ``levels - 1``)."""
        raise NotImplementedError

    def int_thresholds(self) -> torch.Tensor:
        """Integer thresholds of the hard quantizer (exported), int64, strictly increasing."""
        if self.is_frozen:
            return self.frozen
        theta = self.float_thresholds().detach().cpu().numpy()
        return torch.as_tensor(export_int_thresholds(theta, self.inclusive, self.top),
                               device=self.frozen.device)

    @property
    def is_frozen(self) -> bool:
        return self.frozen.numel() > 0

    def freeze(self) -> None:
        """Snap the thresholds to their integer export; the trainable table may keep learning."""
        self.frozen = self.int_thresholds().clone()

    def threshold_parameters(self) -> list[nn.Parameter]:
        """Parameters trained with the thresholds' learning rate."""
        return []

    # decoding
    def table(self) -> torch.Tensor:
        """Decode table ``[levels, channels]`` (float64, before fixed-point rounding)."""
        raise NotImplementedError

    @property
    def channels(self) -> int:
        return self.table().shape[1]

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Hard codes of integer-valued samples ``x`` (the comparator ladder)."""
        return ladder(x.to(DTYPE), self.int_thresholds())

    def hard_forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quant_table(self.table(), self.width)[self.codes(x)]

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """DN ``[...]`` → features ``[..., channels]`` (float32)."""
        if self.training and not self.is_frozen:
            out = self.train_forward(x)
        else:
            out = self.hard_forward(x)
        return out.to(torch.float32)

    def export(self) -> tuple[list[int], int, np.ndarray]:
        """Return ``(thresholds, frac_bits, int table [levels, channels])`` for the design file."""
        f, ints = decode_fixed(self.table(), self.width)
        return [int(t) for t in self.int_thresholds().cpu()], f, ints.cpu().numpy()

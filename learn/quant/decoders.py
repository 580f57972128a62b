"""Decoders: code → vector, the table ``[levels, channels]`` (float64) behind the ADC, and its
signed fixed point as the hardware holds it.

- :class:`EmbeddingDecoder` (``embedding``): trainable; channel 0 starts at the bin's
  histogram-equalised value (:func:`~learn.quant.stats.bin_cdf_mid`; the code's rank when not
  given), further channels small and random;
- :class:`CentroidDecoder` (``centroid``): fixed, the normalised bin means (1 channel);
- :class:`OneHotDecoder` (``onehot``): fixed identity (``levels`` channels);
- :class:`BitDecoder`: fixed, the code's bits MSB first (``bits`` channels; ``bitwise``).

The decode table is trained through its fixed-point rounding (:func:`fake_quant_table`,
straight-through) and exported by :func:`decode_fixed`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from adcforge.design import signed_range

from ..ste import round_ste
from .stats import SampleStats, bin_cdf_mid, bin_centroids

DTYPE = torch.float64


# -- fixed point -------------------------------------------------------------------------------
def decode_frac_bits(table: torch.Tensor, width: int) -> int:
    """Largest fraction bits F (0..24) such that ``max|table| * 2**F <= 2**(width-1) - 1``."""
    m = float(table.detach().abs().max()) if table.numel() else 0.0
    top = 2 ** (width - 1) - 1
    if m <= 0:
        return 24
    f = math.floor(math.log2(top / m))
    while f > -64 and m * 2.0**f > top:  # guard against log2 rounding
        f -= 1
    while f < 24 and m * 2.0 ** (f + 1) <= top:
        f += 1
    return int(min(max(f, 0), 24))


def decode_fixed(table: torch.Tensor, width: int) -> tuple[int, torch.Tensor]:
    """Quantise a decode table to signed ``width``-bit fixed point: ``(F, int64 table)``.

    ``int = clip(floor(v * 2**F + 1/2), -2**(width-1), 2**(width-1) - 1)`` in float64, with F from
    :func:`decode_frac_bits` (F is clamped at 0, so very large values saturate).
    """
    f = decode_frac_bits(table, width)
    lo, hi = signed_range(width)
    ints = torch.floor(table.detach().to(DTYPE) * 2.0**f + 0.5).clamp(lo, hi).to(torch.int64)
    return f, ints


def fake_quant_table(table: torch.Tensor, width: int) -> torch.Tensor:
    """The decode table as the hardware holds it (fixed point), with a straight-through gradient."""
    f, _ = decode_fixed(table, width)
    lo, hi = signed_range(width)
    return torch.clamp(round_ste(table.to(DTYPE) * 2.0**f), lo, hi) / 2.0**f


def bit_table(bits: int) -> np.ndarray:
    """``table[code, c]`` = bit ``bits - 1 - c`` of ``code`` (MSB first), as 0.0 / 1.0."""
    codes = np.arange(2**bits)[:, None]
    return ((codes >> np.arange(bits - 1, -1, -1)[None]) & 1).astype(np.float64)


# -- the decoders ------------------------------------------------------------------------------
def _column(values, levels: int) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64)).reshape(levels, 1)


class Decoder(nn.Module):
    """Base: ``forward()`` is the table ``[levels, channels]`` (float64), held in ``weight``
    (a parameter when trainable, else a buffer)."""

    name = "?"

    @property
    def levels(self) -> int:
        return self.weight.shape[0]

    @property
    def channels(self) -> int:
        return self.weight.shape[1]

    def forward(self) -> torch.Tensor:
        return self.weight


class EmbeddingDecoder(Decoder):
    """``embedding``: a trainable table; channel 0 at ``rank`` (default: the code's rank in
    [0, 1]), channels 1.. drawn from ``0.3 · N(0, 1)`` with ``generator``."""

    name = "embedding"

    def __init__(self, levels: int, channels: int = 1, rank=None,
                 generator: torch.Generator | None = None):
        super().__init__()
        rank = (torch.linspace(0, 1, levels, dtype=DTYPE)[:, None] if rank is None
                else _column(rank, levels))
        extra = torch.randn(levels, channels - 1, generator=generator, dtype=DTYPE) * 0.3
        self.weight = nn.Parameter(torch.cat([rank, extra], dim=1))

    @classmethod
    def for_ladder(cls, stats: SampleStats, ladder, channels: int = 1,
                   generator: torch.Generator | None = None) -> "EmbeddingDecoder":
        """Channel 0 at each bin's histogram-equalised value (well scaled whatever the light)."""
        return cls(len(ladder) + 1, channels, bin_cdf_mid(stats, ladder), generator)


class CentroidDecoder(Decoder):
    """``centroid``: the fixed values ``centroids`` (normalised units, one channel)."""

    name = "centroid"

    def __init__(self, centroids):
        super().__init__()
        self.register_buffer("weight", _column(centroids, len(centroids)).clone())

    @classmethod
    def for_ladder(cls, stats: SampleStats, ladder, channels: int = 1,
                   generator: torch.Generator | None = None) -> "CentroidDecoder":
        """Each bin's mean training sample, normalised as ``(x - lo) / scale``."""
        return cls((bin_centroids(stats, ladder) - float(stats.lo)) / stats.scale)


class OneHotDecoder(Decoder):
    """``onehot``: the fixed identity, one channel per code."""

    name = "onehot"

    def __init__(self, levels: int):
        super().__init__()
        self.register_buffer("weight", torch.eye(levels, dtype=DTYPE))

    @classmethod
    def for_ladder(cls, stats: SampleStats, ladder, channels: int = 1,
                   generator: torch.Generator | None = None) -> "OneHotDecoder":
        return cls(len(ladder) + 1)


class BitDecoder(Decoder):
    """The code's bits, MSB first (:func:`bit_table`): what :class:`BitwiseSigmoids` trains
    towards."""

    name = "bits"

    def __init__(self, bits: int):
        super().__init__()
        self.register_buffer("weight", torch.as_tensor(bit_table(int(bits))))


DECODERS = {"embedding": EmbeddingDecoder, "onehot": OneHotDecoder, "centroid": CentroidDecoder}
"""The decoders by their name in ``quantizer.decoder``; each has ``for_ladder(stats, ladder,
channels, generator)``."""

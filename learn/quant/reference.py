"""The references that are not quantizers: no integer export, so no design file.

- :class:`FullPrecision` (``fp``): every value of the sample word its own code, decoded by a
  table ``[2**input_bits, channels]`` in float.
- :class:`LinearInput`: the normalised sample itself, the fine model whose loss gradient places
  the task-aware start (:func:`~learn.quant.ladders.weighted_int_thresholds`).
"""

from __future__ import annotations

import numpy as np
import torch

from adcforge.errors import ConfigError

from .base import DTYPE, Quantizer
from .decoders import CentroidDecoder, Decoder, EmbeddingDecoder
from .stats import SampleStats, bin_cdf_mid


class LinearInput(Quantizer):
    """No quantizer and no table: the normalised sample ``u = (x - lo) / (hi - lo)`` itself as
    one channel, differentiable in ``x``. The fine reference model whose loss gradient with
    respect to the samples places the task-aware start (:func:`weighted_int_thresholds`). Not
    exportable."""

    method = "linear-input"
    exportable = False

    def __init__(self, stats: SampleStats, input_bits: int):
        super().__init__(1, stats, input_bits)

    def table(self):
        return torch.zeros(1, 1, dtype=DTYPE)

    def forward(self, x):
        return self.to_u(x)[..., None].to(torch.float32)


class FullPrecision(Quantizer):
    """``fp``: no quantizer. Every value of the sample word is its own code, decoded by the
    ``decoder`` part (``2**input_bits`` entries, float, no fixed point): an
    :class:`EmbeddingDecoder` (:meth:`full_decoder` ``embedding``, the default) trains, channel 0
    initialised at the value's histogram-equalised rank (``hist`` with a trainable embedding at
    the sensor's full resolution: any quantizer with any decode table is a special case of it);
    a :class:`CentroidDecoder` (``centroid``) is the fixed normalised sample ``u`` (the linear
    input). Not exportable."""

    method = "fp"
    exportable = False

    def __init__(self, stats: SampleStats, input_bits: int, decoder: Decoder):
        super().__init__(1, stats, input_bits)
        if decoder.levels != self.top + 1:
            raise ConfigError(f"quantizer.decoder: method 'fp' decodes every one of the "
                              f"{self.top + 1} sample values; the decoder has {decoder.levels}")
        self.decoder = decoder

    @staticmethod
    def full_decoder(kind: str, stats: SampleStats, input_bits: int, channels: int = 1,
                     generator: torch.Generator | None = None) -> Decoder:
        """The decoder of every sample value: ``embedding`` or ``centroid``."""
        top = 2**int(input_bits) - 1
        if kind == "onehot":
            raise ConfigError(f"quantizer.decoder: 'onehot' would need {top + 1} channels "
                              f"for method 'fp'; allowed: embedding, centroid")
        v = np.arange(top + 1)  # every value its own bin: thresholds 1..top
        if kind == "centroid":
            return CentroidDecoder((v - float(stats.lo)) / stats.scale)
        if kind == "embedding":
            return EmbeddingDecoder(top + 1, channels, bin_cdf_mid(stats, v[1:]), generator)
        raise ConfigError(f"quantizer.decoder: unknown decoder {kind!r}; allowed: embedding, "
                          f"centroid")

    def float_thresholds(self):
        raise ConfigError("method 'fp' has no thresholds: it is the full-precision reference")

    def table(self):
        return self.decoder()

    def forward(self, x):
        idx = x.to(torch.int64).clamp(0, self.top)
        return self.table()[idx].to(torch.float32)

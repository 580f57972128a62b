"""A threshold quantizer composed of parts, as Brevitas composes its quantizers from
``scaling_impl``, ``int_quant`` and friends: each concern is a small module passed in, and the
quantizer only wires them together.

::

    thresholds (learn.quant.thresholds)  parameters → θ (normalised units) and θ in DN
    window     (learn.quant.windows)     θ, progress → half-width w per threshold
    estimator  (learn.quant.estimators)  u, θ, w, table, τ, generator → features (training)
    decoder    (learn.quant.decoders)    → table [levels, channels]

The hard forward, freezing and the export are the base class's (:mod:`learn.quant.base`). With
no estimator (a :class:`~learn.quant.thresholds.FixedLadder`) the quantizer is frozen at its
ladder from the start and only the decode table trains.
"""

from __future__ import annotations

import torch

from adcforge.errors import ConfigError

from .base import Quantizer
from .decoders import BitDecoder, Decoder, fake_quant_table
from .estimators import Estimator
from .stats import SampleStats
from .thresholds import FixedLadder, Thresholds
from .windows import Window


class ThresholdQuantizer(Quantizer):
    """``code = #(x > θ)`` (``#(x >= t)`` for a fixed ladder) over the ``thresholds`` part,
    decoded by the ``decoder`` part, trained through the ``estimator`` part with the ``window``
    part's half-widths. ``width``: the decode table's fixed-point width; ``method``: the name
    the design file's provenance and the trainer see. An invalid combination of parts is a
    one-line :class:`~adcforge.errors.ConfigError` naming the config key of the part at fault.
    """

    def __init__(self, stats: SampleStats, input_bits: int, thresholds: Thresholds,
                 decoder: Decoder, estimator: Estimator | None = None,
                 window: Window | None = None, width: int = 8, method: str = "composed"):
        levels = thresholds.levels
        bits = levels.bit_length() - 1
        if levels != 2**bits:
            raise ConfigError(f"quantizer.bits: {levels - 1} thresholds make {levels} codes, "
                              f"not a power of two")
        if decoder.levels != levels:
            raise ConfigError(f"quantizer.decoder: the {decoder.name} decoder has "
                              f"{decoder.levels} entries, the {thresholds.name} thresholds "
                              f"make {levels} codes")
        fixed = isinstance(thresholds, FixedLadder)
        if estimator is None and not fixed:
            raise ConfigError(f"quantizer.estimator: the {thresholds.name} thresholds learn, "
                              f"they need a gradient estimator")
        if estimator is not None and fixed:
            raise ConfigError("quantizer.estimator: a fixed ladder has no thresholds to "
                              "train; pass estimator=None")
        if estimator is not None and window is None:
            raise ConfigError(f"quantizer.ste_window: the {estimator.name} estimator needs a "
                              f"window (GapWindow or NoiseWindow)")
        if estimator is not None and estimator.decodes_to_bits != isinstance(decoder,
                                                                             BitDecoder):
            raise ConfigError(f"quantizer.decoder: the {estimator.name} estimator goes with "
                              f"the bit decoder (BitDecoder) and the bit decoder with it only; "
                              f"got the {decoder.name} decoder")
        if estimator is not None and getattr(estimator, "bits", bits) != bits:
            raise ConfigError(f"quantizer.bits: the {estimator.name} estimator was built for "
                              f"{estimator.bits} bits, the thresholds make {bits}")
        super().__init__(bits, stats, input_bits, width)
        self.method = method
        self.thresholds = thresholds
        self.window = window
        self.estimator = estimator
        self.decoder = decoder
        if fixed:
            self.frozen = thresholds.ladder.clone()

    def extra_repr(self) -> str:
        return f"method={self.method!r}, bits={self.bits}, width={self.width}"

    @property
    def inclusive(self) -> bool:
        return self.thresholds.inclusive

    @property
    def param(self) -> str:
        """The threshold parameterisation's name (the trainer gives ``dn`` its DN rate)."""
        return self.thresholds.name

    def thresholds_u(self) -> torch.Tensor:
        """Current thresholds in normalised units."""
        return self.thresholds()

    def float_thresholds(self):
        return self.thresholds.dn()

    def threshold_parameters(self):
        return list(self.thresholds.parameters())

    def ste_width(self, theta_u: torch.Tensor) -> torch.Tensor:
        """The window's half-width per threshold (normalised units) at ``theta_u``."""
        return self.window(theta_u, self.progress, self.thresholds.anchored_at_lo)

    def table(self):
        return self.decoder()

    def train_forward(self, x):
        if self.estimator is None:  # a fixed ladder trains its table on the hard codes
            return self.hard_forward(x)
        u = self.to_u(x)
        th = self.thresholds_u()
        return self.estimator(u, th, self.ste_width(th), fake_quant_table(self.table(), self.width),
                              self.temperature, self.generator)

"""``make_quantizer``: a quantizer from the config's strings. The strings stay the user interface
(``quantizer.method``, ``threshold_param``, ``estimator``, ``ste_window``, ``decoder``, ``init``);
here each one picks a part (:mod:`learn.quant.thresholds`, :mod:`~learn.quant.estimators`,
:mod:`~learn.quant.windows`, :mod:`~learn.quant.decoders`), and the parts are passed to
:class:`~learn.quant.compose.ThresholdQuantizer`.

- ``learned``: the ``threshold_param`` part, :class:`StraightThrough` (``estimator``: box,
  normal, logistic), the ``ste_window`` window (annealed by ``window_anneal``), the ``decoder``;
- ``gumbel``: the ``threshold_param`` part, :class:`GumbelSoftmax`, the window, the ``decoder``;
- ``bitwise``: the ``threshold_param`` part, :class:`BitwiseSigmoids`, the window, the
  :class:`BitDecoder` (``decoder`` is not used);
- ``hist``, ``uniform``, ``uniform-full``, ``sqrt``, ``lloyd``, ``fixed``: a :class:`FixedLadder`
  (:data:`~learn.quant.ladders.FIXED_LADDERS`, or ``thresholds``), no estimator, the ``decoder``;
- ``lsq``, ``lsqplus``: one module, :class:`~learn.quant.lsq.LSQQuantizer` (its thresholds and
  table are both made of the learned step);
- ``fp``: :class:`~learn.quant.reference.FullPrecision` with a decoder of every sample value.
"""

from __future__ import annotations

import torch

from adcforge.errors import ConfigError

from ..methods import METHODS
from .base import Quantizer
from .compose import ThresholdQuantizer
from .decoders import DECODERS, BitDecoder
from .estimators import BitwiseSigmoids, GumbelSoftmax, StraightThrough
from .ladders import fixed_ladder, start_ladder
from .lsq import LSQQuantizer
from .reference import FullPrecision
from .stats import SampleStats
from .thresholds import THRESHOLD_PARAMS, FixedLadder
from .windows import WINDOWS

LEARNED_THRESHOLDS = ("learned", "gumbel", "bitwise")


def _choose(key: str, name, table):
    if name not in table:
        raise ConfigError(f"{key}: unknown {name!r}; allowed: {', '.join(table)}")
    return table[name]


def _estimator(method: str, bits: int, estimator: str):
    if method == "learned":
        return StraightThrough(estimator)
    return GumbelSoftmax() if method == "gumbel" else BitwiseSigmoids(bits)


def make_quantizer(method: str, bits: int, stats: SampleStats, input_bits: int, *,
                   decoder: str = "embedding", channels: int = 1, width: int = 8,
                   init: str = "quantile", features: int = 1,
                   generator: torch.Generator | None = None,
                   threshold_param: str = "absolute", ste_window: str = "auto",
                   thresholds=None, estimator: str = "box", window_anneal=None) -> Quantizer:
    """Build the quantizer ``method`` (one of :data:`METHODS`) for ``bits``-bit codes.

    ``stats``: histogram of training samples; ``input_bits``: sample word width; ``decoder`` /
    ``channels``: decode table kind and width (threshold methods and ``gumbel``; ``bitwise``
    decodes to its bits, ``lsq``/``lsqplus`` to their dequantized value); ``width``: decode
    fixed-point width; ``init``: ``quantile`` or ``uniform`` (learned methods), or an integer
    ladder (the start a trainer computed, e.g. task-aware); ``features``: samples per example
    (LSQ gradient scale); ``threshold_param``: ``absolute``, ``relative``, ``quantile`` or ``dn``
    (learned-threshold methods, :mod:`learn.quant.thresholds`); ``ste_window``: ``gap``,
    ``noise`` or ``auto`` (``noise`` for ``learned`` when ``stats`` knows the sensor's gain,
    ``gap`` for the soft relaxations, whose scale it is); ``thresholds``: the ladder of ``fixed``;
    ``estimator`` and ``window_anneal``: the gradient of ``learned``
    (:class:`~learn.quant.estimators.StraightThrough`, :class:`~learn.quant.windows.Window`).
    Raises ConfigError for unknown names or values out of range.
    """
    if method not in METHODS:
        raise ConfigError(f"quantizer.method: unknown method {method!r}; allowed: "
                          f"{', '.join(METHODS)}")
    if not (isinstance(bits, int) and 1 <= bits <= 8):
        raise ConfigError(f"quantizer.bits: got {bits!r}; allowed range is 1..8")
    if 2**bits - 1 > 2**input_bits - 1:
        raise ConfigError(f"quantizer.bits: {bits} bits need {2**bits - 1} thresholds but a "
                          f"{input_bits}-bit sample holds at most {2**input_bits - 1}")
    if decoder == "onehot":
        channels = 2**bits
        if channels > 16:
            raise ConfigError(f"quantizer.decoder: 'onehot' needs 2**bits channels; the design "
                              f"file allows at most 16 (bits <= 4), got bits={bits}")
    if decoder == "centroid":
        channels = 1
    if not 1 <= channels <= 16:
        raise ConfigError(f"quantizer.channels: got {channels}; allowed range is 1..16")
    if method == "fp":
        return FullPrecision(stats, input_bits, FullPrecision.full_decoder(
            decoder, stats, input_bits, channels, generator))
    if method in ("lsq", "lsqplus"):
        return LSQQuantizer(bits, stats, input_bits, method == "lsqplus", features, width)
    levels, top = 2**bits, 2**input_bits - 1
    if method not in LEARNED_THRESHOLDS:
        ladder = fixed_ladder(method, stats, levels, top, thresholds)
        return ThresholdQuantizer(stats, input_bits, FixedLadder(stats, ladder),
                                  _choose("quantizer.decoder", decoder, DECODERS).for_ladder(
                                      stats, ladder, channels, generator),
                                  width=width, method=method)
    relaxation = _estimator(method, bits, estimator)
    parameterisation = _choose("quantizer.threshold_param", threshold_param, THRESHOLD_PARAMS)
    if ste_window == "auto":
        ste_window = "noise" if method == "learned" and stats.gain_dn_per_e > 0 else "gap"
    window = _choose("quantizer.ste_window", ste_window, WINDOWS)(
        stats, window_anneal if method == "learned" else None)
    start = start_ladder(stats, levels, top, init)
    dec = (BitDecoder(bits) if method == "bitwise" else
           _choose("quantizer.decoder", decoder, DECODERS).for_ladder(stats, start, channels,
                                                                       generator))
    return ThresholdQuantizer(stats, input_bits, parameterisation(stats, start), dec,
                              relaxation, window, width, method)

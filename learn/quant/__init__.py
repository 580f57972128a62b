"""Quantizers: sensor sample (integer DN) → code → decoded value(s) for the task network, built
by composition: each concern is a module of its own, passed in.

=================  ============================================================================
module             concern
=================  ============================================================================
``stats``          :class:`SampleStats`, the histogram of training samples, and per-bin numbers
``ladders``        integer ladders: the fixed rules (``hist``, ``uniform``, ``sqrt``, ``lloyd``,
                   ...), the starts of learned thresholds, the export to the sample word
``thresholds``     threshold parameterisations: ``absolute``, ``relative``, ``dn``,
                   ``quantile``, and the :class:`FixedLadder`
``windows``        the straight-through window per threshold: ``gap``, ``noise`` (annealed)
``estimators``     gradient estimators and relaxations: :class:`StraightThrough` (box, normal,
                   logistic), :class:`GumbelSoftmax`, :class:`BitwiseSigmoids`
``decoders``       decode tables (``embedding``, ``centroid``, ``onehot``, bits) and their
                   fixed point
``base``           :class:`Quantizer`: normalisation, the integer ladder, hard forward,
                   freezing, export
``compose``        :class:`ThresholdQuantizer`: the parts wired together
``lsq``            :class:`LSQQuantizer` (``lsq``, ``lsqplus``)
``reference``      :class:`FullPrecision` (``fp``) and :class:`LinearInput`: not exportable
``factory``        :func:`make_quantizer`: parts from the config's strings
=================  ============================================================================

Names (``METHODS``, from the torch-free :mod:`learn.methods`): ``learned``, ``bitwise``,
``gumbel``, ``hist``, ``uniform``, ``uniform-full``, ``sqrt``, ``lloyd``, ``lsq``, ``lsqplus``,
``fp``, and ``fixed`` (a ladder given by hand: a camera's own, or one point of a sweep).

By hand::

    from learn.quant import (CentroidDecoder, NoiseWindow, QuantileThresholds, StraightThrough,
                             ThresholdQuantizer, start_ladder)
    start = start_ladder(stats, levels=8, top=2**12 - 1, init="quantile")
    q = ThresholdQuantizer(stats, 12, QuantileThresholds(stats, start),
                           CentroidDecoder.for_ladder(stats, start),
                           StraightThrough("normal"), NoiseWindow(stats))
"""

from ..methods import COMPARED_METHODS, METHODS
from .base import Quantizer, ladder
from .compose import ThresholdQuantizer
from .decoders import (
    DECODERS,
    BitDecoder,
    CentroidDecoder,
    Decoder,
    EmbeddingDecoder,
    OneHotDecoder,
    bit_table,
    decode_fixed,
    decode_frac_bits,
    fake_quant_table,
)
from .estimators import (
    ESTIMATORS,
    BitwiseSigmoids,
    Estimator,
    GumbelSoftmax,
    SmoothStepSTE,
    StraightThrough,
    expected_step_density,
    expected_steps,
    smooth_step_ste,
)
from .factory import LEARNED_THRESHOLDS, make_quantizer
from .ladders import (
    FIXED_LADDERS,
    INITS,
    TASK_WEIGHTS,
    check_thresholds,
    export_int_thresholds,
    fixed_ladder,
    hist_int_thresholds,
    lloyd_max,
    make_strict,
    sqrt_int_thresholds,
    start_ladder,
    uniform_int_thresholds,
    weighted_int_thresholds,
)
from .lsq import LSQQuantizer
from .reference import FullPrecision, LinearInput
from .stats import SampleStats, bin_cdf_mid, bin_centroids, inverse_cdf_knots
from .thresholds import (
    THRESHOLD_PARAMS,
    AbsoluteThresholds,
    DNThresholds,
    FixedLadder,
    QuantileThresholds,
    RelativeThresholds,
    Thresholds,
)
from .windows import WINDOWS, GapWindow, NoiseWindow, Window

__all__ = [
    "COMPARED_METHODS", "METHODS", "Quantizer", "ladder", "ThresholdQuantizer",
    "DECODERS", "BitDecoder", "CentroidDecoder", "Decoder", "EmbeddingDecoder", "OneHotDecoder",
    "bit_table", "decode_fixed", "decode_frac_bits", "fake_quant_table",
    "ESTIMATORS", "BitwiseSigmoids", "Estimator", "GumbelSoftmax", "SmoothStepSTE",
    "StraightThrough", "expected_step_density", "expected_steps", "smooth_step_ste",
    "LEARNED_THRESHOLDS", "make_quantizer",
    "FIXED_LADDERS", "INITS", "TASK_WEIGHTS", "check_thresholds", "export_int_thresholds",
    "fixed_ladder", "hist_int_thresholds", "lloyd_max", "make_strict", "sqrt_int_thresholds",
    "start_ladder", "uniform_int_thresholds", "weighted_int_thresholds",
    "LSQQuantizer", "FullPrecision", "LinearInput",
    "SampleStats", "bin_cdf_mid", "bin_centroids", "inverse_cdf_knots",
    "THRESHOLD_PARAMS", "AbsoluteThresholds", "DNThresholds", "FixedLadder",
    "QuantileThresholds", "RelativeThresholds", "Thresholds",
    "WINDOWS", "GapWindow", "NoiseWindow", "Window",
]

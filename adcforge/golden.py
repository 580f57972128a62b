"""The golden model: plain integer numpy functions, the one source of truth for every number.

It lives on the ground floor with the design format: it imports nothing but numpy and
:mod:`adcforge.design`, so that ``learn`` scores itself and ``tb``/``boards`` check hardware
without importing each other. Each function is named after the hardware block it describes
(``ref_comparator_ladder`` for :class:`hdl.ladder.ComparatorLadder`, ...), and each block's module
re-exports its function so that the two sit side by side. Rounding and width rules are those of ``docs/design-format.md``.
All functions are vectorised over leading axes and return ``int64`` arrays.
"""

from __future__ import annotations

from functools import lru_cache
from math import isqrt

import numpy as np

from .design import Design


def ref_comparator_ladder(x, thresholds) -> np.ndarray:
    """Return the ADC code of each sample: the number of thresholds ``t`` with ``x >= t``.

    ``thresholds`` must be sorted ascending (a validated design's are); samples may have any
    shape and any integer values.
    """
    t = np.asarray(thresholds, dtype=np.int64)
    return np.searchsorted(t, np.asarray(x, dtype=np.int64), side="right").astype(np.int64)


def ref_comparator_ladder_unsorted(x, thresholds) -> np.ndarray:
    """Return the ones-count of the thermometer code for thresholds in any order."""
    x = np.asarray(x, dtype=np.int64)
    t = np.asarray(thresholds, dtype=np.int64)
    return (x[..., None] >= t).sum(axis=-1).astype(np.int64)


def ref_decode_lut(codes, table) -> np.ndarray:
    """Return the decoded values ``table[code]``: shape ``codes.shape + (channels,)``."""
    return np.asarray(table, dtype=np.int64)[np.asarray(codes, dtype=np.int64)]


def round_div_sqrt2(a: int, q: int) -> int:
    """Return ``a * 2**q / sqrt(2)`` rounded to the nearest integer, computed exactly.

    The value is irrational for ``a != 0``, so there are no ties; the result is odd-symmetric.
    """
    if a < 0:
        return -round_div_sqrt2(-a, q)
    # 2x = sqrt(2 a^2 4^q), so floor(x + 1/2) = (floor(2x) + 1) // 2.
    return (isqrt(2 * a * a * 4**q) + 1) // 2


@lru_cache(maxsize=64)
def sqrt_half_lut(width: int, q: int) -> np.ndarray:
    """Return the odd-exponent LUT: ``lut[a + 2**(width-1)] = round(a * 2**q / sqrt 2)``.

    Indexed by the two's-complement activation offset to be non-negative.
    """
    half = 2 ** (width - 1)
    lut = np.array([round_div_sqrt2(a, q) for a in range(-half, half)], dtype=np.int64)
    lut.setflags(write=False)
    return lut


def ref_post_multiplier(a, sign, exponent, width: int, q: int) -> np.ndarray:
    """Return the POST product of activations and weights ``sign * sqrt(2)**-exponent``.

    ``a`` is a signed ``width``-bit activation; the product has ``q`` more fractional bits:
    with ``k = exponent // 2``, even exponents give ``(a << q) >> k`` (exact, since ``k <= q``),
    odd exponents give ``lut[a] >> k`` with ``lut[a] = round(a * 2**q / sqrt 2)``; ``>>`` is an
    arithmetic (floor) shift; the sign is applied last, so the product is odd-symmetric in the
    weight. A zero sign gives 0. Arguments broadcast.
    """
    a = np.asarray(a, dtype=np.int64)
    sign = np.asarray(sign, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    k = exponent >> 1
    odd = sqrt_half_lut(width, q)[a + 2 ** (width - 1)]
    m = np.where((exponent & 1) == 1, odd, a << q)
    return sign * (m >> k)


def ref_output_stage(acc, shift: int, bits: int) -> np.ndarray:
    """Return ``acc`` shifted right by ``shift`` (round half up) and saturated to ``bits`` signed."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift:
        acc = (acc + (1 << (shift - 1))) >> shift
    return np.clip(acc, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def ref_post_mac(acts, sign, exponent, bias, width: int, q: int, output_bits: int,
                 output_shift: int) -> np.ndarray:
    """Return the POST layer's outputs for activations ``acts[..., inputs]``: ``[..., outputs]``.

    ``acc[j] = bias[j] + sum_i ref_post_multiplier(acts[i], sign[j, i], exponent[j, i])``, then
    :func:`ref_output_stage`. The accumulator never overflows (see ``Design.acc_bits``).
    """
    acts = np.asarray(acts, dtype=np.int64)
    sign = np.asarray(sign, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    acc = np.zeros(acts.shape[:-1] + (sign.shape[0],), dtype=np.int64)
    lut = sqrt_half_lut(width, q)
    odd_acts = lut[acts + 2 ** (width - 1)]
    even_acts = acts << q
    # Group by exponent: few distinct exponents, so this stays vectorised and exact (a set, not
    # np.unique: that imports numpy.ma, slowly, on its first call).
    for n in sorted(set(exponent.ravel().tolist())):
        base = odd_acts if n & 1 else even_acts
        shifted = base >> (int(n) >> 1)  # [..., inputs]
        w = np.where(exponent == n, sign, 0)  # [outputs, inputs]
        acc += shifted @ w.T
    acc += np.asarray(bias, dtype=np.int64)
    return ref_output_stage(acc, output_shift, output_bits)


def ref_adc_pipeline(design: Design, samples) -> dict[str, np.ndarray]:
    """Run the whole pipeline on integer samples.

    Returns ``codes`` (``samples.shape``) and ``values`` (``samples.shape + (channels,)``); with a
    MAC layer also ``outputs``: the last axis of ``samples`` must then hold
    ``design.samples_per_inference`` samples, and ``outputs`` has shape
    ``samples.shape[:-1] + (mac.outputs,)``.
    """
    samples = np.asarray(samples, dtype=np.int64)
    if samples.size and (samples.min() < 0 or samples.max() >= 2**design.input_bits):
        raise ValueError(f"samples must lie in [0, {2**design.input_bits - 1}]")
    codes = ref_comparator_ladder(samples, design.thresholds)
    values = ref_decode_lut(codes, design.decode.table)
    result = {"codes": codes, "values": values}
    if design.mac is not None:
        m = design.mac
        spi = design.samples_per_inference
        if samples.shape[-1] != spi:
            raise ValueError(f"the last axis must hold {spi} samples per inference, "
                             f"got {samples.shape[-1]}")
        acts = values.reshape(values.shape[:-2] + (m.inputs,))
        result["outputs"] = ref_post_mac(acts, m.sign, m.exponent, m.bias, design.decode.width,
                                         m.product_frac_bits, m.output_bits, m.output_shift)
    return result


def code_coverage(design: Design, samples) -> dict:
    """Return which of the design's codes a stream of samples exercises, and how often.

    ``codes_seen`` is the number of distinct codes among the samples' golden codes,
    ``codes_total`` the ladder's ``2**bits``, ``code_counts`` the count of each code (index =
    code). A check whose samples never cross a threshold says little about the ladder.
    """
    samples = np.asarray(samples, dtype=np.int64).ravel()
    counts = np.bincount(ref_comparator_ladder(samples, design.thresholds),
                         minlength=design.levels)
    return {"codes_seen": int((counts > 0).sum()), "codes_total": int(design.levels),
            "code_counts": counts.tolist()}

"""Quantizers by composition: every method of ``make_quantizer`` is its parts assembled by hand,
a quantizer composed by hand trains, and parts that do not go together are one-line errors
naming the config key."""

import numpy as np
import pytest
import torch

from adcforge.errors import ConfigError
from learn.quant import (
    AbsoluteThresholds,
    BitDecoder,
    BitwiseSigmoids,
    CentroidDecoder,
    EmbeddingDecoder,
    FixedLadder,
    GapWindow,
    GumbelSoftmax,
    NoiseWindow,
    OneHotDecoder,
    QuantileThresholds,
    SampleStats,
    StraightThrough,
    ThresholdQuantizer,
    fixed_ladder,
    make_quantizer,
    start_ladder,
)

INPUT_BITS = 10
TOP = 2**INPUT_BITS - 1
ALL_X = torch.arange(0, TOP + 1, dtype=torch.float64)


def _stats(gain=0.6) -> SampleStats:
    rng = np.random.default_rng(0)
    x = np.clip(64 + rng.poisson(rng.uniform(0, 300, 40000)), 0, TOP)
    return SampleStats.from_samples(x, TOP, black=64.0, gain_dn_per_e=gain, read_noise_dn=1.08)


def _by_hand(method, bits, stats, g):
    """The parts ``make_quantizer`` picks for each method, assembled here."""
    levels = 2**bits
    if method in ("hist", "fixed"):
        t = fixed_ladder(method, stats, levels, TOP, [100, 200, 300][:levels - 1])
        return ThresholdQuantizer(stats, INPUT_BITS, FixedLadder(stats, t),
                                  OneHotDecoder(levels), method=method)
    start = start_ladder(stats, levels, TOP, "quantile")
    if method == "learned":
        return ThresholdQuantizer(stats, INPUT_BITS, QuantileThresholds(stats, start),
                                  CentroidDecoder.for_ladder(stats, start),
                                  StraightThrough("normal"), NoiseWindow(stats), method=method)
    if method == "gumbel":
        return ThresholdQuantizer(stats, INPUT_BITS, AbsoluteThresholds(stats, start),
                                  EmbeddingDecoder.for_ladder(stats, start, 3, g),
                                  GumbelSoftmax(), GapWindow(stats), method=method)
    return ThresholdQuantizer(stats, INPUT_BITS, AbsoluteThresholds(stats, start),
                              BitDecoder(bits), BitwiseSigmoids(bits), GapWindow(stats),
                              method=method)


FROM_STRINGS = {
    "learned": dict(threshold_param="quantile", estimator="normal", decoder="centroid"),
    "gumbel": dict(channels=3),
    "bitwise": {},
    "hist": dict(decoder="onehot"),
    "fixed": dict(decoder="onehot", thresholds=[100, 200, 300]),
}


@pytest.mark.parametrize("method", list(FROM_STRINGS))
def test_make_quantizer_is_its_parts_assembled_by_hand(method):
    stats = _stats()
    a = make_quantizer(method, 2, stats, INPUT_BITS, generator=torch.Generator().manual_seed(0),
                       **FROM_STRINGS[method])
    b = _by_hand(method, 2, stats, torch.Generator().manual_seed(0))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.export()[0] == b.export()[0]
    for q in (a, b):  # the hard forward is the comparator ladder and the fixed-point table
        q.eval()
        t, frac, table = q.export()
        codes = (ALL_X[:, None] >= torch.tensor(t, dtype=torch.float64)).sum(1)
        assert torch.equal(q(ALL_X).double(), torch.as_tensor(table[codes] / 2.0**frac))
    a.train(), b.train()
    x = torch.arange(60.0, 500.0, dtype=torch.float64)
    a.generator, b.generator = (torch.Generator().manual_seed(5) for _ in range(2))
    assert torch.equal(a.train_forward(x), b.train_forward(x))


def test_a_quantizer_composed_by_hand_trains_its_thresholds():
    stats = _stats()
    start = start_ladder(stats, 8, TOP, "quantile")
    q = ThresholdQuantizer(stats, INPUT_BITS, QuantileThresholds(stats, start),
                           CentroidDecoder.for_ladder(stats, start), StraightThrough("normal"),
                           NoiseWindow(stats))
    assert q.bits == 3 and q.channels == 1 and q.threshold_parameters() == [
        q.thresholds.log_mass]
    assert q.export()[0] == [int(t) for t in start]  # starts at its start ladder
    before = q.float_thresholds().detach().clone()
    opt = torch.optim.Adam(q.threshold_parameters(), lr=0.05)
    q.train()
    x = torch.arange(60.0, 500.0, dtype=torch.float64)
    target = torch.linspace(0, 1, len(x), dtype=torch.float32)[:, None]
    loss = ((q(x) - target) ** 2).sum()  # the forward is the hard code's decoded value
    loss.backward()
    grad = q.thresholds.log_mass.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(q.float_thresholds().detach(), before)
    t = q.export()[0]
    assert all(a < b for a, b in zip(t, t[1:]))


def _parts(stats, bits=2):
    start = start_ladder(stats, 2**bits, TOP, "quantile")
    return start, AbsoluteThresholds(stats, start)


@pytest.mark.parametrize("build, key", [
    pytest.param(lambda s, st, th: ThresholdQuantizer(
        s, INPUT_BITS, th, EmbeddingDecoder.for_ladder(s, st), BitwiseSigmoids(2),
        GapWindow(s)), "quantizer.decoder", id="bitwise sums with an embedding"),
    pytest.param(lambda s, st, th: ThresholdQuantizer(
        s, INPUT_BITS, th, BitDecoder(2), StraightThrough("box"), GapWindow(s)),
        "quantizer.decoder", id="box STE with the bit decoder"),
    pytest.param(lambda s, st, th: ThresholdQuantizer(
        s, INPUT_BITS, th, OneHotDecoder(8), StraightThrough("box"), GapWindow(s)),
        "quantizer.decoder", id="8-entry decoder for 4 codes"),
    pytest.param(lambda s, st, th: ThresholdQuantizer(
        s, INPUT_BITS, th, BitDecoder(2), BitwiseSigmoids(3), GapWindow(s)),
        "quantizer.bits", id="3-bit sums on 2-bit thresholds"),
    pytest.param(lambda s, st, th: ThresholdQuantizer(
        s, INPUT_BITS, th, OneHotDecoder(4)), "quantizer.estimator",
        id="learned thresholds without an estimator"),
    pytest.param(lambda s, st, th: ThresholdQuantizer(
        s, INPUT_BITS, FixedLadder(s, st), OneHotDecoder(4), StraightThrough("box"),
        GapWindow(s)), "quantizer.estimator", id="an estimator on a fixed ladder"),
    pytest.param(lambda s, st, th: ThresholdQuantizer(
        s, INPUT_BITS, th, OneHotDecoder(4), GumbelSoftmax()), "quantizer.ste_window",
        id="an estimator without a window"),
    pytest.param(lambda s, st, th: StraightThrough("uniform"), "quantizer.estimator",
                 id="unknown density"),
    pytest.param(lambda s, st, th: NoiseWindow(_stats(gain=0.0)), "quantizer.ste_window",
                 id="noise window without the gain"),
])
def test_parts_that_do_not_go_together_are_a_one_line_error_naming_the_key(build, key):
    stats = _stats()
    start, thresholds = _parts(stats)
    with pytest.raises(ConfigError) as e:
        build(stats, start, thresholds)
    assert str(e.value).startswith(key + ":") and "\n" not in str(e.value)

"""Quantizers: every integer sample of the word against the published formulas, exports valid,
straight-through gradients against their analytic form."""

import math

import numpy as np
import pytest
import torch

from adcforge.errors import ConfigError
from learn.quant import (METHODS, SampleStats, bit_table, decode_fixed, export_int_thresholds,
                              lloyd_max, make_quantizer, make_strict)
from learn.ste import heaviside_ste, post_codes, post_round_ste, round_ste

INPUT_BITS = 10
TOP = 2**INPUT_BITS - 1


def _stats(kind: str) -> SampleStats:
    """Histogram of a synthetic sensor: black level 64, shot-noise-like spread."""
    rng = np.random.default_rng(1)
    if kind == "bright":
        x = 64 + rng.poisson(rng.uniform(0, 500, 50000))
    elif kind == "hdr":  # most samples dim, a few very bright (a lamp)
        x = 64 + np.concatenate([rng.poisson(rng.uniform(0, 12, 47000)),
                                 rng.poisson(rng.uniform(100, 900, 3000))])
    else:  # dim: a handful of distinct values
        x = 64 + rng.poisson(3.0, 50000) + rng.integers(-2, 3, 50000)
    return SampleStats.from_samples(np.clip(x, 0, TOP), TOP, black=64.0)


ALL_X = torch.arange(0, TOP + 1, dtype=torch.float64)
CASES = [pytest.param(m, b, k, id=f"{m}, {b} bit, {k} samples")
         for m in METHODS if m != "fp" for b in (1, 2, 3, 4, 8) for k in ("bright", "hdr", "dim")]


def _ladder(bits):
    """The hand-given ladder of method ``fixed`` in the tests: uneven steps over the word."""
    k = np.arange(1, 2**bits)
    return [int(t) for t in (k * TOP) // 2**bits + k % 3]


def _quant(method, bits, stats, **kw):
    g = torch.Generator().manual_seed(0)
    if method == "fixed":
        kw.setdefault("thresholds", _ladder(bits))
    return make_quantizer(method, bits, stats, INPUT_BITS, features=64, generator=g, **kw)


@pytest.mark.parametrize("method, bits, kind", CASES)
def test_export_is_a_valid_ladder_and_hard_forward_matches_it(method, bits, kind):
    q = _quant(method, bits, _stats(kind))
    t, frac, table = q.export()
    assert len(t) == 2**bits - 1
    assert all(1 <= a < b <= TOP for a, b in zip(t, t[1:])) and 1 <= t[0] and t[-1] <= TOP
    codes_ref = np.searchsorted(np.array(t), ALL_X.numpy(), side="right")
    q.eval()
    assert np.array_equal(q.codes(ALL_X).numpy(), codes_ref)
    lo, hi = -(2 ** (q.width - 1)), 2 ** (q.width - 1) - 1
    assert table.min() >= lo and table.max() <= hi and 0 <= frac <= 24
    hard = q(ALL_X).detach().double().numpy()
    assert np.array_equal(hard, table[codes_ref] / 2.0**frac)


def _published_codes(q, x: np.ndarray) -> np.ndarray:
    """The formula each method is named after, in float64 numpy, independent of the module."""
    L = q.levels
    lo, hi = q.lo, q.lo + q.scale
    if q.method in ("learned", "gumbel", "bitwise"):  # Eq. 1: number of thresholds below x
        theta = q.float_thresholds().detach().numpy()
        return (x[:, None] > theta[None]).sum(1)
    if q.method == "uniform":
        return np.clip(np.floor((x - lo) * L / (hi - lo + 1)), 0, L - 1)
    if q.method == "uniform-full":
        return np.floor(x * L / (TOP + 1))
    if q.method == "sqrt":
        return np.clip(np.floor(L * np.sqrt(np.clip(x - lo, 0, None) / (hi - lo + 1))), 0, L - 1)
    if q.method in ("lsq", "lsqplus"):
        s = float(q.step.detach())
        beta = float(q.beta.detach())
        v = (x - q.black) / q.scale
        return np.clip(np.floor((v - beta) / s + 0.5), 0, L - 1)
    if q.method == "fixed":  # the given integer ladder: number of thresholds at or below x
        return (x[:, None] >= np.array(_ladder(q.bits))[None]).sum(1)
    raise AssertionError(q.method)


@pytest.mark.parametrize("method", ["learned", "gumbel", "bitwise", "uniform", "uniform-full",
                                    "sqrt", "lsq", "lsqplus", "fixed"])
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_codes_equal_the_published_formula_on_every_integer(method, bits):
    q = _quant(method, bits, _stats("bright"))  # bright: no threshold collisions at <= 4 bits
    x = ALL_X.numpy()
    q.eval()
    # Thresholds beyond the word (LSQ's initial step can put its top levels above 1023) cannot
    # be represented: the ladder squeezes them under the top. Compare below the first of those.
    theta = q.float_thresholds().detach().numpy()
    exact = np.ceil(theta) if q.inclusive else np.floor(theta) + 1
    t = np.array(q.export()[0])
    moved = np.flatnonzero(t != exact)
    limit = t[moved[0]] if len(moved) else TOP + 1
    assert limit > 600  # only the unreachable top is ever squeezed
    ok = x < limit
    assert np.array_equal(q.codes(ALL_X).numpy()[ok], _published_codes(q, x)[ok])


def test_hist_thresholds_balance_the_bins():
    stats = _stats("bright")
    for bits in (1, 2, 3, 4):
        q = _quant("hist", bits, stats)
        below = np.concatenate([[0.0], stats.cdf])
        for k, t in enumerate(q.export()[0], start=1):
            best = np.min(np.abs(below - k / 2**bits))
            assert abs(below[t] - k / 2**bits) == pytest.approx(best)


def test_lloyd_codes_are_nearest_centroid_and_centroids_are_bin_means():
    stats = _stats("bright")
    theta, c = lloyd_max(stats, 8)
    v = stats.values.astype(float)
    codes = np.searchsorted(theta, v, side="right")
    nearest = np.argmin(np.abs(v[:, None] - c[None]), axis=1)
    in_range = (v >= stats.lo) & (v <= stats.hi)
    assert np.array_equal(codes[in_range], nearest[in_range])
    w = stats.counts
    for k in range(8):
        sel = codes == k
        if w[sel].sum():
            assert c[k] == pytest.approx((v[sel] * w[sel]).sum() / w[sel].sum(), rel=1e-6)


@pytest.mark.parametrize("method", ["learned", "gumbel"])
@pytest.mark.parametrize("decoder", ["embedding", "onehot", "centroid"])
def test_training_forward_of_threshold_ste_is_the_decoded_code(method, decoder):
    q = _quant(method, 3, _stats("bright"), decoder=decoder, channels=3)
    q.train()
    _, frac, table = q.export()
    ref = table[q.codes(ALL_X).numpy()] / 2.0**frac
    if method == "learned":
        got = q.train_forward(ALL_X).detach().numpy()
        assert np.allclose(got, ref, atol=1e-12)
    else:  # without noise the Gumbel logits' argmax is the ladder code
        th = q.thresholds_u()
        logits = q.estimator.logits(q.to_u(ALL_X), th, q.ste_width(th))
        assert np.array_equal(logits.argmax(-1).numpy(), q.codes(ALL_X).numpy())


def test_bitwise_soft_bits_become_the_code_bits_when_cold():
    q = _quant("bitwise", 3, _stats("bright"))
    q.train()
    q.temperature = 1e-6
    soft = q.train_forward(ALL_X).detach().numpy()
    hard = bit_table(3)[q.codes(ALL_X).numpy()]
    assert np.allclose(soft, hard, atol=1e-6)
    q.temperature = 1.0  # warm: soft values strictly between
    warm = q.train_forward(ALL_X).detach().numpy()
    assert np.abs(warm - hard).max() > 0.05


def test_heaviside_ste_gradient_is_the_box():
    u = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.25, 0.999, 1.0, 2.0], requires_grad=True)
    y = heaviside_ste(u, 1.0)
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    y.sum().backward()
    assert u.grad.tolist() == [0, 0, 0.5, 0.5, 0.5, 0.5, 0, 0]


def test_round_ste_rounds_half_up_with_identity_gradient():
    x = torch.tensor([-1.5, -0.5, 0.49, 0.5, 2.5], requires_grad=True)
    y = round_ste(x)
    assert y.tolist() == [-1, 0, 0, 1, 3]
    (y * torch.arange(5.0)).sum().backward()
    assert x.grad.tolist() == [0, 1, 2, 3, 4]


def test_learned_threshold_gradient_matches_the_analytic_ste():
    q = _quant("learned", 2, _stats("bright"))
    q.train()
    x = torch.arange(60.0, 600.0, 1.0, dtype=torch.float64)
    w_out = torch.randn(len(x), 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    (q.train_forward(x) * w_out).sum().backward()
    # analytic: dL/dθ_i = -sum_x w(x) (E[i+1] - E[i]) box(u - θ_i) / (2 width_i), θ in u units
    th = q.thresholds_u().detach()
    width = q.ste_width(th)
    from learn.quant import fake_quant_table
    e = fake_quant_table(q.table().detach(), q.width)
    u = q.to_u(x)
    box = ((u[:, None] - th).abs() < width).double() / (2 * width)
    d_theta = -(w_out * box * (e[1:, 0] - e[:-1, 0])).sum(0)
    # θ = base + cumsum(softplus(gaps)): dθ_i/dbase = 1, dθ_i/dg_j = sigmoid(g_j) for j < i
    base, gaps = q.thresholds.base, q.thresholds.gaps
    assert float(base.grad[0]) == pytest.approx(float(d_theta.sum()), rel=1e-9, abs=1e-12)
    sig = torch.sigmoid(gaps.detach())
    for j in range(len(sig)):
        assert float(gaps.grad[j]) == pytest.approx(float(sig[j] * d_theta[j + 1:].sum()),
                                                       rel=1e-9, abs=1e-12)
    assert d_theta.abs().sum() > 0  # the test can fail: quantile thresholds see samples


def test_lsq_step_gradient_is_the_papers():
    q = _quant("lsq", 2, _stats("bright"))
    q.train()
    x = torch.arange(0.0, TOP + 1.0, dtype=torch.float64)
    q.train_forward(x).sum().backward()
    s = float(q.step.detach())
    v = (x.numpy() - q.black) / q.scale
    r = v / s
    qp = 3
    # Esser et al. Eq. 3 (Q_N = 0): -v/s + round(v/s) inside, Q_P above, 0 below
    dv = np.where(r <= 0, 0.0, np.where(r >= qp, qp, -r + np.floor(r + 0.5)))
    assert float(q.step.grad) == pytest.approx(dv.sum() / math.sqrt(64 * qp), rel=1e-9)


def test_post_round_levels_and_gradient():
    u = torch.tensor([1.3, 1.0, -0.72, 0.5, 0.3, 0.09, 0.05, -0.06, 2.0], requires_grad=True)
    sign, n = post_codes(u, 7)
    assert sign.tolist() == [1, 1, -1, 1, 1, 1, 0, 0, 1]
    assert n.tolist() == [0, 0, 1, 2, 3, 7, 0, 0, 0]
    y = post_round_ste(u, 7)
    assert np.allclose(y.detach().numpy(),
                       [1, 1, -2**-0.5, 0.5, 2**-1.5, 2**-3.5, 0, 0, 1], atol=1e-7)
    y.sum().backward()
    assert u.grad.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0]  # clipped above √2^(1/2)


@pytest.mark.parametrize("seed", range(20))
def test_make_strict_gives_increasing_thresholds_in_range(seed):
    rng = np.random.default_rng(seed)
    n, top = int(rng.integers(1, 60)), int(rng.integers(60, 200))
    t = make_strict(rng.integers(-5, top + 5, n), top)
    assert np.all(np.diff(t) > 0) and t[0] >= 1 and t[-1] <= top
    already = np.sort(rng.choice(np.arange(1, top + 1), n, replace=False))
    assert np.array_equal(make_strict(already, top), already)  # strict input is kept


def test_export_rounding_conventions():
    # exclusive: x > 3.0 ⇔ x >= 4; x > 3.2 ⇔ x >= 4. inclusive: x >= 3.0 ⇔ x >= 3
    assert export_int_thresholds([3.0, 3.2, 7.9], False, 15).tolist() == [4, 5, 8]
    assert export_int_thresholds([3.0, 3.2, 7.9], True, 15).tolist() == [3, 4, 8]


def test_decode_fixed_uses_the_largest_fraction_that_fits():
    f, ints = decode_fixed(torch.tensor([[0.0], [0.49], [-1.0]], dtype=torch.float64), 8)
    assert f == 6 and ints.flatten().tolist() == [0, 31, -64]
    f, ints = decode_fixed(torch.tensor([[0.0], [1.0]], dtype=torch.float64), 8)
    assert f == 6 and ints.flatten().tolist() == [0, 64]


@pytest.mark.parametrize("kw, text", [
    pytest.param(dict(method="nope", bits=2), "unknown method 'nope'", id="unknown method"),
    pytest.param(dict(method="learned", bits=9), "allowed range is 1..8", id="9 bits"),
    pytest.param(dict(method="learned", bits=0), "allowed range is 1..8", id="0 bits"),
    pytest.param(dict(method="learned", bits=5, decoder="onehot"), "at most 16",
                 id="onehot 5 bits"),
])
def test_make_quantizer_rejects_bad_arguments(kw, text):
    with pytest.raises(ConfigError, match=text):
        make_quantizer(kw.pop("method"), kw.pop("bits"), _stats("bright"), INPUT_BITS, **kw)


@pytest.mark.parametrize("method", ["learned", "gumbel", "bitwise"])
@pytest.mark.parametrize("bits", [1, 3])
def test_relative_threshold_parameterisation_starts_at_the_same_ladder(method, bits):
    stats = _stats("hdr")
    a = _quant(method, bits, stats)
    r = _quant(method, bits, stats, threshold_param="relative")
    assert r.export()[0] == a.export()[0]
    assert np.allclose(r.float_thresholds().detach().numpy(),
                       a.float_thresholds().detach().numpy())
    assert np.array_equal(r.codes(ALL_X).numpy(), _published_codes(r, ALL_X.numpy()))
    r.train()
    r.temperature = 0.5
    r.train_forward(torch.arange(60.0, 200.0, dtype=torch.float64)).sum().backward()
    assert r.thresholds.base.grad is not None and torch.isfinite(r.thresholds.base.grad).all()
    with pytest.raises(ConfigError, match="threshold_param"):
        _quant(method, bits, stats, threshold_param="sideways")


# -- the sensor-noise straight-through window ------------------------------------------------
def _sensor_stats(x, black=64.0, gain=0.6, read_noise_dn=1.08) -> SampleStats:
    return SampleStats.from_samples(np.clip(x, 0, TOP), TOP, black, gain, read_noise_dn)


@pytest.mark.parametrize("photons", [0.0, 20.0, 200.0, 2000.0])
def test_noise_dn_is_the_temporal_noise_of_the_simulated_sensor(photons):
    # independent reference: the EMVA 1288 photon-transfer measurement on the simulated sensor
    # (two flat fields, temporal variance = var(difference) / 2, which removes the fixed patterns)
    from sim import load_sensor

    sensor = load_sensor("phone", seed=3, width=256, height=256, cfa=None,
                         quantum_efficiency=0.6)
    c = sensor.config
    a = sensor.capture(photons).astype(np.float64)
    b = sensor.capture(photons).astype(np.float64)
    mean, var = (a.mean() + b.mean()) / 2, np.var(a - b) / 2
    stats = SampleStats.from_samples(a, sensor.max_dn, c.black_level_dn,
                                     c.conversion_gain_dn_per_e,
                                     c.read_noise_e * c.conversion_gain_dn_per_e)
    assert stats.noise_dn(mean) ** 2 == pytest.approx(var, rel=0.03)


def test_auto_window_is_the_sensor_noise_for_learned_and_the_gap_for_soft_methods():
    rng = np.random.default_rng(0)
    stats = _sensor_stats(64 + rng.poisson(rng.uniform(0, 300, 40000)))
    assert _quant("learned", 2, stats).window.name == "noise"
    assert _quant("gumbel", 2, stats).window.name == "gap"
    assert _quant("bitwise", 2, stats).window.name == "gap"
    assert _quant("learned", 2, _stats("bright")).window.name == "gap"  # no gain known
    with pytest.raises(ConfigError, match="conversion gain"):
        _quant("learned", 2, _stats("bright"), ste_window="noise")
    with pytest.raises(ConfigError, match="ste_window"):
        _quant("learned", 2, stats, ste_window="wide")


@pytest.mark.parametrize("param", ["absolute", "quantile"])
def test_noise_window_gradient_is_the_box_of_the_sensor_noise_at_each_threshold(param):
    rng = np.random.default_rng(0)
    stats = _sensor_stats(64 + rng.poisson(rng.uniform(0, 300, 40000)))
    q = _quant("learned", 3, stats, threshold_param=param)
    q.train()
    x = torch.arange(60.0, 400.0, 1.0, dtype=torch.float64)
    w_out = torch.randn(len(x), 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    (q.train_forward(x) * w_out).sum().backward()
    theta = q.float_thresholds()
    # analytic, in DN: dL/dθ_i = -sum_x w(x) (E[i+1] - E[i]) 1[|x - θ_i| < s_i] / (2 s_i) with
    # s_i = sqrt(read² + 1/12 + K (θ_i - black)) DN, at least 1 DN
    th = theta.detach().numpy()
    s = np.maximum(np.sqrt(1.08**2 + 1 / 12 + 0.6 * np.maximum(th - 64.0, 0)), 1.0)
    from learn.quant import fake_quant_table
    e = fake_quant_table(q.table().detach(), q.width)[:, 0].numpy()
    box = (np.abs(x.numpy()[:, None] - th) < s) / (2 * s)
    d_theta = torch.as_tensor(-(w_out.numpy() * box * (e[1:] - e[:-1])).sum(0))
    params = q.threshold_parameters()
    for p in params:  # chain rule through the parameterisation: grad = (dθ/dp)ᵀ dL/dθ
        (expect,) = torch.autograd.grad(q.float_thresholds(), p, d_theta)
        assert torch.allclose(p.grad, expect, rtol=1e-9, atol=1e-12)
    assert d_theta.abs().sum() > 0


# -- the quantile parameterisation -------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bright", "hdr", "dim"])
@pytest.mark.parametrize("bits", [1, 3])
def test_quantile_parameterisation_starts_at_the_same_ladder_and_follows_the_cdf(kind, bits):
    stats = _stats(kind)
    a = _quant("learned", bits, stats)
    q = _quant("learned", bits, stats, threshold_param="quantile")
    seen = ALL_X[torch.as_tensor(stats.counts[:TOP + 1] > 0)]  # same codes on every sample seen
    assert torch.equal(q.codes(seen), a.codes(seen))
    below = np.concatenate([[0.0], stats.cdf])  # below[v] = P(x < v)
    rng = np.random.default_rng(bits)
    for _ in range(20):  # any logits: a strictly increasing ladder that splits the samples at p
        with torch.no_grad():
            q.thresholds.log_mass.copy_(torch.as_tensor(rng.normal(0, 2, q.levels)))
        p = np.cumsum(torch.softmax(q.thresholds.log_mass.detach(), 0).numpy())[:-1]
        t = np.array(q.export()[0])
        assert np.all(np.diff(t) > 0)
        inside = t == np.floor(q.float_thresholds().detach().numpy()) + 1  # not moved apart
        assert inside.any()
        v = np.searchsorted(below, p, side="right") - 1  # the sample value that straddles p
        split = below[t]  # the fraction of samples below the exported threshold
        assert np.all(((split == below[v]) | (split == below[v + 1]))[inside])
    q.train()
    q.train_forward(torch.arange(60.0, 200.0, dtype=torch.float64)).sum().backward()
    log_mass = q.thresholds.log_mass
    assert q.threshold_parameters() == [log_mass] and torch.isfinite(log_mass.grad).all()


# -- the full-precision reference --------------------------------------------------------------
def test_fp_decodes_every_sample_value_through_its_own_table_entry():
    stats = _stats("hdr")
    fp = _quant("fp", 2, stats, channels=3)
    table = fp.table().detach()
    assert table.shape == (TOP + 1, 3) and not fp.exportable
    assert torch.equal(fp(ALL_X).double(), table[ALL_X.long()].float().double())
    below = np.concatenate([[0.0], stats.cdf])
    rank = (below[:-1] + below[1:]) / 2  # the histogram-equalised value of each sample value
    assert np.allclose(table[:, 0].numpy(), rank[:TOP + 1])
    fp(ALL_X).sum().backward()
    assert fp.decoder.weight.grad is not None  # trainable
    linear = _quant("fp", 2, stats, decoder="centroid")
    assert torch.allclose(linear(ALL_X)[:, 0].double(), linear.to_u(ALL_X), atol=1e-6)
    with pytest.raises(ConfigError, match="onehot"):
        _quant("fp", 2, stats, decoder="onehot")


@pytest.mark.parametrize("thresholds, text", [
    pytest.param([10, 20], "3 thresholds are needed for 2 bits, got 2", id="too few"),
    pytest.param([10, 20, 20], r"thresholds\[2\]: got 20; thresholds must be strictly increasing",
                 id="not increasing"),
    pytest.param([0, 20, 30], r"thresholds\[0\]: got 0; allowed range is \[1, 1023\]", id="zero"),
    pytest.param([10, 20, 1024], r"thresholds\[2\]: got 1024; allowed range is \[1, 1023\]",
                 id="above the word"),
    pytest.param([10, 2.5, 30], r"thresholds\[1\]: got 2.5; expected an integer", id="float"),
    pytest.param(None, "needs a list of 3 integer thresholds", id="missing"),
])
def test_fixed_ladder_errors_name_the_entry(thresholds, text):
    with pytest.raises(ConfigError, match=text):
        _quant("fixed", 2, _stats("bright"), thresholds=thresholds)


def test_thresholds_key_goes_with_method_fixed_only():
    from learn.config import load_config

    cfg = load_config({"quantizer": {"method": "fixed", "bits": 1, "thresholds": [300]}})
    assert cfg["quantizer"]["thresholds"] == [300]
    with pytest.raises(ConfigError, match="goes with method 'fixed' only"):
        load_config({"quantizer": {"method": "hist", "thresholds": [300, 301, 302]}})
    with pytest.raises(ConfigError, match="needs key 'quantizer.thresholds': a list of 1 incr"):
        load_config({"quantizer": {"method": "fixed", "bits": 1}})
    with pytest.raises(ConfigError, match="strictly increasing"):
        load_config({"quantizer": {"method": "fixed", "bits": 2, "thresholds": [5, 4, 6]}})

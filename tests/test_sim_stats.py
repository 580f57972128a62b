"""Statistics of the numpy sensor model against independent references.

Tolerances are stated as multiples of the estimator's standard error (SE); every test is seeded.
"""

import math

import numpy as np
import pytest
from scipy import stats

from sim import STAGES, load_sensor
from sim import stages as st


def quiet(**kw):
    """A 16-bit sensor with K = 1 DN/e⁻, η = 1 and every noise source off unless given."""
    params = dict(width=256, height=256, quantum_efficiency=1.0, conversion_gain_dn_per_e=1.0,
                  read_noise_e=0.0, dark_current_e_per_s=0.0, dsnu_e=0.0, prnu_percent=0.0,
                  black_level_dn=100.0, adc_bits=16, full_well_e=1e6, exposure_s=1.0,
                  temperature_c=25.0, dark_current_ref_temp_c=25.0)
    params.update(kw)
    seed = params.pop("seed", 0)
    return load_sensor("machine-vision", seed=seed, **params)


def test_stage_order_is_the_issue_order():
    assert STAGES == ("photoelectrons", "dark_current", "shot_noise", "dsnu", "full_well",
                      "read_noise", "conversion_gain", "gain_nonlinearity", "black_level", "adc")


@pytest.mark.parametrize("lam", [0.3, 4.0, 25.0, 900.0, 40000.0])
def test_shot_noise_mean_equals_variance(lam):
    n = 400_000
    x = st.apply_shot_noise(np.full(n, lam), np.random.default_rng(int(lam * 10)))
    se_mean = math.sqrt(lam / n)
    se_var = lam * math.sqrt(2 / n + 1 / (n * lam))
    assert abs(x.mean() - lam) < 5 * se_mean
    assert abs(x.var() - lam) < 5 * se_var
    assert np.all(x == np.round(x))


@pytest.mark.parametrize("lam", [0.7, 6.0, 60.0])
def test_shot_noise_distribution_is_poisson_chi_square(lam):
    n = 200_000
    x = st.apply_shot_noise(np.full(n, lam), np.random.default_rng(7)).astype(int)
    k = np.arange(int(lam + 6 * math.sqrt(lam) + 6))
    expected = stats.poisson.pmf(k, lam) * n
    keep = expected > 5
    observed = np.bincount(x, minlength=len(k))[: len(k)]
    chi2 = float(((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4


def test_sensor_flat_field_counts_are_poisson_in_dn():
    # K = 1, η = 1, no other noise: DN − black is the Poisson electron count itself
    s = quiet()
    frames = np.stack([s.capture(50.0) for _ in range(4)]).astype(float) - 100
    n = frames.size
    assert abs(frames.mean() - 50) < 5 * math.sqrt(50 / n)
    assert abs(frames.var() - 50) < 5 * 50 * math.sqrt(2 / n)


def test_read_noise_variance():
    s = quiet(read_noise_e=3.0, black_level_dn=1000.0)
    frames = np.stack([s.capture(0.0) for _ in range(4)]).astype(float)
    want = 9.0 + 1 / 12
    assert abs(frames.var() - want) < 5 * want * math.sqrt(2 / frames.size)
    assert abs(frames.mean() - 1000.0) < 5 * math.sqrt(want / frames.size)


def test_quantization_noise_is_one_twelfth_dn2():
    # the ADC alone: uniform analog input, error variance 1/12 DN², mean 0
    x = np.random.default_rng(1).uniform(10.0, 4000.0, 1_000_000)
    err = st.apply_adc(x, 65535).astype(float) - x
    assert abs(err.mean()) < 5 * math.sqrt(1 / 12 / x.size)
    assert err.var() == pytest.approx(1 / 12, rel=0.01)
    # through the sensor: σ_read·K = 2 DN of Gaussian noise plus 1/12 DN² of rounding
    s = quiet(width=1024, height=1024, read_noise_e=20.0, conversion_gain_dn_per_e=0.1,
              black_level_dn=500.0)
    frame = s.capture(0.0).astype(float)
    se = 4.0833 * math.sqrt(2 / frame.size)
    assert abs(frame.var() - (4.0 + 1 / 12)) < 5 * se
    assert frame.var() - 4.0 > 8 * se  # the 1/12 is really there


def test_dark_current_doubles_per_doubling_temperature_and_scales_with_time():
    def dark_mean(temp, t):
        s = quiet(dark_current_e_per_s=100.0, dark_current_ref_temp_c=25.0,
                  dark_current_doubling_c=7.0, temperature_c=temp)
        f = s.capture(0.0, exposure_s=t).astype(float) - 100
        return f.mean(), f.var(), f.size

    for temp, t, want in [(25.0, 1.0, 100.0), (32.0, 1.0, 200.0), (18.0, 1.0, 50.0),
                          (39.0, 1.0, 400.0), (25.0, 2.0, 200.0), (25.0, 0.25, 25.0)]:
        mean, var, n = dark_mean(temp, t)
        assert abs(mean - want) < 5 * math.sqrt(want / n), (temp, t)
        assert abs(var - want) < 5 * want * math.sqrt(2 / n), (temp, t)  # dark shot noise


def test_full_well_clipping_and_adc_clipping():
    s = quiet(full_well_e=30000.0, conversion_gain_dn_per_e=0.1, black_level_dn=64.0)
    frame = s.capture(1e6)
    assert np.all(frame == 3064)  # 30000 e⁻ × 0.1 + 64, exactly: the well is full everywhere
    noisy = quiet(full_well_e=30000.0, conversion_gain_dn_per_e=0.1, black_level_dn=64.0,
                  read_noise_e=10.0)
    f = noisy.capture(1e6).astype(float)
    assert abs(f.mean() - 3064) < 5 * math.sqrt(1.0833 / f.size)
    assert f.var() == pytest.approx(1.0 + 1 / 12, rel=0.05)  # only read noise survives
    adc = quiet(full_well_e=30000.0, conversion_gain_dn_per_e=1.0, adc_bits=12)
    assert np.all(adc.capture(1e6) == 4095)
    assert np.all(adc.capture(0.0) == 100)


def test_fixed_patterns_are_fixed_and_temporal_noise_is_fresh():
    s = quiet(width=64, height=64, prnu_percent=5.0, dsnu_e=20.0, read_noise_e=2.0)
    prnu = s.prnu_map.copy()
    a, b = s.capture(2000.0), s.capture(2000.0)
    assert not np.array_equal(a, b)
    assert np.array_equal(prnu, s.prnu_map)
    avg = np.mean([s.capture(2000.0).astype(float) for _ in range(40)], axis=0)
    expected = 2000.0 * s.prnu_map + s.dsnu_map + 100
    assert np.corrcoef(avg.ravel(), expected.ravel())[0, 1] > 0.95
    # identical silicon and identical noise sequence from the same seed, other silicon otherwise
    kw = dict(width=64, height=64, prnu_percent=5.0, dsnu_e=20.0, read_noise_e=2.0)
    twin_a, twin_b, other = quiet(**kw), quiet(**kw), quiet(seed=1, **kw)
    assert np.array_equal(twin_a.capture(2000.0), twin_b.capture(2000.0))
    assert np.array_equal(twin_a.capture(2000.0), twin_b.capture(2000.0))
    assert not np.allclose(other.prnu_map, s.prnu_map)


def test_prnu_and_dsnu_maps_have_the_configured_spread():
    s = quiet(width=512, height=512, prnu_percent=2.0, dsnu_e=3.0)
    se = math.sqrt(2 / s.prnu_map.size)
    assert s.prnu_map.std() == pytest.approx(0.02, rel=5 * se)
    assert s.dsnu_map.std() == pytest.approx(3.0, rel=5 * se)
    # switching on another pattern does not change these maps
    t = quiet(width=512, height=512, prnu_percent=2.0, dsnu_e=3.0, row_fpn_e=1.0)
    assert np.array_equal(s.prnu_map, t.prnu_map) and np.array_equal(s.dsnu_map, t.dsnu_map)


def test_bayer_channels_follow_their_quantum_efficiency():
    s = load_sensor("phone", width=256, height=256, prnu_percent=0.0, dsnu_e=0.0)
    f = s.capture(2000.0).astype(float) - s.config.black_level_dn
    r, g1, g2, b = f[0::2, 0::2], f[0::2, 1::2], f[1::2, 0::2], f[1::2, 1::2]
    k = s.config.conversion_gain_dn_per_e
    for plane, qe in [(r, 0.45), (g1, 0.60), (g2, 0.60), (b, 0.50)]:
        want = 2000.0 * qe * k
        assert abs(plane.mean() - want) < 5 * math.sqrt(want * k / plane.size) + 0.01


def test_row_and_column_fixed_pattern():
    s = quiet(width=512, height=512, row_fpn_e=4.0, read_noise_e=1.0, black_level_dn=1000.0)
    f = s.capture(0.0).astype(float)
    row_means = f.mean(axis=1)
    col_means = f.mean(axis=0)
    assert row_means.std() == pytest.approx(4.0, rel=0.2)  # 512 rows: SE of the std ≈ 3 %
    assert col_means.std() < 0.2
    assert np.corrcoef(row_means, s.row_offsets.ravel())[0, 1] > 0.99
    c = quiet(width=512, height=512, column_fpn_e=4.0, black_level_dn=1000.0)
    fc = c.capture(0.0).astype(float)
    assert fc.mean(axis=0).std() == pytest.approx(4.0, rel=0.2)
    assert np.corrcoef(fc.mean(axis=0), c.column_offsets)[0, 1] > 0.99


def test_hot_pixels():
    s = quiet(width=512, height=512, hot_pixel_fraction=0.01, hot_pixel_dark_current_e_per_s=400.0,
              dark_current_e_per_s=1.0)
    frac = s.hot_mask.mean()
    assert abs(frac - 0.01) < 5 * math.sqrt(0.01 * 0.99 / s.hot_mask.size)
    f = s.capture(0.0).astype(float) - 100
    assert f[s.hot_mask].mean() == pytest.approx(400.0, rel=0.02)
    assert f[~s.hot_mask].mean() == pytest.approx(1.0, rel=0.02)


def test_comparator_offsets_set_the_code_widths():
    rng = np.random.default_rng(0)
    thresholds = np.sort(np.arange(255) + 0.5 + rng.normal(0, 0.2, 255))
    x = np.linspace(-1, 256, 2_000_001)
    codes = st.apply_adc(x, 255, thresholds)
    widths = np.bincount(codes, minlength=256)[1:-1] * (x[1] - x[0])
    assert np.allclose(widths, np.diff(thresholds), atol=2e-3)
    # without offsets the thresholds reduce to rounding
    nominal = np.arange(255) + 0.5
    y = np.random.default_rng(1).uniform(0, 255, 100_000)
    y = y[np.abs(y - np.round(y)) != 0.5]
    assert np.array_equal(st.apply_adc(y, 255, nominal), st.apply_adc(y, 255))
    # in the sensor: offsets are fixed per instance, codes stay monotone in the input
    s = quiet(comparator_offset_dn=0.3, adc_bits=8, black_level_dn=0.0)
    assert s.thresholds.shape == (255,) and np.all(np.diff(s.thresholds) >= 0)


def test_gain_nonlinearity_compresses_towards_full_scale():
    y = st.apply_gain_nonlinearity(np.array([0.0, 2000.0, 4095.0]), 5.0, 4095)
    assert y[0] == 0
    assert y[2] == pytest.approx(4095 * 0.95)
    assert y[1] == pytest.approx(2000 * (1 - 0.05 * 2000 / 4095))
    assert np.array_equal(st.apply_gain_nonlinearity(np.array([3.0]), 0.0, 4095), [3.0])


def test_stages_are_pure():
    x = np.full((4, 4), 10.0)
    before = x.copy()
    rng = np.random.default_rng(0)
    for out in (st.apply_photoelectrons(x, 0.5), st.apply_dark_current(x, 1.0, 1.0),
                st.apply_shot_noise(x, rng), st.apply_dsnu(x, 1.0), st.apply_full_well(x, 5.0),
                st.apply_read_noise(x, 1.0, rng), st.apply_conversion_gain(x, 2.0),
                st.apply_gain_nonlinearity(x, 1.0, 100), st.apply_black_level(x, 3.0),
                st.apply_adc(x, 255)):
        assert out is not x
    assert np.array_equal(x, before)


def test_capture_equals_composed_stages_and_ignores_thread_count():
    s = load_sensor("machine-vision", width=64, height=64, row_fpn_e=1.0, column_fpn_e=1.0,
                    hot_pixel_fraction=0.01, hot_pixel_dark_current_e_per_s=100.0,
                    gain_nonlinearity_percent=2.0, comparator_offset_dn=0.2)
    scene = np.random.default_rng(3).uniform(0, 40000, (64, 64))
    fused = s._fused(scene, 0.01, np.random.default_rng(5), slice(None))
    composed = s.run_stages(scene, 0.01, np.random.default_rng(5))
    assert list(composed) == list(STAGES)
    assert np.array_equal(fused, composed["adc"])
    big1 = load_sensor("machine-vision", width=512, height=512, seed=4)
    big2 = load_sensor("machine-vision", width=512, height=512, seed=4)
    assert np.array_equal(big1.capture(300.0, threads=1), big2.capture(300.0, threads=2))


def test_capture_rejects_bad_photons():
    s = quiet(width=8, height=8)
    with pytest.raises(ValueError, match=r"\(height, width\) = \(8, 8\)"):
        s.capture(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=">= 0"):
        s.capture(-1.0)


def test_gaussian_fast_mode_keeps_mean_and_variance_and_is_exact_below():
    s = quiet(width=512, height=512, poisson_gaussian_above_e=100.0)
    f = s.capture(2000.0).astype(float) - 100
    n = f.size
    assert abs(f.mean() - 2000) < 5 * math.sqrt(2000 / n)
    assert abs(f.var() - 2000) < 5 * 2000 * math.sqrt(2 / n)
    low = s.capture(3.0).astype(float) - 100  # below the threshold: exact Poisson
    assert abs(np.mean(low == 0) - math.exp(-3)) < 5 * math.sqrt(0.05 * 0.95 / n)


@pytest.mark.parametrize("sigma", [0.05, 0.3, 2.0, 10.0], ids=lambda s: f"offset {s} DN rms")
def test_threshold_table_counts_exactly_like_searchsorted(sigma):
    rng = np.random.default_rng(11)
    t = np.sort(np.arange(4095) + 0.5 + rng.normal(0, sigma, 4095))
    x = np.concatenate([rng.uniform(-60, 4200, 200_000), t, np.nextafter(t, -np.inf),
                        np.arange(-3, 4100, 0.5)])
    table = st.ThresholdTable(t)
    assert np.array_equal(table.count(x), np.searchsorted(t, x, side="right"))

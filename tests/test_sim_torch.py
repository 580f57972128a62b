"""The torch backend: same fixed patterns and the same statistics as the numpy reference."""

import math

import numpy as np
import pytest
import torch

from sim import load_sensor


def test_torch_capture_shape_dtype_and_integer_values():
    s = load_sensor("phone", width=8, height=8)
    ts = s.torch("cpu")
    out = ts.capture(torch.full((256, 8, 8), 300.0), generator=torch.Generator().manual_seed(0))
    assert out.shape == (256, 8, 8) and out.dtype == torch.float32
    assert torch.all(out == out.round()) and out.min() >= 0 and out.max() <= s.max_dn
    assert (ts.adc_bits, ts.max_dn, ts.width, ts.height) == (12, 4095, 8, 8)
    out2 = ts.capture(torch.full((2, 3, 8, 8), 300.0))  # any leading dimensions
    assert out2.shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"\[\.\.\., 8, 8\]"):
        ts.capture(torch.zeros(4, 7, 8))


def test_torch_uses_the_numpy_sensors_fixed_patterns():
    s = load_sensor("machine-vision", width=32, height=32, prnu_percent=3.0, dsnu_e=5.0,
                    row_fpn_e=1.0, column_fpn_e=2.0, hot_pixel_fraction=0.01,
                    hot_pixel_dark_current_e_per_s=1000.0)
    ts = s.torch()
    assert np.allclose(ts.response_map.numpy(), s.response_map, rtol=1e-6)
    assert np.allclose(ts.dsnu_map.numpy(), s.dsnu_map, rtol=1e-6, atol=1e-5)
    assert np.allclose(ts.dark_map.numpy(), s.dark_map, rtol=1e-6)
    assert np.allclose(ts.row_offsets.numpy(), s.row_offsets, rtol=1e-6)
    assert np.allclose(ts.column_offsets.numpy(), s.column_offsets, rtol=1e-6)


def test_torch_generator_makes_it_reproducible():
    ts = load_sensor("scientific", width=16, height=16).torch()
    x = torch.full((8, 16, 16), 100.0)
    a = ts.capture(x, generator=torch.Generator().manual_seed(5))
    b = ts.capture(x, generator=torch.Generator().manual_seed(5))
    c = ts.capture(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # without a generator: the backend's own, seeded from the sensor seed, fresh each call
    d, e = ts.capture(x), ts.capture(x)
    assert not torch.equal(d, e)


@pytest.mark.parametrize("preset, photons", [
    pytest.param("machine-vision", 3000.0, id="machine-vision mid"),
    pytest.param("scientific", 20.0, id="scientific low light"),
    pytest.param("phone", 1500.0, id="phone bayer"),
])
def test_torch_matches_numpy_statistics_per_pixel_mean_and_variance(preset, photons):
    s = load_sensor(preset, width=64, height=64)
    frames_np = np.stack([s.capture(photons) for _ in range(64)]).astype(np.float64)
    ts = s.torch()
    frames_t = ts.capture(torch.full((64, 64, 64), photons),
                          generator=torch.Generator().manual_seed(1)).double().numpy()
    # per-pixel means agree (fixed patterns are the same) within the temporal noise
    temporal_var = frames_np.var(axis=0, ddof=1).mean()
    diff = frames_np.mean(axis=0) - frames_t.mean(axis=0)
    se = math.sqrt(2 * temporal_var / 64)
    assert abs(diff.mean()) < 5 * se / 64  # 4096 pixels averaged
    assert diff.std() < 1.3 * se
    # temporal variances agree
    v_np = frames_np.var(axis=0, ddof=1).mean()
    v_t = frames_t.var(axis=0, ddof=1).mean()
    assert v_t == pytest.approx(v_np, rel=0.05)


def test_torch_full_well_black_level_and_clipping():
    s = load_sensor("machine-vision", width=16, height=16, read_noise_e=0.0, dsnu_e=0.0)
    ts = s.torch()
    out = ts.capture(torch.full((4, 16, 16), 1e7))
    assert torch.all(out == round(32500 * 0.12 + 32))
    dark = ts.capture(torch.zeros((4, 16, 16)), exposure_s=1e-6)
    assert torch.all(dark == 32)


def test_torch_comparator_offsets_and_nonlinearity_match_numpy_stage():
    s = load_sensor("machine-vision", width=16, height=16, comparator_offset_dn=0.3,
                    gain_nonlinearity_percent=3.0, read_noise_e=0.0, dsnu_e=0.0,
                    prnu_percent=0.0, dark_current_e_per_s=0.0)
    ts = s.torch()
    x = torch.full((64, 16, 16), 20000.0)
    dn_t = ts.capture(x, generator=torch.Generator().manual_seed(0)).double().mean().item()
    dn_n = np.mean([s.capture(20000.0) for _ in range(64)])
    mean_e = 20000 * 0.76
    se = math.sqrt(mean_e) * 0.12 / math.sqrt(64 * 256)  # SE of one mean, DN
    assert dn_t == pytest.approx(dn_n, abs=5 * math.sqrt(2) * se)
    linear = mean_e * 0.12
    assert dn_t == pytest.approx(linear * (1 - 0.03 * linear / 4095) + 32, abs=5 * se + 0.05)


def test_torch_fast_mode_mean_and_variance():
    s = load_sensor("machine-vision", width=64, height=64, poisson_gaussian_above_e=50.0,
                    prnu_percent=0.0, dsnu_e=0.0, read_noise_e=0.0, dark_current_e_per_s=0.0,
                    conversion_gain_dn_per_e=1.0, adc_bits=16)
    out = s.torch().capture(torch.full((64, 64, 64), 1000.0 / 0.76),
                            generator=torch.Generator().manual_seed(2)).double() - 32
    n = out.numel()
    assert abs(out.mean().item() - 1000) < 5 * math.sqrt(1000 / n)
    assert abs(out.var().item() - 1000) < 5 * 1000 * math.sqrt(2 / n)


def test_torch_batches_are_fast_enough_shapes():
    # the training shapes of learn/: one call each, correct shapes (no timing asserted)
    ts = load_sensor("phone", width=8, height=8).torch()
    assert ts.capture(torch.rand(256, 8, 8) * 100).shape == (256, 8, 8)
    ts64 = load_sensor("machine-vision", width=64, height=64).torch()
    assert ts64.capture(torch.rand(32, 64, 64) * 1000).shape == (32, 64, 64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_torch_cuda_matches_cpu_statistics():
    s = load_sensor("machine-vision", width=64, height=64)
    cpu = s.torch("cpu").capture(torch.full((64, 64, 64), 3000.0)).double()
    gpu = s.torch("cuda").capture(torch.full((64, 64, 64), 3000.0, device="cuda")).double().cpu()
    assert gpu.mean().item() == pytest.approx(cpu.mean().item(), abs=0.05)
    assert gpu.var(dim=0).mean().item() == pytest.approx(cpu.var(dim=0).mean().item(), rel=0.05)

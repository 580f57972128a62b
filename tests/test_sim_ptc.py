"""EMVA 1288 photon transfer: estimates from the frames alone recover the configuration.

Stated tolerances (128×128 region, 16-frame stacks, seed 0): K and η ±3 %, temporal dark noise
±5 %, DSNU and PRNU ±10 %, saturation capacity 0 to −10 % of the configured full well / ADC top
(EMVA 1288 places saturation at the maximum of the temporal variance, which lies a few σ below
the hard limit), SNR_max 0 to −6 %, absolute sensitivity threshold and dynamic range ±8 % of the
values the configuration implies.
"""

import json
import math

import numpy as np
import pytest

from sim import load_sensor, ptc


@pytest.fixture(scope="module", params=["phone", "machine-vision", "scientific"])
def measured(request):
    sensor = load_sensor(request.param, seed=0, width=128, height=128)
    m = ptc.measure(sensor, roi=(128, 128))
    return sensor, m, ptc.analyse(m)


def test_conversion_gain_and_quantum_efficiency(measured):
    sensor, m, r = measured
    c = sensor.config
    assert r.conversion_gain_dn_per_e == pytest.approx(c.conversion_gain_dn_per_e, rel=0.03)
    qe = np.atleast_1d(c.quantum_efficiency)
    assert np.allclose(r.quantum_efficiency, qe, rtol=0.03)


def test_dark_noise_dsnu_prnu(measured):
    sensor, m, r = measured
    conf = ptc.configured(sensor, m)
    assert r.temporal_dark_noise_e == pytest.approx(conf["temporal_dark_noise_e"], rel=0.05)
    assert r.dsnu_e == pytest.approx(conf["dsnu_e"], rel=0.10)
    assert np.allclose(r.prnu_percent, sensor.config.prnu_percent, rtol=0.10)
    assert not r.warnings


def test_saturation_snr_sensitivity_dynamic_range(measured):
    sensor, m, r = measured
    c = sensor.config
    sat = ptc.expected_saturation_e(sensor)
    for got in r.saturation_capacity_e:
        assert 0.90 * sat <= got <= 1.01 * sat
    for got in r.snr_max:
        assert 0.94 * math.sqrt(sat) <= got <= 1.01 * math.sqrt(sat)
    sigma_d = ptc.configured(sensor, m)["temporal_dark_noise_e"]
    k = c.conversion_gain_dn_per_e
    for eta, got_min, got_dr, p_sat in zip(np.atleast_1d(c.quantum_efficiency) * np.ones(
            len(r.channels)), r.absolute_sensitivity_threshold_photons, r.dynamic_range,
            r.saturation_photons):
        want_min = (math.sqrt(sigma_d**2 + 1 / (12 * k * k) + 0.25) + 0.5) / eta
        assert got_min == pytest.approx(want_min, rel=0.08)
        assert got_dr == pytest.approx(p_sat / want_min, rel=0.08)
    assert all(e < 0.5 for e in r.linearity_error_percent)


def test_gain_nonlinearity_shows_as_linearity_error():
    sensor = load_sensor("machine-vision", gain_nonlinearity_percent=5.0)
    r = ptc.analyse(ptc.measure(sensor, roi=(64, 64), levels=32, spatial_frames=4))
    assert r.linearity_error_percent[0] > 1.0


def test_quantization_limited_camera_is_flagged():
    sensor = load_sensor("machine-vision", conversion_gain_dn_per_e=0.02)
    r = ptc.analyse(ptc.measure(sensor, roi=(64, 64), levels=24, spatial_frames=4))
    assert r.conversion_gain_dn_per_e == pytest.approx(0.02, rel=0.05)
    assert any("quantization-limited" in w for w in r.warnings)


def test_run_writes_json_markdown_and_plots(tmp_path):
    sensor = load_sensor("scientific")
    ptc.run(sensor, tmp_path, levels=16, spatial_frames=4, roi=(32, 32))
    report = json.loads((tmp_path / "ptc.json").read_text())
    assert report["recovered"]["conversion_gain_dn_per_e"] == pytest.approx(2.0, rel=0.1)
    assert report["configured"]["conversion_gain_dn_per_e"] == 2.0
    md = (tmp_path / "ptc.md").read_text()
    assert "| K | DN/e⁻ | 2 |" in md and "dynamic range" in md
    for name in ("ptc.png", "snr.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

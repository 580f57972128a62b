"""Sensor YAML validation, presets, overrides, and the errors users see."""

import numpy as np
import pytest
import yaml

from adcforge.errors import ConfigError
from sim import KEYS, Sensor, list_presets, load_sensor, photons_from_lux
from sim.config import describe_keys, validate
from sim.sensor import preset_path

REQUIRED = ("width", "height", "pixel_pitch_um", "quantum_efficiency", "full_well_e",
            "conversion_gain_dn_per_e", "read_noise_e", "dark_current_e_per_s",
            "dark_current_ref_temp_c", "dark_current_doubling_c", "temperature_c", "dsnu_e",
            "prnu_percent", "black_level_dn", "adc_bits")


def base(**kw):
    raw = yaml.safe_load(preset_path("machine-vision").read_text())
    raw.update(width=16, height=16)
    raw.update(kw)
    return raw


def test_issue_keys_are_all_present_with_their_names():
    names = {k.name for k in KEYS}
    assert set(REQUIRED) <= names
    assert "exposure_s" in names


def test_presets_are_bundled_with_sources():
    presets = list_presets()
    assert {"phone", "machine-vision", "scientific"} <= set(presets)
    for name in presets:
        raw = yaml.safe_load(preset_path(name).read_text())
        assert len(raw["source"]) > 40, name
        validate(raw, name)


def test_load_sensor_by_name_with_overrides():
    s = load_sensor("phone", width=8, height=8)
    assert (s.width, s.height) == (8, 8)
    assert s.adc_bits == 12 and s.max_dn == 4095
    frame = s.capture(50.0)
    assert frame.dtype == np.uint16 and frame.shape == (8, 8)


def test_from_yaml_and_load_sensor_by_path(tmp_path):
    path = tmp_path / "cam.yaml"
    path.write_text(yaml.safe_dump(base()))
    a = Sensor.from_yaml(path, seed=3)
    b = load_sensor(str(path), seed=3)
    assert np.array_equal(a.capture(100.0), b.capture(100.0))


@pytest.mark.parametrize("override, words", [
    pytest.param({"colour": 1}, ["unknown key", "'colour'"], id="unknown key"),
    pytest.param({"read_noise_e": -1.0}, ["read_noise_e", "-1", "0..1000"], id="negative noise"),
    pytest.param({"full_well_e": -5}, ["full_well_e", "-5", "1..1e+07"], id="negative full well"),
    pytest.param({"adc_bits": 17}, ["adc_bits", "17", "8..16"], id="too many bits"),
    pytest.param({"adc_bits": 7}, ["adc_bits", "7", "8..16"], id="too few bits"),
    pytest.param({"adc_bits": 12.5}, ["adc_bits", "not an integer"], id="fractional bits"),
    pytest.param({"prnu_percent": "high"}, ["prnu_percent", "not a number"], id="text"),
    pytest.param({"quantum_efficiency": 1.2}, ["quantum_efficiency", "0..1"], id="qe above 1"),
    pytest.param({"quantum_efficiency": [0.5, 0.6]}, ["3 values"], id="qe list of two"),
    pytest.param({"quantum_efficiency": {"r": 0.5, "g": 0.6, "b": 0.4}},
                 ["cfa", "RGGB"], id="per-channel qe without cfa"),
    pytest.param({"cfa": "RGGB"}, ["per-channel"], id="cfa with scalar qe"),
    pytest.param({"cfa": "RGBW"}, ["cfa", "RGBW", "RGGB"], id="unknown cfa"),
    pytest.param({"black_level_dn": 5000}, ["black_level_dn", "0..4095"], id="black above top"),
    pytest.param({"hot_pixel_fraction": 0.01}, ["hot_pixel_dark_current_e_per_s"],
                 id="hot pixels without current"),
    pytest.param({"temperature_c": float("nan")}, ["temperature_c", "out of range"], id="nan"),
])
def test_bad_values_name_file_key_value_and_range(override, words):
    with pytest.raises(ConfigError) as info:
        validate(base(**override), "cam.yaml")
    msg = str(info.value)
    assert msg.startswith("cam.yaml")
    for w in words:
        assert w in msg, (w, msg)


def test_missing_key_is_named():
    raw = base()
    del raw["dsnu_e"]
    with pytest.raises(ConfigError, match="missing key 'dsnu_e'"):
        validate(raw, "cam.yaml")


def test_overrides_are_validated_like_the_file():
    with pytest.raises(ConfigError, match=r"read_noise_e.*-2.*0\.\.1000"):
        load_sensor("phone", read_noise_e=-2.0)
    with pytest.raises(ConfigError, match="unknown key"):
        load_sensor("phone", nonsense=1)


def test_unknown_preset_and_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown sensor preset 'toaster'.*phone"):
        load_sensor("toaster")
    with pytest.raises(ConfigError, match="missing.yaml: no such sensor file"):
        load_sensor(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("width: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_sensor(str(bad))
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml: .*mapping"):
        load_sensor(str(lst))


def test_colour_sensor_needs_even_size():
    with pytest.raises(ConfigError, match="even width and height"):
        load_sensor("phone", width=7, height=8)


def test_describe_keys_lists_every_key():
    table = describe_keys()
    for k in KEYS:
        assert f"`{k.name}`" in table


def test_photons_from_lux_against_hand_calculation():
    # 1 lx at 555 nm = 1/683 W/m²; photon energy h c / 555 nm
    h, c = 6.62607015e-34, 299792458.0
    expected = (1 / 683) / (h * c / 555e-9) * (1e-6) ** 2 * 1.0
    assert photons_from_lux(1.0, 1.0, 1.0) == pytest.approx(expected, rel=1e-12)
    # scales with lux, time and area
    assert photons_from_lux(10.0, 0.5, 2.0) == pytest.approx(expected * 10 * 0.5 * 4, rel=1e-12)
    # off the V(λ) peak more watts (so more photons) are needed per lux
    assert photons_from_lux(1.0, 1.0, 1.0, wavelength_nm=610) > 1.5 * expected
    with pytest.raises(ConfigError, match="wavelength_nm"):
        photons_from_lux(1.0, 1.0, 1.0, wavelength_nm=1000)

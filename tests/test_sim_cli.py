"""The command line: adcforge sim, adcforge ptc, adcforge bench sim, and one-line errors."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from adcforge.cli import main
from sim.sensor import preset_path


def run(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sim_writes_frames_and_contact_sheet(tmp_path, capsys):
    img = tmp_path / "scene.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
        img)
    code, out, err = run(["sim", "--sensor", "phone", "--image", str(img), "--photons", "5",
                          "100", "-o", str(tmp_path / "out")], capsys)  # the syntax
    assert code == 0, err
    assert "sensor size set to the image's, 32x24" in out
    sheet = Image.open(tmp_path / "out" / "contact_sheet.png")
    assert sheet.size[0] > 3 * 32
    raw = np.asarray(Image.open(tmp_path / "out" / "raw_100.png"))
    assert raw.shape == (24, 32) and raw.max() > raw.min()
    frames = np.load(tmp_path / "out" / "frames.npz")
    assert set(frames) == {"photons_5", "photons_100"}


def test_sim_default_chart_mono_sensor_and_lux(tmp_path, capsys):
    code, out, err = run(["sim", "--sensor", "machine-vision", "--lux", "0.5",
                          "-o", str(tmp_path)], capsys)
    assert code == 0, err
    assert "photons per pixel at white" in out
    assert (tmp_path / "contact_sheet.png").exists()


def test_ptc_command_writes_report(tmp_path, capsys):
    code, out, err = run(["ptc", "--sensor", "scientific", "--roi", "32x32", "--levels", "12",
                          "--frames", "4", "-o", str(tmp_path)], capsys)
    assert code == 0, err
    assert "| K | DN/e⁻ | 2 |" in out
    for name in ("ptc.json", "ptc.md", "ptc.png", "snr.png"):
        assert (tmp_path / name).exists()


def test_bench_sim_small_without_pyxel(tmp_path, capsys):
    code, out, err = run(["bench", "sim", "--size", "64", "--repeats", "1", "--no-pyxel",
                          "--fast", "1000", "-o", str(tmp_path / "b.json")], capsys)
    assert code == 0, err
    assert "Mpix/s" in out and "cores" in out and "TV distance" in out
    res = json.loads((tmp_path / "b.json").read_text())
    assert res["machine"]["cores"] >= 1
    assert all(r["mpix_s"] > 0 for r in res["results"])


@pytest.mark.parametrize("argv, words", [
    pytest.param(["sim", "--sensor", "toaster"], ["unknown sensor preset 'toaster'"],
                 id="unknown preset"),
    pytest.param(["sim", "--sensor", "phone", "--set", "adc_bits=20"],
                 ["adc_bits", "20", "8..16"], id="bits out of range"),
    pytest.param(["ptc", "--sensor", "phone", "--roi", "big"], ["--roi 'big'"], id="bad roi"),
    pytest.param(["sim", "--sensor", "phone", "--set", "noise"], ["KEY=VALUE"], id="bad --set"),
])
def test_user_errors_are_one_line_exit_1(argv, words, tmp_path, capsys):
    code, out, err = run(argv + ["-o", str(tmp_path)], capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ")
    for w in words:
        assert w in err


def test_bad_yaml_and_unreadable_image_errors(tmp_path, capsys):
    raw = yaml.safe_load(preset_path("scientific").read_text())
    raw["full_well_e"] = -1
    cam = tmp_path / "cam.yaml"
    cam.write_text(yaml.safe_dump(raw))
    code, _, err = run(["ptc", "--sensor", str(cam), "-o", str(tmp_path)], capsys)
    assert code == 1 and "cam.yaml" in err and "full_well_e" in err and "-1" in err
    bad = tmp_path / "x.png"
    bad.write_text("nope")
    code, _, err = run(["sim", "--sensor", "phone", "--image", str(bad), "-o", str(tmp_path)],
                       capsys)
    assert code == 1 and "x.png: cannot read image" in err


def test_pyxel_side_by_side_config_and_missing_pyxel_hint(monkeypatch):
    from sim import bench

    sensor = bench.bench_sensor(64)
    cfg = yaml.safe_load(bench.pyxel_config(sensor, 5000.0))
    ch = cfg["cmos_detector"]["characteristics"]
    assert isinstance(ch["charge_to_volt_conversion"], float)  # "1e-06" would be a string
    assert ch["adc_bit_resolution"] == 12 and ch["full_well_capacity"] == 32500.0
    # 1 µV/e⁻ and the ADC range make Pyxel's DN per electron our K
    assert 4095 / (ch["adc_voltage_range"][1] / ch["charge_to_volt_conversion"]) == \
        pytest.approx(0.12)
    noise = cfg["pipeline"]["charge_measurement"][1]["arguments"]["std_deviation"]
    assert noise == pytest.approx(6.8e-6)
    monkeypatch.setattr(bench, "find_pyxel_python", lambda explicit=None: None)
    res = bench.bench_pyxel(sensor, 5000.0)
    assert "pip install 'adcforge[bench]'" in res["error"]

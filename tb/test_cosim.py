"""Verilator co-simulation through cocotb: every result equal to the golden model, bit for bit.

One build directory per parameter set; each build runs the `bulk` batches (exhaustive sweep with
idle cycles and back-pressure, random streams, sensor frames, MAC worst cases) and the
beat-by-beat tests (reset in the middle of a stream, threshold reload).
"""

import numpy as np
import pytest

from adcforge.design import Decode, Design, Mac, example_designs, load_design, save_design
from tb import runner
from tb.cosim import cosim
from tb.targets import PostMultiplierTarget

pytestmark = pytest.mark.cosim


def _check(report):
    assert report.get("error") is None, report.get("error")
    assert report["cocotb_failed"] == 0, report.get("first_mismatches")
    assert report["mismatches"] == 0, report["first_mismatches"]
    assert report["checked"] > 0


@pytest.mark.parametrize("name", list(example_designs()))
def test_example_design(name):
    d = load_design(example_designs()[name])
    report = cosim(d, samples=20000, sensor=(name == "adc4_in12"))
    _check(report)
    assert report["reset_midstream"]["mismatches"] == 0
    sweep = next(b for b in report["batches"] if b["name"] == "exhaustive")
    assert sweep["checked"] == 2**d.input_bits  # every input value


def test_runtime_threshold_reload():
    d = load_design(example_designs()["adc4_in12"])
    report = cosim(d, samples=5000, runtime=True)
    _check(report)
    assert report["threshold_reload"]["after_reload"] > 100


def test_post_multiplier_every_exponent_and_activation():
    t = PostMultiplierTarget(8, 3, 2)
    build_dir, _ = runner.build(t.target())
    report = runner.run(build_dir, {
        "target": {"kind": "post", "width": 8, "exponent_bits": 3, "guard_bits": 2},
        "batches": [{"name": "every case", "stim": "exhaustive", "valid_p": 0.8, "ready_p": 0.7},
                    {"name": "random", "stim": "random", "n": 20000}]}, testcase="bulk")
    _check(report)
    assert report["batches"][0]["checked"] == 256 * (2 * 8 + 1)


def _worst_case_design(path, pattern, output_bits=16, output_shift=0):
    """A 4-bit ladder feeding a 32->3 POST layer whose weights make the accumulator extreme;
    ``output_bits``/``output_shift`` as a bit-shift normalised layer exports them."""
    table = np.array([[-128]] + [[127]] * 14 + [[-128]])
    n_in = 32
    if pattern == "all max":
        sign = np.ones((3, n_in), dtype=int)
        sign[1] = -1
    else:
        sign = np.resize([1, -1], (3, n_in))
    exponent = np.zeros((3, n_in), dtype=int)
    exponent[2] = 7  # the smallest weight, odd exponent
    mac = Mac(inputs=n_in, outputs=3, exponent_bits=3, guard_bits=2, scale_exp=0, sign=sign,
              exponent=exponent, bias=np.array([2**31 - 1, -(2**31), 0]),
              output_bits=output_bits, output_shift=output_shift)
    name = f"worst_{pattern.replace(' ', '_')}_{output_bits}_{output_shift}"
    d = Design(name=name, input_bits=8,
               thresholds=tuple(range(16, 256, 16)),
               decode=Decode(width=8, frac_bits=0, table=table), mac=mac)
    return load_design(save_design(d, path))


@pytest.mark.parametrize("pattern, output_bits, output_shift", [
    pytest.param("all max", 16, 0, id="all max"),
    pytest.param("alternating signs", 16, 0, id="alternating signs"),
    # bit-shift normalisation: a shift that rounds (half up) and an 8-bit output that saturates
    pytest.param("alternating signs", 8, 7, id="alternating signs, shift 7, 8-bit output"),
])
def test_mac_worst_case(pattern, output_bits, output_shift, tmp_path):
    d = _worst_case_design(tmp_path / "worst.yaml", pattern, output_bits, output_shift)
    report = cosim(d, samples=2000, extra_tests=False)
    _check(report)


@pytest.mark.parametrize("name, lanes, runtime", [
    pytest.param("adc4_in12", 4, False, id="adc4_in12, 4 lanes"),
    pytest.param("adc4_in12", 2, True, id="adc4_in12, 2 lanes, runtime thresholds"),
    pytest.param("adc8_in16_mac", 2, False, id="adc8_in16_mac, 2 lanes"),
])
def test_sample_lanes(name, lanes, runtime):
    """N samples per beat: every input value on every lane (with idle cycles and
    back-pressure), a random stream, a reset in the middle of a stream (and a threshold reload
    for runtime thresholds; random and worst-case inferences for a MAC layer), all equal to the
    golden model of the samples in stream order."""
    d = load_design(example_designs()[name])
    report = cosim(d, samples=20000, lanes=lanes, runtime=runtime)
    _check(report)
    assert report["reset_midstream"]["mismatches"] == 0
    sweep = next(b for b in report["batches"] if b["name"] == "exhaustive")
    assert sweep["checked"] == lanes * 2**d.input_bits  # every value on each of the lanes
    assert sweep["lanes"] == lanes
    if runtime:
        assert report["threshold_reload"]["after_reload"] > 100
    if d.mac is not None:
        assert {b["name"] for b in report["batches"]} >= {"mac-random", "mac-extremes"}


@pytest.mark.parametrize("name, codes_path, lanes, runtime", [
    pytest.param("adc4_in12", "ready", 1, False, id="adc4_in12, ready"),
    pytest.param("adc4_in12", "fifo", 1, False, id="adc4_in12, fifo"),
    pytest.param("adc4_in12", "fifo", 2, True, id="adc4_in12, fifo, 2 lanes, runtime thresholds"),
    pytest.param("adc8_in16_mac", "fifo", 1, False, id="adc8_in16_mac, fifo"),
])
def test_codes_paths(name, codes_path, lanes, runtime):
    """The other codes-path handshakes (AdcPipeline codes_path): every input value with idle
    cycles and back-pressure, a random stream, a reset in the middle of a stream (a threshold
    reload; MAC inferences behind the codes FIFO), all equal to the golden model."""
    d = load_design(example_designs()[name])
    report = cosim(d, samples=20000, lanes=lanes, runtime=runtime, codes_path=codes_path)
    _check(report)
    assert report["codes_path"] == codes_path
    assert report["reset_midstream"]["mismatches"] == 0
    sweep = next(b for b in report["batches"] if b["name"] == "exhaustive")
    assert sweep["checked"] == lanes * 2**d.input_bits
    if runtime:
        assert report["threshold_reload"]["after_reload"] > 100
    if d.mac is not None:
        assert {b["name"] for b in report["batches"]} >= {"mac-random", "mac-extremes"}

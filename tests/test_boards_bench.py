"""`adcforge bench hw` with sample lanes: the core's I/O, the sensor formats, one-line errors.

The place-and-route figures themselves are measured (docs/boards.md), not asserted here; one
small real run is marked slow.
"""

import json

import pytest
from amaranth.back import rtlil
from click.testing import CliRunner

from adcforge.cli import main_group
from adcforge.design import resolve_design
from adcforge.errors import AdcforgeError
from boards.bench import RegisteredCore, count_luts, sensor_formats
from hdl.pipeline import check_design_lanes


@pytest.mark.parametrize("rate, formats", [
    pytest.param(None, [], id="no Fmax"),
    pytest.param(123.9, [], id="just below 1080p60"),
    pytest.param(124.0, ["1080p60"], id="1080p60"),
    pytest.param(500.0, ["1080p60", "4K60"], id="4K60"),
    pytest.param(995.0, ["1080p60", "4K60", "4K120"], id="4K120"),
])
def test_sensor_formats(rate, formats):
    assert sensor_formats(rate) == formats


@pytest.mark.parametrize("name, lanes", [("adc4_in12", 1), ("adc4_in12", 4),
                                         ("adc8_in16_mac", 2)])
def test_registered_core_ports(name, lanes):
    """One lane keeps parallel pins; more lanes load and unload through one-pin shift
    registers, so a wide core fits the UP5K's 39 I/O."""
    d = resolve_design(name)
    top = RegisteredCore(d, lanes=lanes)
    pins = sum(len(p) for p in top.ports())
    assert (pins <= 39) if lanes > 1 or d.mac is None else True
    assert len(top.in_payload) == d.input_bits * lanes
    assert "module" in rtlil.convert(top, ports=top.ports(), name="top")


@pytest.mark.parametrize("name, lanes, message", [
    ("adc4_in12", 0, r"^lanes must be a positive integer, not 0$"),
    ("adc8_in16_mac", 3, r"^adc8_in16_mac: lanes: 3 does not divide the POST layer's 8 samples "
                         r"per inference \(mac.inputs 16 = 8 samples x 2 channels\); use a "
                         r"divisor of 8$"),
])
def test_bad_lane_counts_are_one_line(name, lanes, message):
    with pytest.raises(AdcforgeError, match=message):
        check_design_lanes(resolve_design(name), lanes)


def test_bench_hw_cli_refuses_bad_lanes_before_building(tmp_path):
    r = CliRunner().invoke(main_group, ["bench", "hw", "adc8_in16_mac", "--lanes", "3",
                                        "-o", str(tmp_path / "b")])
    assert r.exit_code != 0
    assert isinstance(r.exception, AdcforgeError)  # `adcforge` prints it as one "error:" line
    assert "does not divide the POST layer's 8 samples per inference" in str(r.exception)
    assert not (tmp_path / "b").exists()  # nothing built
    r = CliRunner().invoke(main_group, ["bench", "hw", "adc4_in12", "--sweep-lanes", "1,0"])
    assert r.exit_code != 0 and "positive integers" in r.output


def test_count_luts():
    netlist = {"modules": {"top": {"cells": {
        "a": {"type": "SB_LUT4"}, "b": {"type": "SB_LUT4"}, "c": {"type": "SB_DFF"},
        "d": {"type": "LUT4"}}}}}
    assert count_luts(netlist, "ice40") == 2
    assert count_luts(netlist, "ecp5") == 1


@pytest.mark.slow
def test_bench_hw_lanes_report(tmp_path):
    """A real (small) multi-lane run: the report's lane keys."""
    from boards.bench import bench_hw

    s = bench_hw(resolve_design("adc1_in8"), "up5k", tmp_path, lanes=2, log=lambda m: None)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["lanes"] == 2 and report["fmax_mhz"] > 0
    assert report["msamples_per_s"] == pytest.approx(2 * report["fmax_mhz"], abs=0.1)
    assert report["sensor_formats"] == sensor_formats(report["msamples_per_s"])
    assert s["logic_cells"] > 0 and s["flip_flops"] > 0


def test_too_many_lanes_for_the_device_is_one_line(tmp_path, monkeypatch):
    """A core whose synthesis needs more LUT4s than the device has is refused before placing."""
    import boards.bench as bench

    calls = []

    def fake_tool(cmd, *, cwd, log, what):
        calls.append(what)
        if what == "yosys synthesis":
            cells = {f"l{k}": {"type": "SB_LUT4"} for k in range(6000)}
            (cwd / "top.json").write_text(json.dumps({"modules": {"top": {"cells": cells}}}))

    monkeypatch.setattr(bench, "run_tool", fake_tool)
    monkeypatch.setattr(bench, "require_tool", lambda name: name)
    with pytest.raises(AdcforgeError, match=r"^adc4_in12 with 8 lanes does not fit the up5k: "
                                            r"synthesis needs 6000 LUT4s, the device has 5280; "
                                            r"use fewer lanes or a larger device$"):
        bench.bench_hw(resolve_design("adc4_in12"), "up5k", tmp_path, lanes=8,
                       log=lambda m: None)
    assert calls == ["yosys synthesis"]  # nothing placed


SYNC_SR_FFS = {"SB_DFFSR", "SB_DFFSS", "SB_DFFESR", "SB_DFFESS",
               "SB_DFFNSR", "SB_DFFNSS", "SB_DFFNESR", "SB_DFFNESS"}


def test_no_sdff_synthesis_keeps_every_flip_flop_and_maps_no_synchronous_set_reset(tmp_path):
    """`bench hw --no-sdff`: the same flip-flops, none with a synchronous set/reset pin (Yosys
    builds such pins out of the ladder's compare logic otherwise, even where the source has no
    reset)."""
    from boards.bench import synth_script
    from boards.toolchain import require_tool, run_tool

    yosys = require_tool("yosys")
    top = RegisteredCore(resolve_design("adc4_in12"), codes_path="ready")
    cells = {}
    for sdff in (True, False):
        out = tmp_path / f"sdff-{sdff}"
        out.mkdir()
        (out / "top.il").write_text(rtlil.convert(top, ports=top.ports(), name="top"))
        run_tool([yosys, "-q", "-p", synth_script("ice40", sdff=sdff)], cwd=out,
                 log=out / "yosys.out", what="yosys synthesis")
        netlist = json.loads((out / "top.json").read_text())
        types = [c["type"] for mod in netlist["modules"].values()
                 for c in mod["cells"].values()]
        cells[sdff] = {t: types.count(t) for t in set(types) if t.startswith("SB_DFF")}
    assert SYNC_SR_FFS & set(cells[True])  # the default maps some
    assert not SYNC_SR_FFS & set(cells[False])
    assert sum(cells[True].values()) == sum(cells[False].values())


def test_a_core_with_more_ports_than_the_package_has_pins_is_one_line(tmp_path, monkeypatch):
    """Refused before anything is written or run (nextpnr said only that it could not place an
    I/O cell); every bundled design fits the UP5K's 39 pins with one lane."""
    import dataclasses

    import boards.bench as bench

    for name in ("adc1_in8", "adc4_in12", "adc8_in16_mac"):
        for runtime in (False, True):
            top = RegisteredCore(resolve_design(name), runtime_thresholds=runtime)
            assert top.pins <= bench.DEVICES["up5k"].io_pins
    small = dataclasses.replace(bench.DEVICES["up5k"], io_pins=30)
    monkeypatch.setitem(bench.DEVICES, "up5k", small)
    monkeypatch.setattr(bench, "require_tool", lambda name: pytest.fail("a tool was looked up"))
    out = tmp_path / "out"
    with pytest.raises(AdcforgeError, match=r"^adc8_in16_mac with 1 lane: the core's ports need "
                                            r"35 pins, the Lattice iCE40UP5K-SG48 \(iCEBreaker\) "
                                            r"has 30 user I/O; use a device with more pins "
                                            r"\(hx8k, ecp5-85\) or --lanes 2 \(serial I/O\)$"):
        bench.bench_hw(resolve_design("adc8_in16_mac"), "up5k", out, log=lambda m: None)
    assert not out.exists()

"""The nextpnr report parser, on reports that nextpnr really wrote (boards/data/)."""

import json
from pathlib import Path

import pytest

from adcforge.errors import ToolchainError
from boards.report import (count_flip_flops, format_report, load_nextpnr_report,
                           parse_nextpnr_report, pick_clock)

DATA = Path(__file__).resolve().parents[1] / "boards" / "data"


def test_report_up5k():
    s = load_nextpnr_report(DATA / "nextpnr-report-up5k-adc4_in12.json", clock="clk")
    raw = json.loads((DATA / "nextpnr-report-up5k-adc4_in12.json").read_text())
    assert s["family"] == "ice40"
    assert s["logic_cells"] == raw["utilization"]["ICESTORM_LC"]["used"]
    assert s["logic_cells_available"] == 5280
    assert s["bram"] == raw["utilization"]["ICESTORM_RAM"]["used"]
    assert s["dsp"] == raw["utilization"]["ICESTORM_DSP"]["used"]
    (name,) = raw["fmax"]
    assert s["clock"] == name
    assert s["fmax_mhz"] == round(raw["fmax"][name]["achieved"], 2)
    assert s["target_mhz"] == raw["fmax"][name]["constraint"]
    assert s["timing_met"] == (raw["fmax"][name]["achieved"] >= raw["fmax"][name]["constraint"])
    assert s["fits"] is True
    assert s["flip_flops"] is None  # no netlist given


def test_report_ecp5():
    s = load_nextpnr_report(DATA / "nextpnr-report-ecp5-85-adc4_in12.json", clock="clk")
    raw = json.loads((DATA / "nextpnr-report-ecp5-85-adc4_in12.json").read_text())
    assert s["family"] == "ecp5"
    assert s["logic_cells"] == raw["utilization"]["TRELLIS_COMB"]["used"]
    assert s["logic_cells_available"] == 83640
    assert s["bram"] == 0 and s["dsp"] == 0


def test_report_timing_failed_and_overfull():
    raw = json.loads((DATA / "nextpnr-report-up5k-adc4_in12.json").read_text())
    raw["fmax"] = {"adc_clk$glb": {"achieved": 90.0, "constraint": 120.0},
                   "clk12$SB_IO_IN": {"achieved": 200.0, "constraint": 12.0}}
    raw["utilization"]["ICESTORM_LC"] = {"available": 5280, "used": 6000}
    s = parse_nextpnr_report(raw, clock="adc_clk")
    assert s["clock"] == "adc_clk$glb" and s["fmax_mhz"] == 90.0 and s["timing_met"] is False
    assert s["fits"] is False
    text = format_report(s)
    assert "TIMING FAILED" in text and "DOES NOT FIT" in text


def test_pick_clock_without_hint_takes_the_fastest_constraint():
    fmax = {"a": {"achieved": 1, "constraint": 12}, "b": {"achieved": 1, "constraint": 48}}
    assert pick_clock(fmax, None) == "b"
    assert pick_clock(fmax, "nothing") == "b"
    assert pick_clock({}, "x") is None


def test_count_flip_flops_skips_cell_library():
    netlist = {"modules": {
        "top": {"cells": {"a": {"type": "SB_DFFESR"}, "b": {"type": "SB_LUT4"},
                          "c": {"type": "SB_DFF"}, "d": {"type": "TRELLIS_FF"}}},
        "SB_DFF": {"attributes": {"blackbox": "00000000000000000000000000000001"},
                   "cells": {"x": {"type": "SB_DFF"}}},
    }}
    assert count_flip_flops(netlist) == 3


@pytest.mark.parametrize("text", ["{}", "[1, 2]", '{"utilization": {"FOO": {}}}'])
def test_report_refuses_what_nextpnr_did_not_write(tmp_path, text):
    p = tmp_path / "r.json"
    p.write_text(text)
    with pytest.raises(ToolchainError, match="nextpnr report"):
        load_nextpnr_report(p)


def test_report_missing_file(tmp_path):
    with pytest.raises(ToolchainError, match="no nextpnr report"):
        load_nextpnr_report(tmp_path / "nope.json")


def test_report_gowin():
    """nextpnr-himbaechel-gowin's report (Tang Nano 9K, adc4_in12): LUT4s are the logic
    cells; its TBUF output buffers, listed with none available, do not make it overfull."""
    s = load_nextpnr_report(DATA / "nextpnr-report-gw1nr9-adc4_in12.json", clock="clk")
    raw = json.loads((DATA / "nextpnr-report-gw1nr9-adc4_in12.json").read_text())
    assert s["family"] == "gowin"
    assert s["logic_cells"] == raw["utilization"]["LUT4"]["used"]
    assert s["logic_cells_available"] == 8640
    assert s["bram"] == raw["utilization"]["BSRAM"]["used"] == 1
    assert raw["utilization"]["TBUF"]["available"] == 0 < raw["utilization"]["TBUF"]["used"]
    assert s["fits"] is True
    assert s["target_mhz"] == 27.0 and s["timing_met"]

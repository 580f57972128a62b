"""Board builds: the board registry, and one real iCEBreaker bitstream (slow, runs in CI)."""

import json

import pytest

from adcforge.cli import main
from adcforge.design import resolve_design
from adcforge.errors import ToolchainError
from boards.platforms import BOARDS, build_board, get_board

KEYS = ("logic_cells", "flip_flops", "bram", "dsp", "fmax_mhz", "timing_met")


def test_board_registry():
    assert {"icebreaker", "ulx3s"} <= set(BOARDS)
    ib = get_board("icebreaker")
    assert ib.clk_mhz * 1e6 / ib.divisor == ib.baud  # the UART divides the clock exactly
    with pytest.raises(ToolchainError, match="unknown board 'x'; supported boards"):
        get_board("x")


def test_board_list_cli(capsys):
    main(["board", "list"])
    out = capsys.readouterr().out
    assert "icebreaker" in out and "ulx3s" in out and "ready" in out


@pytest.mark.slow
def test_icebreaker_build(tmp_path):
    summary = build_board("icebreaker", resolve_design("adc4_in12"), tmp_path, log=lambda m: None)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report == json.loads(json.dumps(summary))
    for key in KEYS:
        assert report[key] is not None, key
    assert report["fits"] and report["timing_met"]
    assert 0 < report["logic_cells"] <= report["logic_cells_available"] == 5280
    assert report["fmax_mhz"] >= report["target_mhz"] > 29.9
    assert report["utilization"]["ICESTORM_PLL"]["used"] == 1  # the ADC clock is the PLL's
    bitstream = tmp_path / "top.bin"
    assert bitstream.stat().st_size == 104090  # a complete iCE40UP5K configuration image

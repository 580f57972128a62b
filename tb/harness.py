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

The stream protocol is kept: a raised ``valid`` stays high with a fixed payload until ``ready``.
"""

from dataclasses import dataclass, field


@dataclass
class HarnessSpec:
    """The DUT's stream ports and the static inputs passed through to Python."""

    dut_module: str
    in_port: str  # e.g. "i"
    in_width: int
    out_ports: list[tuple[str, int]]  # one or two (name, width); ``out_sel`` picks with two
    statics: dict[str, int] = field(default_factory=dict)  # input port name -> width
    copies: int = 2
    depth: int = 0  # stimulus and result memory depth per copy; 0: 2**17 // copies

    def __post_init__(self):
        if not self.depth:
            self.depth = (1 << 17) // self.copies


def _lane(spec: HarnessSpec, k: int) -> str:
    iw = spec.in_width
    ow = max(w for _, w in spec.out_ports)
    aw = (spec.depth - 1).bit_length()
    man_valid = f"(manual ? m_in_valid : b{k}_in_valid)" if k == 0 else f"(!manual && b{k}_in_valid)"
    man_payload = f"(manual ? m_in_payload : stim{k}[in{k}[{aw - 1}:0]])" if k == 0 else \
        f"stim{k}[in{k}[{aw - 1}:0]]"
    man_ready = f"(manual ? m_out_ready : b{k}_out_ready)" if k == 0 else f"(!manual && b{k}_out_ready)"
    statics = "".join(f"        .{name}({name}),\n" for name in spec.statics)
    outs, conns = "", ""
    for j, (name, w) in enumerate(spec.out_ports):
        outs += (f"    wire l{k}_o{j}_valid;\n    wire [{w - 1}:0] l{k}_o{j}_payload;\n"
                 f"    wire l{k}_o{j}_ready = l{k}_out_ready && (out_sel == {j});\n")
        conns += (f"        .{name}__valid(l{k}_o{j}_valid),\n"
                  f"        .{name}__payload(l{k}_o{j}_payload),\n"
                  f"        .{name}__ready(l{k}_o{j}_ready),\n")
    if len(spec.out_ports) == 1:
        mux = (f"    wire l{k}_out_valid = l{k}_o0_valid;\n"
               f"    wire [{ow - 1}:0] l{k}_out_payload = l{k}_o0_payload;\n")
    else:
        mux = (f"    wire l{k}_out_valid = out_sel ? l{k}_o1_valid : l{k}_o0_valid;\n"
               f"    wire [{ow - 1}:0] l{k}_out_payload = out_sel ? l{k}_o1_payload : "
               f"l{k}_o0_payload;\n")
    return f"""
    // ---- lane {k}
    reg [{iw - 1}:0] stim{k} [0:{spec.depth - 1}];
    reg [{ow - 1}:0] resp{k} [0:{spec.depth - 1}];
    reg [31:0] in{k};
    reg [31:0] out{k};
    reg b{k}_in_valid;
    reg lane{k}_done;
    reg [31:0] rv{k};
    reg [31:0] rr{k};
    wire [31:0] rv{k}_a = rv{k} ^ (rv{k} << 13);
    wire [31:0] rv{k}_b = rv{k}_a ^ (rv{k}_a >> 17);
    wire [31:0] rr{k}_a = rr{k} ^ (rr{k} << 13);
    wire [31:0] rr{k}_b = rr{k}_a ^ (rr{k}_a >> 17);
    wire b{k}_out_ready = running && !lane{k}_done && (rr{k}[15:0] < ready_thresh);
    wire l{k}_in_ready;
    wire l{k}_in_valid = {man_valid};
    wire [{iw - 1}:0] l{k}_in_payload = {man_payload};
    wire l{k}_out_ready = {man_ready};
{outs}{mux}
    always @(posedge clk) begin
        if (load) $readmemh("stim{k}.hex", stim{k});
        if (rst || start) begin
            in{k} <= 0;
            out{k} <= 0;
            b{k}_in_valid <= 0;
            lane{k}_done <= (n_out == 0);
            rv{k} <= (seed + 32'd{2 * k + 1}) * 32'h9E3779B9 | 32'h1;
            rr{k} <= (seed + 32'd{2 * k + 2}) * 32'h85EBCA6B | 32'h1;
        end else if (running && !manual) begin
            rv{k} <= rv{k}_b ^ (rv{k}_b << 5);
            rr{k} <= rr{k}_b ^ (rr{k}_b << 5);
            if (b{k}_in_valid && l{k}_in_ready) in{k} <= in{k} + 1;
            if (!b{k}_in_valid || l{k}_in_ready)
                b{k}_in_valid <= ((b{k}_in_valid && l{k}_in_ready) ? in{k} + 1 : in{k}) < n_in
                                 && rv{k}[15:0] < valid_thresh;
            if (l{k}_out_valid && b{k}_out_ready) begin
                resp{k}[out{k}[{aw - 1}:0]] <= l{k}_out_payload;
                out{k} <= out{k} + 1;
                if (out{k} + 1 == n_out) lane{k}_done <= 1;
            end
        end
        if (flushing && !rst && !start) $writememh("resp{k}.hex", resp{k}, 0, n_out - 1);
    end

    {spec.dut_module} dut{k} (
        .clk(clk),
        .rst(rst),
{statics}{conns}        .{spec.in_port}__valid(l{k}_in_valid),
        .{spec.in_port}__payload(l{k}_in_payload),
        .{spec.in_port}__ready(l{k}_in_ready)
    );
"""


def harness_verilog(spec: HarnessSpec) -> str:
    """Return the Verilog text of module ``tb_top`` wrapping ``spec.copies`` copies of the DUT."""
    iw = spec.in_width
    ow = max(w for _, w in spec.out_ports)
    static_ports = "".join(f"    input wire [{w - 1}:0] {name},\n" for name, w in spec.statics.items())
    all_done = " && ".join(f"lane{k}_done" for k in range(spec.copies))
    copies = "".join(_lane(spec, k) for k in range(spec.copies))
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
{copies}
    assign m_in_ready = l0_in_ready;
    assign m_out_valid = l0_out_valid;
    assign m_out_payload = l0_out_payload;

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
"""

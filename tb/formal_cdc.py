"""A formal proof of the board top's clock-domain crossing FIFO, ``CrossingFIFO`` in
:mod:`boards.top` (Cummings' style 2: Gray pointers through two-flop synchronisers, unchecked
writes, a registered ``w_level`` and a registered ``r_rdy``): :func:`prove_crossing_fifo`.

The FIFO is converted to Verilog as the board builds it (module ``fifo``, domains ``w`` and
``r``), flattened with its memory mapped to registers, and its pointers, synchroniser stages
and memory cells exposed to :class:`CrossingFifoSpec`. sby runs with ``multiclock on``: the two
clocks are free inputs of the solver, unrelated (either may rise in any solver step, both in
the same one, or neither for any number of steps), each register steps on its own clock's
rising edge. The writer keeps the FIFO's documented discipline (a write only while
``w_level < depth - 1``); data, ``w_en`` and ``r_en`` are free otherwise. From the power-on
state (every register at its initial value, which is its reset value; no reset afterwards, as
the boards reset their domains only at PLL lock), the specification counts the writes and the
reads and proves, for every step:

1. no overflow: the FIFO holds at most ``depth`` words (writes minus reads);
2. order and integrity: the ``n``-th word read is the ``n``-th word written (``n`` chosen
   freely by the solver, that write's data recorded when it is written), so no word is lost,
   duplicated, reordered or corrupted;
3. no spurious read: ``r_rdy`` only while the FIFO holds a word;
4. ``w_level`` never below the true level except by the write of the cycle before (it lags a
   write by one cycle, as documented), and never above ``depth``: so the discipline is safe.

Proof mode is k-induction (``prove``, 3 steps), with invariants on the exposed registers that
tie the pointers to the counts (each binary pointer equal to its count, each Gray pointer its
encoding, every synchroniser stage a value between the far side's pointer and the copy after
it, the write side's level register as computed from them, the chosen word in its memory cell
while it is in the FIFO, a registered ``r_data`` equal to the cell at the read pointer).

Metastability is modelled too: the synchronisers' first flip-flops are cut from the FIFO and
driven by the specification from what the FIFO feeds them; when that input changed at the far
side's last clock edge and the edge came after this side's last one, each bit that changed may
resolve to its old value (the flop sampled it as it changed): a Gray pointer then reads as the
value before or after its step, a pointer that changes several bits at once as a mixture.

Runtimes (2-core machine, under load): width 4, depth 4 in 3 s; width 8, depth 8 in 9 s; width
8, depth 16 in 62 s. Not covered: a reset after power-on (the write side's reset empties the
FIFO, but a reset while the other side runs is outside this proof), and liveness (that a word
written is eventually offered: a safety proof with clocks that may stop).
"""

from __future__ import annotations

from pathlib import Path

from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Array, Assert, Assume, Cat, ClockDomain, ClockSignal, Cover, \
    Elaboratable, Instance, Module, Signal

from .formal import PropertyResult, run_sby
from .formal_mac import assert_message

__all__ = ["CrossingFifoSpec", "crossing_fifo_netlist", "crossing_fifo_prelude",
           "prove_crossing_fifo"]

def crossing_fifo_netlist(width: int, depth: int, path: Path, fifo=None) -> Path:
    """Write ``CrossingFIFO(width, depth, w_domain="w", r_domain="r")`` (or ``fifo``, another
    FIFO with its ports and names) as Verilog module ``fifo``."""
    from amaranth.back import verilog

    from hdl.cdc import CrossingFIFO

    fifo = CrossingFIFO(width, depth, w_domain="w", r_domain="r") if fifo is None else fifo
    path.write_text(verilog.convert(fifo, name="fifo", emit_src=False))
    return path


# The synchronisers' inputs (the far side's pointers as the FIFO feeds them in) and first
# stages, named after flattening: the first stages are cut (``expose -input``) and driven by
# the specification with the metastability model.
_SYNC_INPUTS = ("produce_cdc.produce_w_gry", "consume_cdc.consume_r_gry")
_CUTS = ("produce_cdc.stage0", "consume_cdc.stage0")


def _wires(depth: int) -> list[str]:
    return (["produce_w_bin", "produce_w_gry", "consume_r_bin", "consume_r_gry",
             "consume_w_bin", "produce_cdc.stage1", "consume_cdc.stage1",
             "rst_cdc.stage0", "rst_cdc.stage1"]
            + [f"storage[{k}]" for k in range(depth)])


def crossing_fifo_prelude(depth: int) -> str:
    """Return the yosys commands that flatten the FIFO, expose its synchronisers' inputs and
    cut their first stages, map its memory to registers and expose its pointers, synchroniser
    stages and cells."""
    def names(wires):
        return " ".join(f"fifo/w:{w}" for w in wires)
    return (f"hierarchy -top fifo\nproc\nflatten\nexpose {names(_SYNC_INPUTS)}\n"
            f"expose -input {names(_CUTS)}\nmemory_map\nopt_clean\nexpose {names(_wires(depth))}")


def _gray(value, bits: int):
    value = value[:bits]
    return value ^ (value >> 1)


def _ungray(value):
    # binary bit k is the parity of Gray bits k and up (stated apart from hdl.cdc.gray_decode)
    return Cat(*(value[k:].xor() for k in range(len(value))))


class CrossingFifoSpec(Elaboratable):
    """The specification of :func:`prove_crossing_fifo` (see the module's docstring), on the
    FIFO ``fifo`` (:func:`crossing_fifo_netlist`, :func:`crossing_fifo_prelude`).
    ``metastable``: model the synchronisers' first flops resolving a changing bit to its old
    value. ``invariants``: state the induction's invariants too (off: only the four properties,
    for a bounded check of a variant whose registers the invariants do not describe)."""

    def __init__(self, width: int, depth: int, *, metastable: bool = True,
                 invariants: bool = True):
        self.width, self.depth, self.metastable = width, depth, metastable
        self.invariants = invariants
        self.cd_w = ClockDomain("w", reset_less=True)
        self.cd_r = ClockDomain("r", reset_less=True)

    def ports(self):
        return [self.cd_w.clk, self.cd_r.clk]

    def elaborate(self, platform):
        m = Module()
        m.domains.w, m.domains.r = self.cd_w, self.cd_r
        W, D = self.width, self.depth
        bits = D.bit_length()  # the pointers' width: the address's bits and one

        def sig(name, n=bits):
            return Signal(n, name=name)

        w_en, w_data, r_en = sig("w_en", 1), sig("w_data", W), sig("r_en", 1)
        w_level, r_data, r_rdy = sig("w_level"), sig("r_data", W), sig("r_rdy", 1)
        pw_bin, pw_gry, cr_bin, cr_gry = (sig("produce_w_bin"), sig("produce_w_gry"),
                                          sig("consume_r_bin"), sig("consume_r_gry"))
        cw_bin = sig("consume_w_bin")
        p0, p1, c0, c1 = sig("p_stage0"), sig("p_stage1"), sig("c_stage0"), sig("c_stage1")
        rst0, rst1 = sig("rst_stage0", 1), sig("rst_stage1", 1)
        cells = [sig(f"cell_{k}", W) for k in range(D)]
        sp, sc = sig("p_sync_in"), sig("c_sync_in")  # what the synchronisers are fed
        ports = {"i_w_clk": ClockSignal("w"), "i_w_rst": 0, "i_r_clk": ClockSignal("r"),
                 "i_r_rst": 0, "i_w_en": w_en, "i_w_data": w_data, "i_r_en": r_en,
                 "o_w_level": w_level, "o_r_data": r_data, "o_r_rdy": r_rdy,
                 "o_produce_w_bin": pw_bin, "o_produce_w_gry": pw_gry,
                 "o_consume_r_bin": cr_bin, "o_consume_r_gry": cr_gry,
                 "o_consume_w_bin": cw_bin, "o_produce_cdc.stage1": p1,
                 "o_consume_cdc.stage1": c1, "o_rst_cdc.stage0": rst0,
                 "o_rst_cdc.stage1": rst1, "i_produce_cdc.stage0": p0,
                 "i_consume_cdc.stage0": c0, "o_produce_cdc.produce_w_gry": sp,
                 "o_consume_cdc.consume_r_gry": sc}
        ports.update({f"o_storage[{k}]": c for k, c in enumerate(cells)})
        m.submodules.dut = Instance("fifo", **ports)

        m.d.comb += [w_en.eq(AnySeq(1)), w_data.eq(AnySeq(W)), r_en.eq(AnySeq(1))]
        m.d.comb += Assume(~w_en | (w_level < D - 1))  # the writer's discipline

        # The synchronisers' first stages: when the far side's pointer changed at its last
        # edge and that edge came after this side's last edge, each bit it changed may be
        # taken at its old value (the flop sampled it as it changed, and resolved either way).
        sp_old, sc_old = sig("p_sync_in_before"), sig("c_sync_in_before")
        p_seen, c_seen = sig("p_seen"), sig("c_seen")  # the input at this side's last edge
        m.d.w += [sp_old.eq(sp), c_seen.eq(sc)]
        m.d.r += [sc_old.eq(sc), p_seen.eq(sp)]
        late_p = sig("late_p") if self.metastable else 0
        late_c = sig("late_c") if self.metastable else 0
        if self.metastable:
            m.d.comb += [late_p.eq(AnySeq(bits)), late_c.eq(AnySeq(bits))]
        fresh_p, fresh_c = sp != p_seen, sc != c_seen
        m.d.r += p0.eq(sp ^ (late_p & (sp ^ sp_old) & fresh_p.replicate(bits)))
        m.d.w += c0.eq(sc ^ (late_c & (sc ^ sc_old) & fresh_c.replicate(bits)))

        # The counts (mod 2 * depth, the pointers' range) and the chosen word.
        n_w, n_r, wrote = sig("writes"), sig("reads"), sig("wrote", 1)
        pick = sig("pick")
        m.d.comb += pick.eq(AnyConst(bits))
        tag = sig("tag", W)
        take = r_en & r_rdy
        m.d.w += [n_w.eq(n_w + w_en), wrote.eq(w_en)]
        m.d.r += n_r.eq(n_r + take)
        with m.If(w_en & (n_w == pick)):
            m.d.w += tag.eq(w_data)

        def dist(a, b):  # b - a, mod 2 * depth
            return (b - a)[:bits]

        level = sig("level")
        m.d.comb += level.eq(dist(n_r, n_w))
        m.d.comb += [
            # 1. no overflow
            Assert(level <= D, "the FIFO holds more than depth words"),
            # 3. no spurious read
            Assert(~r_rdy | (level != 0), "r_rdy while the FIFO is empty"),
            # 4. the writer's level
            Assert(w_level + wrote >= level, "w_level below the true level"),
            Assert(w_level <= D, "w_level above depth"),
        ]
        # 2. order and integrity: the pick-th word read is the pick-th written
        with m.If(take & (n_r == pick)):
            m.d.comb += Assert(r_data == tag, "a word read is not the word written")

        # reachable (``mode="cover"``): a full FIFO, and the chosen word read after the
        # memory wrapped (the (depth + 1)-th word, in the first word's cell)
        m.d.comb += [Cover(level == D), Cover(take & (n_r == pick) & (pick == D))]
        if not self.invariants:
            return m
        # Invariants (for the induction).
        lag = sig("level_lag")  # the read count that w_level was computed with
        m.d.comb += lag.eq((n_w - wrote - w_level)[:bits])
        p1_bin, p0_bin = sig("p_stage1_bin"), sig("p_stage0_bin")
        c1_bin, c0_bin = sig("c_stage1_bin"), sig("c_stage0_bin")
        m.d.comb += [p1_bin.eq(_ungray(p1)), p0_bin.eq(_ungray(p0)),
                     c1_bin.eq(_ungray(c1)), c0_bin.eq(_ungray(c0))]

        def chain(what, *values):  # each value at or after the one before, in the window
            base = values[0]
            return [Assert(dist(base, a) <= dist(base, b), what)
                    for a, b in zip(values, values[1:])]

        m.d.comb += [
            Assert(pw_bin == n_w, "the write pointer is not the write count"),
            Assert(pw_gry == _gray(pw_bin, bits), "the write Gray pointer"),
            Assert(cr_bin == n_r, "the read pointer is not the read count"),
            Assert(cr_gry == _gray(cr_bin, bits), "the read Gray pointer"),
            Assert(sp == pw_gry, "the write pointer's synchroniser input"),
            Assert(sc == cr_gry, "the read pointer's synchroniser input"),
            Assert(sp_old == _gray(pw_bin - wrote, bits), "the write pointer before"),
            Assert(w_level + wrote <= D, "w_level after a write above depth - 1"),
            Assert(dist(cw_bin, n_w) <= D, "the next w_level above depth"),
        ]
        p_seen_bin, c_seen_bin = sig("p_seen_bin"), sig("c_seen_bin")
        m.d.comb += [p_seen_bin.eq(_ungray(p_seen)), c_seen_bin.eq(_ungray(c_seen))]
        m.d.comb += chain("a write pointer stage out of order",
                          n_r, p1_bin, p0_bin, p_seen_bin, n_w)
        m.d.comb += chain("a read pointer stage out of order",
                          lag, cw_bin, c1_bin, c0_bin, c_seen_bin, n_r)
        m.d.comb += [Assert(dist(p0_bin, p_seen_bin) <= 1, "the write pointer's first stage"),
                     Assert(dist(c0_bin, c_seen_bin) <= 1, "the read pointer's first stage")]
        read_before = sig("read_before", 1)  # the read pointer stepped at the last r edge
        m.d.r += read_before.eq(take)
        m.d.comb += Assert(sc_old == _gray(cr_bin - read_before, bits),
                           "the read pointer before")
        with m.If(read_before):
            m.d.comb += Assert(~r_rdy, "r_rdy in the cycle after a read")
        # the read side's reset synchroniser: (1, 1), (0, 1), then (0, 0)
        m.d.comb += Assert(~rst0 | rst1)
        with m.If(rst1):
            m.d.comb += [Assert(n_r == 0), Assert(p1 == 0), Assert(~r_rdy)]
        with m.If(rst0):
            m.d.comb += Assert(p0 == 0)
        # the chosen word in its cell while it is in the FIFO; r_data the cell it reads
        with m.If(dist(n_r, pick) < level):
            m.d.comb += Assert(Array(cells)[pick[:bits - 1]] == tag, "the chosen word's cell")
        with m.If(r_rdy):
            m.d.comb += [Assert(r_data == Array(cells)[cr_bin[:bits - 1]], "r_data"),
                         Assert(p1_bin != cr_bin, "r_rdy with no word seen")]
        return m


def prove_crossing_fifo(width: int, depth: int, workdir: Path, *, mode: str = "prove",
                        steps: int = 3, netlist: Path | None = None, metastable: bool = True,
                        invariants: bool | None = None,
                        timeout: float | None = None) -> PropertyResult:
    """Prove ``CrossingFIFO(width, depth)`` against :class:`CrossingFifoSpec`: k-induction at
    ``steps`` (``mode="prove"``, the invariants stated), a bounded check of ``steps`` solver
    steps from power-on (``mode="bmc"``, the four properties only unless ``invariants``), or
    a search for the covers (``mode="cover"``: a full FIFO, a word read after the memory
    wrapped; ``reached`` when both are, within ``steps``).
    ``netlist``: a Verilog module ``fifo`` to check instead (a variant with the FIFO's ports and
    names, e.g. :func:`crossing_fifo_netlist`'s text mutated). Returns a
    :class:`tb.formal.PropertyResult` named ``crossing-fifo`` (``where``: ``generator``); a
    failure's ``counterexample`` names the failed assertion (``problem``)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if netlist is None:
        netlist = crossing_fifo_netlist(width, depth, workdir / "crossing_fifo.v")
    if invariants is None:
        invariants = mode == "prove"
    name = f"crossing_fifo_w{width}_d{depth}"
    spec = CrossingFifoSpec(width, depth, metastable=metastable, invariants=invariants)
    status, seconds, task = run_sby(name, spec, workdir, mode=mode, depth=steps,
                                    sources=[netlist], prelude=crossing_fifo_prelude(depth),
                                    timeout=timeout, multiclock=True)
    kind = {"prove": "induction", "bmc": "bounded", "cover": "cover"}[mode]
    result = {"PASS": {"prove": "proved", "bmc": "passed", "cover": "reached"}[mode],
              "FAIL": "failed"}.get(status, "unknown")
    claim = (f"CrossingFIFO({width}, {depth}), two unrelated clocks, writes while "
             f"w_level < {depth - 1}: at most {depth} words, the n-th read the n-th written, "
             f"r_rdy only when not empty, w_level + the last write >= the level")
    out = PropertyResult("crossing-fifo", kind, steps, seconds, result, claim, where="generator")
    if result == "failed":
        log = (workdir / f"{name}.log").read_text()
        out.counterexample = {"problem": assert_message(log) or "an assertion failed"}
        vcds = sorted(task.glob("engine_*/*.vcd"))
        out.vcd = str(vcds[0]) if vcds else None
    return out

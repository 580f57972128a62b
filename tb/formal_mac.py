"""Proofs of the POST MAC layer (the pipeline's ``mode`` 1), split into pieces that compose.

The MAC as :class:`hdl.pipeline.AdcPipeline` builds it has no clock enable (``stall=False``):
:class:`hdl.post.POSTProducts` → :class:`hdl.post.MacAccumulator` →
:class:`hdl.post.OutputStage`, then the pipeline's FIFO. One miter of the whole layer against
its golden model is out of the solver's reach (a 16-input MAC did not finish in 500 s), so each
piece is checked on its own, with what the next piece assumes stated as a claim of the one
before it (:data:`MAC_CLAIMS`):

``mac-feed`` (netlist, induction)
    mode 1, free samples, ``valid``, ``outputs.ready`` and reset: the MAC's input takes a beat
    exactly ``L + 1`` clocks after each sample is admitted (``L``: ladder and decode) and no
    other, carrying the golden decoded values of that sample.
``mac-credits`` (netlist, induction)
    the same free inputs, with the MAC's writes into the FIFO replaced by the timing the next
    pieces prove (the ``outputs`` results of an inference written in the ``outputs`` clocks from
    ``latency`` after its last beat): the admission counts beats as the MAC does, two
    inferences' last beats are at least ``outputs`` clocks apart (the MAC's contract), the FIFO
    is never written while full (the contract ``mac-fifo`` assumes: a write leaves at most
    ``depth`` entries in it), its pointers agree with its level, and ``credits + results to
    come + FIFO entries`` is constant.
``mac-products`` (generator, exhaustive simulation)
    every activation value in every input position of every weight row, with idle clocks: each
    product equals :func:`adcforge.golden.ref_post_multiplier`, ``last`` marks each inference's
    final step, and each step leaves five clocks after its beat.
``mac-accumulate`` (generator, induction)
    the accumulators with the products as free inputs (bounded by the largest golden product):
    each inference's sums leave ``tree_levels + 3`` clocks after its last step, one per clock in
    output order, equal to ``bias + the sum of its products`` computed in the specification;
    none is overwritten before it left, none added.
``mac-output`` (generator, induction)
    a free accumulator value each clock: 3 clocks later the result is it shifted right with
    round half up and saturated to ``output_bits``, the rule written in the specification from
    the bits (floor shift plus the highest dropped bit), not as the hardware computes it.
``mac-fifo`` (generator, induction)
    the pipeline's result FIFO, a :class:`hdl.pipe.CreditFIFO` (its depth), free writes (as
    its writer's credits allow: a write leaves at most ``depth`` entries, ``depth - 1`` in the
    memory and one in the output register) and free reads: an entry chosen freely when written
    is read after exactly the entries written before it, and only then (none lost, duplicated
    or reordered), and its level and output register count the entries. The FIFO never looks
    at its data, so a 1-bit FIFO with the chosen entry marked covers every width (data
    independence); the invariants are stated on its memory cells and pointers (those of the
    codes FIFO, :func:`tb.formal.credit_fifo_invariants`). (A model FIFO beside it, as
    Amaranth's ``FIFOModelEquivalenceSpec`` has, is bounded; that form took over 10 minutes at
    this depth.)
``mac-hold`` (netlist, induction)
    a result offered on ``outputs`` and not taken is offered again unchanged.

Together: for every input stream and every ``outputs.ready`` pattern, the ``k``-th result
delivered is the golden result of its inference and output. The pieces proved on the generator
are the netlist's own when ``prove`` generates the netlist; with ``--verilog`` they are the
generator's modules (the report says which part was proved on what).

Sample lanes (``lanes = N``, ``prove(..., lanes=N)``): the pieces of the N-lane pipeline
(:func:`pipeline_mac`): its MAC takes the N samples' ``N * channels`` activations a beat
(``mac-feed``: every lane's golden decoded values, lane 0 first, channel-minor: the design's
input order; ``mac-products``: every activation in every input position of the wider beat) and
its accumulators give all ``outputs`` sums in one beat per inference, each through its own
:class:`hdl.post.OutputStage` (``mac-output`` proves one: they are the one generator with the
same parameters; lane ``k`` to output ``k`` is the generator's wiring, as the products to the
accumulators are); ``mac-credits`` and ``mac-fifo`` then count one result beat per inference.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from amaranth.asserts import AnySeq
from amaranth.hdl import (
    Array,
    Assert,
    Assume,
    Cat,
    ClockSignal,
    Const,
    Instance,
    Mux,
    ResetSignal,
    Signal,
    signed,
)
from adcforge.design import Design
from adcforge.golden import ref_post_multiplier

from .formal import (
    Netlist,
    PropertyResult,
    _Spec,
    _yosys,
    credit_fifo_invariants,
    credit_fifo_wires,
    lane_parts,
    lane_payload_bits,
    mac_output_width,
    pipeline_latency,
    ref_code_sorted,
    ref_codes_payload,
)

__all__ = ["AccumulatorSpec", "FifoOrderSpec", "MacCreditsSpec", "MacFeedSpec",
           "MacHoldSpec", "OutputStageSpec", "check_products", "mac_plan", "ref_output_rule",
           "run_products"]

MAC_SPLIT = ("MAC split: products by exhaustive simulation; accumulators (products free) and "
             "output stage (accumulator free) and result FIFO (1-bit, data-independent) by "
             "induction on the generator's modules; ladder-to-MAC feed, credits and output "
             "hold by induction on the netlist")

MAC_CLAIMS = {
    "mac-feed": "mode 1: each admitted sample reaches the MAC input {feed} clocks later as its "
                "golden decoded values, no other beat does; reset in any cycle",
    "mac-credits": "mode 1, any valid/ready/reset: the MAC gets its contract (beats counted as "
                   "it counts them, last beats >= {outputs} clocks apart), the FIFO is never "
                   "written while full, credits + results to come + FIFO entries = {credits}",
    "mac-products": "every activation x every weight position ({cases} products): equal to "
                    "golden.ref_post_multiplier, last on each inference's final step",
    "mac-accumulate": "free products, any valid pattern: each inference's sums leave in order "
                      "{acc_latency} clocks after its last step, = bias + its products; none "
                      "overwritten, none added",
    "mac-output": "free accumulator value: 3 clocks later, shifted {shift} with round half up "
                  "and saturated to {bits} bits",
    "mac-fifo": "the result FIFO (CreditFIFO, depth {fifo_depth}), any reads, writes within "
                "its room: an entry chosen when written is read after exactly the entries "
                "before it; none lost, duplicated or reordered; the level counts them",
    "mac-hold": "any valid/ready/reset: a result offered on outputs and not taken stays, "
                "unchanged",
}


def pipeline_mac(design: Design, lanes: int = 1, runtime: bool = False):
    """Return the pipeline that ``adcforge verilog`` builds for ``design`` with ``lanes``
    sample lanes and (``runtime``) runtime thresholds, whose ladder's latency sets the credits
    (its MAC, credits, FIFO depth), constructed for its parameters and parts."""
    from hdl.pipeline import AdcPipeline

    pipe = AdcPipeline(design, lanes=lanes, runtime_thresholds=runtime)
    mac = pipe.mac
    for part in (pipe, pipe.ladder, pipe.decode, mac, mac.products, mac.accumulator,
                 *mac.output_stages):
        part._MustUse__silence = True  # built for its numbers and parts, not all elaborated
    return pipe


# -- the output stage ------------------------------------------------------------------------------

def ref_output_rule(acc, shift: int, bits: int):
    """Return ``acc`` shifted right by ``shift`` with round half up, saturated to ``bits``
    signed (:func:`adcforge.golden.ref_output_stage`), from the bits: the floor of the shift
    plus one when the highest dropped bit is set (the dropped part is at least one half)."""
    if shift:
        rounded = (acc >> shift) + acc[shift - 1]
    else:
        rounded = acc
    hi, lo = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
    return Mux(rounded > hi, hi, Mux(rounded < lo, lo, rounded))


class OutputStageSpec(_Spec):
    """An :class:`hdl.post.OutputStage`, never stalled (as in the pipeline): a free accumulator
    value each clock leaves ``latency`` clocks later as :func:`ref_output_rule`, and only a
    value that came in leaves. k-inductive at ``latency + 1``."""

    def __init__(self, stage, latency: int = 3):
        super().__init__()
        self.stage, self.latency = stage, latency

    def elaborate(self, platform):
        m = self.module()
        m.submodules.dut = dut = self.stage
        acc = Signal(signed(dut.acc_bits))
        valid = Signal()
        m.d.comb += [acc.eq(AnySeq(dut.acc_bits)), valid.eq(AnySeq(1)),
                     dut.i.payload.eq(acc), dut.i.valid.eq(valid), dut.o.ready.eq(1)]
        m.d.comb += Assert(dut.i.ready, "the output stage stalled")
        ref_valid = [Signal(name=f"ref_valid_{s}") for s in range(self.latency)]
        ref_acc = [Signal(signed(dut.acc_bits), name=f"ref_acc_{s}") for s in range(self.latency)]
        m.d.sync += [ref_valid[0].eq(valid), ref_acc[0].eq(acc)]
        for s in range(1, self.latency):
            m.d.sync += [ref_valid[s].eq(ref_valid[s - 1]), ref_acc[s].eq(ref_acc[s - 1])]
        expected = Signal(signed(dut.output_bits))
        m.d.comb += expected.eq(ref_output_rule(ref_acc[-1], dut.output_shift, dut.output_bits))
        m.d.comb += Assert(dut.o.valid == ref_valid[-1], "a result lost, added or late")
        with m.If(dut.o.valid):
            m.d.comb += Assert(dut.o.payload == expected, "a result rounded or saturated wrong")
        return m


# -- the accumulators ------------------------------------------------------------------------------

class AccumulatorSpec(_Spec):
    """An :class:`hdl.post.MacAccumulator` without stalls, its products free inputs (each at
    most ``bound`` in magnitude, the largest golden product), ``last`` on every
    ``steps``-th step and last steps at least ``output_beats`` clocks apart (the claims of the
    products and of the admission): the reference sums are computed here from the same free
    products, and the results must leave as the reference says. The induction's invariants tie
    the whole state to the reference's every cycle: the ring (the value of its carry-save
    parts) equals the running reference sums (each within its products so far times ``bound``
    of its bias), the final bank the reference's sums the clock after a last step, the output
    buffer and its counters the reference's a clock later (its output register one more), and
    the spacing counter ``since_last`` the clocks since the newest
    last step (in the delay line before the ring, or the reference's own); so it closes at depth
    ``tree_levels + 3`` however many steps an inference takes and however many clocks its
    results take to leave."""

    def __init__(self, acc, *, steps: int, bound: int):
        super().__init__()
        self.acc, self.steps, self.bound = acc, steps, bound

    def elaborate(self, platform):
        m = self.module()
        m.submodules.dut = dut = self.acc
        G, L, P, K = dut.groups, dut.mac_lanes, dut.in_lanes, dut.out_lanes
        R, N, S, T = dut.output_beats, dut.outputs, self.steps, dut.tree_levels
        wide = signed(dut.acc_bits + 2)  # the reference cannot wrap where the netlist would
        prods = [[Signal(dut.product_shape, name=f"product_{p}_{lane}") for lane in range(L)]
                 for p in range(P)]
        valid = Signal()
        m.d.comb += valid.eq(AnySeq(1))
        for p in range(P):
            for lane in range(L):
                m.d.comb += [prods[p][lane].eq(AnySeq(len(prods[p][lane]))),
                             dut.i.payload.products[p][lane].eq(prods[p][lane]),
                             Assume((prods[p][lane] <= self.bound) &
                                    (prods[p][lane] >= -self.bound))]
        count = Signal(range(S), name="step")  # steps since reset, modulo an inference's
        last = Signal()
        m.d.comb += [last.eq(count == S - 1), dut.i.valid.eq(valid),
                     dut.i.payload.last.eq(last), dut.o.ready.eq(1)]
        m.d.comb += Assert(dut.i.ready, "the accumulators stalled")
        with m.If(valid):
            m.d.sync += count.eq(Mux(last, 0, count + 1))
        since = Signal(range(R + 1), init=R, name="since_last")  # clocks since a last step
        m.d.sync += since.eq(Mux(valid & last, 1, Mux(since == R, R, since + 1)))
        m.d.comb += Assume(~(valid & last) | (since == R))

        # The reference sees each step when the ring does: T clocks later.
        def delayed(value, name, line=None):
            for t in range(T):
                reg = Signal.like(value, name=f"{name}_d{t + 1}")
                m.d.sync += reg.eq(value)
                value = reg
                if line is not None:
                    line[t + 1] = reg
            return value
        line_valid, line_step = {}, {}  # the delay line's stages, k clocks ago
        r_valid = delayed(valid, "valid", line_valid)
        r_count = delayed(count, "step", line_step)
        r_prods = [[delayed(prods[p][lane], f"product_{p}_{lane}") for lane in range(L)]
                   for p in range(P)]
        group_of = Array(Const(n % G, range(G)) for n in range(S))
        r_group = Signal(range(G), name="r_group")
        m.d.comb += r_group.eq(group_of[r_count])
        r_last = Signal()
        m.d.comb += r_last.eq(r_valid & (r_count == S - 1))
        contrib = [Signal(wide, name=f"contrib_{lane}") for lane in range(L)]
        for lane in range(L):
            total = sum((r_prods[p][lane] for p in range(P)), start=Const(0, wide))
            m.d.comb += contrib[lane].eq(total)
        outputs = [(g, lane) for g in range(G) for lane in range(L) if g * L + lane < N]
        bias = [int(b) for b in dut.bias]
        ref = {(g, lane): Signal(wide, init=bias[g * L + lane], name=f"ref_g{g}_l{lane}")
               for g, lane in outputs}
        sums = {(g, lane): Signal(wide, name=f"sum_g{g}_l{lane}") for g, lane in outputs}
        for (g, lane), s in sums.items():
            m.d.comb += s.eq(ref[g, lane] + Mux(r_valid & (r_group == g), contrib[lane], 0))
        with m.If(r_valid):
            for (g, lane), s in ref.items():
                m.d.sync += s.eq(Mux(r_last, bias[g * L + lane], sums[g, lane]))

        # The output buffer as the contract says: an inference's N sums, K per clock, in order.
        ebuf = [Signal(wide, name=f"expected_{j}") for j in range(N)]
        ebusy = Signal(name="expected_busy")
        ecount = Signal(range(R), name="expected_count")
        with m.If(ebusy):
            m.d.sync += [a.eq(b) for a, b in zip(ebuf, ebuf[K:])]
            m.d.sync += ecount.eq(Mux(ecount == R - 1, 0, ecount + 1))
            with m.If(ecount == R - 1):
                m.d.sync += ebusy.eq(0)
        with m.If(r_last):
            m.d.comb += Assert(~ebusy | (ecount == R - 1),
                               "an inference's results were overwritten before they left")
            m.d.sync += [ebusy.eq(1), ecount.eq(0)]
            m.d.sync += [ebuf[g * L + lane].eq(sums[g, lane]) for g, lane in outputs]

        # The accumulator's buffer is the contract's one clock later (its sums go through the
        # final bank first).
        ebuf_d = [Signal(wide, name=f"expected_d_{j}") for j in range(N)]
        ebusy_d = Signal(name="expected_busy_d")
        ecount_d = Signal(range(R), name="expected_count_d")
        m.d.sync += [ebusy_d.eq(ebusy), ecount_d.eq(ecount)]
        m.d.sync += [a.eq(b) for a, b in zip(ebuf_d, ebuf)]
        # ... and its output register (where the pending carries are added) another clock later.
        eout = [Signal(wide, name=f"expected_out_{k}") for k in range(K)]
        evalid = Signal(name="expected_valid")
        m.d.sync += [evalid.eq(ebusy_d)] + [a.eq(b) for a, b in zip(eout, ebuf_d)]
        m.d.comb += Assert(dut.o.valid == evalid, "a result lost, added or late")
        with m.If(evalid):
            for k in range(K):
                got = dut.o.payload if K == 1 else dut.o.payload[k]
                m.d.comb += Assert(got == eout[k], "a sum differs from bias + its products")
        # Invariants: the netlist's state is the reference's (and the counters in range).
        m.d.comb += [Assert(dut.out_busy == ebusy_d), Assert(ecount < R), Assert(since <= R),
                     Assert(count < S)]
        with m.If(ebusy_d):
            m.d.comb += Assert(dut.out_count == ecount_d)
            for j in range(N):
                with m.If(ecount_d * K + j < N):
                    m.d.comb += Assert(dut.out_buf[j] == ebuf_d[j])
        # ... the spacing of the last steps: ``r_since`` counts the clocks since the reference
        # took a last step (the buffer is busy for the R clocks after it); ``since`` counts from
        # the newest last step, in the delay line (``pending[k]``: taken k clocks ago, the
        # reference seeing it in T - k) or, with none there, the reference's.
        r_since = Signal(range(R + 2), init=R + 1, name="r_since_last")
        m.d.sync += r_since.eq(Mux(r_last, 1, Mux(r_since == R + 1, R + 1, r_since + 1)))
        m.d.comb += [Assert(ebusy == (r_since <= R)), Assert((r_since >= 1) & (r_since <= R + 1))]
        with m.If(ebusy):
            m.d.comb += Assert(ecount == r_since - 1)
        # ... the final bank: the clock after a last step it holds the sums, and it fills the
        # buffer
        m.d.comb += Assert(dut.fill == (r_since == 1))
        with m.If(r_since == 1):
            for g, lane in outputs:
                m.d.comb += Assert(dut.final[g][lane] == ebuf[g * L + lane],
                                   "a final sum differs from bias + its products")
        pending = [r_last if k == T else (line_valid[k] & (line_step[k] == S - 1))
                   for k in range(1, T + 1)]  # pending[k - 1]: a last step taken k clocks ago
        newest = Mux(r_since + T >= R, R, r_since + T)
        for k in range(T, 0, -1):  # the newest last step in the line is the one that counts
            newest = Mux(pending[k - 1], min(k, R), newest)
        m.d.comb += Assert(since == newest)
        for j in range(1, T + 1):
            for k in range(j + 1, min(j + R, T + 1)):
                m.d.comb += Assert(~(pending[j - 1] & pending[k - 1]))
            with m.If(pending[j - 1] & ~Cat(*pending[j:]).any() if j < T else pending[j - 1]):
                m.d.comb += Assert(r_since + T - j >= R)  # the one before: R or more earlier
        # ... and each reference sum lies within bias +- (its products so far) * bound, so that
        # neither wraps.
        for (g, lane), s in ref.items():
            most = Array(Const(max(0, -(-(n - g) // G)) * P * self.bound, wide)
                         for n in range(S))[r_count]
            b = bias[g * L + lane]
            m.d.comb += Assert((s - b <= most) & (b - s <= most))
        for v in range(G):  # ring[k] holds group (done + k) mod G, done: the next step's group
            with m.If(r_group == v):
                for k in range(G):
                    for lane in range(L):
                        g = (v + k) % G
                        if (g, lane) in ref:
                            m.d.comb += Assert(dut.ring[k][lane] == ref[g, lane],
                                               "an accumulator differs from its reference")
        return m


# -- the products (simulation) ---------------------------------------------------------------------

def check_products(products, *, sign=None, exponent=None, idle_every: int = 7,
                   max_mismatches: int = 5) -> dict:
    """Simulate a :class:`hdl.post.POSTProducts` (never stalled, as in the pipeline) over every
    activation value in every input position: inference ``v`` gives input ``i`` the activation
    ``(v + 37 i) mod 2**W - 2**(W-1)``, for ``v`` in ``range(2**W)``, with an idle clock every
    ``idle_every`` clocks; the golden products are those of ``sign``/``exponent`` (default: the
    block's own weights). Return ``checked``, ``mismatches``, ``first`` (the first mismatches)
    and ``seconds``."""
    from amaranth.sim import Simulator

    start = time.perf_counter()
    W, q = products.width, products.q
    G, L, P, B = products.groups, products.mac_lanes, products.in_lanes, products.beats
    half = 2 ** (W - 1)
    sign = products.sign if sign is None else np.asarray(sign)
    exponent = products.exponent if exponent is None else np.asarray(exponent)
    n_out = sign.shape[0]
    inferences = 2 ** W

    def act(v, i):
        return (v + 37 * i) % (2 * half) - half

    expected = []  # per step: (products[p][lane] list, last)
    for v in range(inferences):
        for b in range(B):
            for g in range(G):
                row = []
                for p in range(P):
                    i = b * P + p
                    for lane in range(L):
                        j = g * L + lane
                        row.append(int(ref_post_multiplier(act(v, i), sign[j, i], exponent[j, i],
                                                           W, q)) if j < n_out else 0)
                expected.append((row, b == B - 1 and g == G - 1))
    report = {"checked": 0, "mismatches": 0, "first": []}

    async def bench(ctx):
        got = []
        clock = 0
        beats = [(v, b) for v in range(inferences) for b in range(B)]
        k = 0
        ctx.set(products.o.ready, 1)
        while len(got) < len(expected):
            clock += 1
            if k < len(beats) and clock % idle_every:
                v, b = beats[k]
                acts = [act(v, b * P + p) for p in range(P)]
                ctx.set(products.i.payload, acts[0] if P == 1 else acts)
                ctx.set(products.i.valid, 1)
            else:
                ctx.set(products.i.valid, 0)
            await ctx.delay(0)
            taken = ctx.get(products.i.valid) and ctx.get(products.i.ready)
            if ctx.get(products.o.valid):
                payload = ctx.get(products.o.payload)
                row = [int(payload.products[p][lane]) for p in range(P) for lane in range(L)]
                got.append((row, bool(payload.last)))
            if taken:
                k += 1
            await ctx.tick()
        for n, (g, e) in enumerate(zip(got, expected)):
            report["checked"] += len(e[0])
            if g != e:
                report["mismatches"] += 1
                if len(report["first"]) < max_mismatches:
                    report["first"].append({"step": n, "expected": e, "got": g})

    sim = Simulator(products)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    report["seconds"] = time.perf_counter() - start
    report["steps"] = len(expected)
    return report


# -- the result FIFO -------------------------------------------------------------------------------

def fifo_netlist(depth: int, path: Path, fifo=None) -> Path:
    """Write the pipeline's result FIFO, a 1-bit :class:`hdl.pipe.CreditFIFO` of ``depth``
    (see :class:`FifoOrderSpec`; ``fifo``: another FIFO with its ports and names), as Verilog
    module ``fifo``."""
    from amaranth.back import verilog

    from hdl.pipe import CreditFIFO

    fifo = CreditFIFO(1, depth) if fifo is None else fifo
    path.write_text(verilog.convert(fifo, name="fifo", emit_src=False))
    return path


def fifo_prelude(depth: int) -> str:
    """Return the yosys commands that map the FIFO's memory to registers and expose them and
    its pointers (the induction's invariants are stated on them)."""
    wires = " ".join(f"fifo/w:{w}" for w in credit_fifo_wires("", depth))
    return f"hierarchy -top fifo\nproc\nflatten\nmemory_map\nopt_clean\nexpose {wires}"


def fifo_room(depth: int, level, out_valid, delivered):
    """The result FIFO's contract with its writer: a write in this cycle leaves at most
    ``depth`` entries (``depth - 1`` in the memory, one in the output register)."""
    return level + out_valid - delivered <= depth - 1


class FifoOrderSpec(_Spec):
    """The pipeline's result FIFO (a :class:`hdl.pipe.CreditFIFO` of its depth), free reads
    and free writes within its room (:func:`fifo_room`, what the credits guarantee): one entry,
    chosen freely when it is written, is read after exactly the entries that were in the FIFO
    before it, and then only; its level plus its output register count the entries written
    and not read. The FIFO's logic does not look at the data and each data bit has its own
    memory column with the same pointers, so marking the chosen entry 1 and every other 0 in a
    1-bit FIFO of the same depth covers every width (data independence). k-inductive, with
    invariants on the memory cells and pointers (``storage[k]``, ``produce``, ``consume``,
    ``level``, ``nonempty``, exposed; :func:`tb.formal.credit_fifo_invariants`)."""

    def __init__(self, depth: int):
        super().__init__()
        self.depth = depth

    def elaborate(self, platform):
        m = self.module()
        D = self.depth
        w_en, w_data, w_rdy = Signal(name="w_en"), Signal(name="w_data"), Signal(name="w_rdy")
        r_en, r_data, r_rdy = Signal(name="r_en"), Signal(name="r_data"), Signal(name="r_rdy")
        cells = [Signal(name=f"cell_{k}") for k in range(D)]
        produce, consume = Signal(range(D), name="produce"), Signal(range(D), name="consume")
        level, nonempty = Signal(range(D), name="level"), Signal(name="nonempty")
        m.submodules.dut = Instance(
            "fifo", i_clk=ClockSignal(), i_rst=ResetSignal(), i_i__valid=w_en,
            i_i__payload=w_data, o_i__ready=w_rdy, o_o__valid=r_rdy, o_o__payload=r_data,
            i_o__ready=r_en, o_produce=produce, o_consume=consume, o_level=level,
            o_nonempty=nonempty, **{f"o_storage[{k}]": c for k, c in enumerate(cells)})
        choose = Signal()
        m.d.comb += [w_en.eq(AnySeq(1)), r_en.eq(AnySeq(1)), choose.eq(AnySeq(1))]
        write, take = w_en, r_en & r_rdy
        m.d.comb += Assume(~write | fifo_room(D, level, r_rdy, take))
        m.d.comb += Assert(w_rdy, "the FIFO refused a write")
        # phase 0: the chosen entry not written yet; 1: in the FIFO, ``ahead`` entries before
        # it; 2: read.
        phase = Signal(range(3), name="phase")
        ahead = Signal(range(D + 1), name="ahead")
        # One entry is ever chosen (after any number of resets): a reset does not clear the
        # memory, so a second chosen entry could meet the first's stale copy.
        chosen_once = Signal(name="chosen_once", reset_less=True)
        pick = Signal()
        m.d.comb += [pick.eq((phase == 0) & choose & ~chosen_once & ~ResetSignal()),
                     w_data.eq(pick)]
        entries = level + r_rdy
        with m.If(write & pick):
            m.d.sync += [phase.eq(1), ahead.eq(entries - take), chosen_once.eq(1)]
        with m.If(take):
            with m.If((phase == 1) & (ahead == 0)):
                m.d.sync += phase.eq(2)
                m.d.comb += Assert(r_data, "the chosen entry was lost or overtaken")
            with m.Else():
                m.d.comb += Assert(~r_data, "an entry read out of order, or twice")
            with m.If((phase == 1) & (ahead != 0)):
                m.d.sync += ahead.eq(ahead - 1)
        count = Signal(range(D + 1), name="entries")
        m.d.sync += count.eq(count + write - take)
        m.d.comb += Assert(entries == count, "the level miscounts the entries")
        # Invariants: the FIFO's own (the codes FIFO's), and where the chosen entry is.
        m.d.comb += credit_fifo_invariants(D, produce, consume, level, nonempty)
        # ``slot``: the memory cell it was written to (kept across resets: a reset does not
        # clear the memory); no other cell holds a 1.
        slot = Signal(range(D), name="slot", reset_less=True)
        with m.If(write & pick):
            m.d.sync += slot.eq(produce)
        with m.If(~chosen_once):
            m.d.comb += Assert(phase == 0)
        for k in range(D):
            with m.If(~chosen_once | (slot != k)):
                m.d.comb += Assert(~cells[k])
        place = Signal(range(D), name="slot_place")  # the slot's place after consume
        m.d.comb += place.eq((slot - consume)[:len(place)])
        in_memory = (phase == 1) & ~(r_rdy & (ahead == 0))
        with m.If(in_memory):
            m.d.comb += [Assert(Array(cells)[slot]),
                         Assert(place + r_rdy == ahead), Assert(place < level)]
        with m.Elif(Array(cells)[slot]):
            m.d.comb += Assert(place >= level)  # a stale copy, outside the live cells
        with m.If(phase == 1):
            m.d.comb += Assert(ahead < entries)
        with m.If(r_rdy):
            m.d.comb += Assert(r_data == ((phase == 1) & (ahead == 0)))
        return m


# -- the pipeline netlist in mode 1 ----------------------------------------------------------------

# Wires of the pipeline netlist (after flattening) that the mode-1 specifications read, by their
# generator names; ``out_fifo.i__valid``/``i__payload`` are cut: the specification drives the
# FIFO's write side with the MAC's proved timing (so the MAC's logic drops out of the problem).
FIFO_WIRES = tuple(credit_fifo_wires("out_fifo."))
MAC_WIRES = ("act_valid", "mac.products.i__payload", "beat_index", "last_beat", "last_gap",
             "last_gap_zero", "credits", "credit_ok") + FIFO_WIRES
MAC_CUTS = ("out_fifo.i__valid", "out_fifo.i__payload")


def bank_wires(design: Design) -> tuple[str, ...]:
    """The runtime ladder's threshold banks and write-port registers (after flattening): in
    mode 1, with the write port off, they keep the design's thresholds (:class:`_ModeOneHarness`
    states it, for the induction)."""
    n = len(design.thresholds)
    return (tuple(f"ladder.thr_{bank}_{k}" for bank in ("active", "shadow") for k in range(n))
            + ("ladder.write_one_hot", "ladder.commit"))


def mac_wires(netlist: Netlist, workdir: Path, bank: tuple[str, ...] = ()
              ) -> dict[str, int] | None:
    """Return the widths of :data:`MAC_WIRES`, :data:`MAC_CUTS` and ``bank`` (a runtime
    build's :func:`bank_wires`) in the flattened netlist, or None when it lacks a wire it needs
    (a netlist without the generator's names)."""
    names = flat_netnames(netlist, workdir)
    found = {n: len(names[n]["bits"]) for n in MAC_WIRES + MAC_CUTS + bank if n in names}
    # zero-width counters (one beat per inference, one output) are absent
    need = (("act_valid", "mac.products.i__payload", "credits", "credit_ok") + FIFO_WIRES
            + MAC_CUTS + bank)
    return found if all(n in found for n in need) else None


def flat_netnames(netlist: Netlist, workdir: Path) -> dict:
    """Return the net names of the flattened netlist (yosys ``write_json``), read once."""
    path = workdir / "flat.json"
    if not path.exists() or path.stat().st_mtime < netlist.path.stat().st_mtime:
        _yosys(f"read_verilog -sv netlist.v; hierarchy -top {netlist.top}; proc; flatten; "
               "write_json -noscopeinfo flat.json", workdir)
    import json
    return json.loads(path.read_text())["modules"][netlist.top]["netnames"]


def mac_prelude(netlist: Netlist, wires: dict[str, int]) -> str:
    """Return the yosys commands that flatten the netlist, expose ``wires`` (:func:`mac_wires`)
    as outputs and cut :data:`MAC_CUTS` into inputs."""
    top = netlist.top
    seen = " ".join(f"{top}/w:{n}" for n in wires if n not in MAC_CUTS)
    cut = " ".join(f"{top}/w:{n}" for n in MAC_CUTS)
    return f"hierarchy -top {top}\nproc\nflatten\nexpose {seen}\nexpose -input {cut}"


class _ModeOneHarness:
    """The pipeline netlist in a specification, in mode 1: free samples, ``valid``,
    ``outputs.ready`` (unless given) and reset; ``codes.ready`` free (unused in mode 1);
    threshold writes off for a runtime build, whose banks (exposed, :func:`bank_wires`) then
    hold the design's thresholds. ``wire(name)`` is an exposed wire; the FIFO's
    write side is driven by ``w_en``/``w_data``. With ``lanes``, ``sample`` is the input beat
    (lane 0 in the low bits) and ``out_payload`` one inference's results."""

    def __init__(self, m, design: Design, top: str, wires: dict[str, int], *, runtime=False,
                 w_en=None, w_data=None, lanes: int = 1):
        self.design = design
        self.sample = Signal(design.input_bits * lanes, name="sample")
        self.in_valid, self.in_ready = Signal(name="in_valid"), Signal(name="in_ready")
        self.out_valid, self.out_ready = Signal(name="out_valid"), Signal(name="out_ready")
        self.out_payload = Signal(mac_output_width(design, lanes), name="out_payload")
        m.d.comb += [self.sample.eq(AnySeq(len(self.sample))), self.in_valid.eq(AnySeq(1)),
                     self.out_ready.eq(AnySeq(1))]
        self.accepted = self.in_valid & self.in_ready
        self.delivered = self.out_valid & self.out_ready
        self.wires = {n: Signal(w, name="dut_" + n.replace(".", "_")) for n, w in wires.items()
                      if n not in MAC_CUTS}
        w_en = Signal(name="fifo_w_en") if w_en is None else w_en
        w_data = (Signal(wires["out_fifo.i__payload"], name="fifo_w_data") if w_data is None
                  else w_data)
        self.w_en, self.w_data = w_en, w_data
        ports = {"i_clk": ClockSignal(), "i_rst": ResetSignal(), "i_i__payload": self.sample,
                 "i_i__valid": self.in_valid, "o_i__ready": self.in_ready, "i_mode": Const(1, 1),
                 "i_codes__ready": AnySeq(1),
                 "o_codes__payload": Signal(lane_payload_bits(design) * lanes,
                                            name="codes_payload"),
                 "o_codes__valid": Signal(name="codes_valid"),
                 "o_outputs__payload": self.out_payload, "o_outputs__valid": self.out_valid,
                 "i_outputs__ready": self.out_ready,
                 "i_out_fifo.i__valid": w_en, "i_out_fifo.i__payload": w_data}
        if runtime:
            ports.update({"i_thr__addr": Const(0, max(design.bits, 1)),
                          "i_thr__data": Const(0, design.input_bits), "i_thr__we": Const(0, 1),
                          "i_thr__commit": Const(0, 1)})
            n = len(design.thresholds)
            for k, t in enumerate(design.thresholds):
                for bank in ("active", "shadow"):
                    m.d.comb += Assert(self.wire(f"ladder.thr_{bank}_{k}") == t,
                                       f"threshold {k}: {bank} bank changed with writes off")
            m.d.comb += [Assert(self.wire("ladder.write_one_hot") == Const(0, n)),
                         Assert(~self.wire("ladder.commit"))]
        ports.update({f"o_{n}": s for n, s in self.wires.items()})
        m.submodules.dut = Instance(top, **ports)

    def wire(self, name):
        return self.wires[name]


def _delay_line(m, value, length: int, name: str):
    """Return ``value`` delayed by 1, 2, ..., ``length`` clocks (registers reset with the DUT)."""
    regs = []
    for k in range(length):
        reg = Signal.like(value, name=f"{name}_{k + 1}")
        m.d.sync += reg.eq(value if k == 0 else regs[-1])
        regs.append(reg)
    return regs


class MacFeedSpec(_Spec):
    """Mode 1: the MAC's input takes a beat ``feed`` clocks after each admitted sample, and
    only then, carrying the sample's golden decoded values (with ``lanes``: every lane's, in
    lane order, channel-minor: the design's input order). k-inductive at ``feed + 1``."""

    def __init__(self, design: Design, top: str, wires, *, feed: int, runtime: bool = False,
                 lanes: int = 1):
        super().__init__(lanes)
        self.design, self.top, self.wires, self.feed = design, top, wires, feed
        self.runtime = runtime

    def elaborate(self, platform):
        m = self.module()
        d = self.design
        h = _ModeOneHarness(m, d, self.top, self.wires, runtime=self.runtime, lanes=self.lanes)
        m.d.comb += [h.w_en.eq(AnySeq(1)), h.w_data.eq(AnySeq(len(h.w_data)))]
        values = Signal(d.channels * d.decode.width * self.lanes)
        m.d.comb += values.eq(Cat(*(ref_codes_payload(d, ref_code_sorted(x, d.thresholds))
                                    [d.bits:]
                                    for x in lane_parts(h.sample, d.input_bits, self.lanes))))
        adm = _delay_line(m, h.accepted, self.feed, "ref_valid")
        exp = _delay_line(m, values, self.feed, "ref_values")
        mac_valid, mac_payload = h.wire("act_valid"), h.wire("mac.products.i__payload")
        m.d.comb += Assert(mac_valid == adm[-1], "a beat lost, added or late at the MAC input")
        with m.If(mac_valid):
            m.d.comb += Assert(mac_payload == exp[-1], "the MAC got wrong decoded values")
        return m


class MacCreditsSpec(_Spec):
    """Mode 1, free samples, ``valid``, ``outputs.ready`` and reset, the MAC's writes into the
    FIFO as its pieces prove them (the ``outputs`` results of an inference in consecutive
    clocks from ``mac_latency`` after its last beat reached the MAC): the beat count equals the
    MAC's, last beats are admitted at least ``outputs`` clocks apart, the FIFO is never written
    while full (:func:`fifo_room`, what ``mac-fifo`` assumes of its writer; ``fifo_depth``: the
    netlist's FIFO's), its pointers agree with its level, and ``credits + results to come +
    FIFO entries`` (its level and its output register) equals the credits at reset.
    k-inductive (the claims are the invariants)."""

    def __init__(self, design: Design, top: str, wires, *, feed: int, mac_latency: int,
                 beats: int, output_beats: int, credits: int, fifo_depth: int,
                 runtime: bool = False, lanes: int = 1):
        super().__init__(lanes)
        self.fifo_depth = fifo_depth
        self.design, self.top, self.wires = design, top, wires
        self.feed, self.mac_latency = feed, mac_latency
        self.beats, self.R, self.credits, self.runtime = beats, output_beats, credits, runtime

    def elaborate(self, platform):
        m = self.module()
        B, R, C = self.beats, self.R, self.credits
        w_en = Signal(name="fifo_w_en")
        h = _ModeOneHarness(m, self.design, self.top, self.wires, runtime=self.runtime,
                            w_en=w_en, lanes=self.lanes)
        m.d.comb += h.w_data.eq(AnySeq(len(h.w_data)))
        # Beats admitted since reset, modulo an inference's: the netlist's beat_index.
        count = Signal(range(B), name="admitted")
        is_last = Signal()
        m.d.comb += is_last.eq(h.accepted & (count == B - 1))
        with m.If(h.accepted):
            m.d.sync += count.eq(Mux(count == B - 1, 0, count + 1))
        if B > 1:
            m.d.comb += Assert(h.wire("beat_index") == count, "the beat count differs")
            if "last_beat" in self.wires:  # the registered flag of the next beat being last
                m.d.comb += Assert(h.wire("last_beat") == (count == B - 1))
        since = Signal(range(R + 1), init=R, name="since_last")  # clocks since a last beat
        m.d.sync += since.eq(Mux(is_last, 1, Mux(since == R, R, since + 1)))
        with m.If(is_last):
            m.d.comb += Assert(since == R, "two last beats fewer than outputs clocks apart")
        if R > 1:
            m.d.comb += Assert(h.wire("last_gap") == R - since)
            if "last_gap_zero" in self.wires:
                m.d.comb += Assert(h.wire("last_gap_zero") == (since == R))
        # The MAC's input and its writes, by the proved timings.
        adm = _delay_line(m, h.accepted, self.feed, "ref_valid")
        m.d.comb += Assert(h.wire("act_valid") == adm[-1],
                           "a beat lost, added or late at the MAC input")
        first = self.feed + self.mac_latency  # clocks from admission to the first write
        lasts = _delay_line(m, is_last, first + R - 1, "last")  # lasts[k]: admitted k+1 ago
        writing = lasts[first - 1:first - 1 + R]  # the r-th result this clock
        m.d.comb += w_en.eq(Cat(*writing).any())
        # (invariants: the last beats in flight are as far apart as admitted, and ``since``
        # counts from the latest)
        for k in range(len(lasts)):
            for gap in range(1, R):
                if k + gap < len(lasts):
                    m.d.comb += Assert(~(lasts[k] & lasts[k + gap]))
            if k < R - 1:
                m.d.comb += Assert(~lasts[k] | (since == k + 1))
        pending = Signal(range(C * 4 + 1), name="results_to_come")
        m.d.comb += pending.eq(sum(Mux(b, R, 0) for b in lasts[:first - 1])
                               + sum(Mux(b, R - r, 0) for r, b in enumerate(writing)))
        # the FIFO's entries: its memory's level and its output register
        credits, level = h.wire("credits"), h.wire("out_fifo.level")
        m.d.comb += Assert(credits + pending + level + h.out_valid == C,
                           "credits + results to come + FIFO entries changed")
        with m.If(w_en):  # the contract mac-fifo assumes
            m.d.comb += Assert(fifo_room(self.fifo_depth, level, h.out_valid, h.delivered),
                               "a result written into a full FIFO")
        # the FIFO's pointers, level and flag agree (its memory holds at most depth - 1)
        m.d.comb += credit_fifo_invariants(
            self.fifo_depth, *(h.wire(f"out_fifo.{n}")
                               for n in ("produce", "consume", "level", "nonempty")))
        previous = Signal(range(C + 1), init=C, name="previous_credits")
        m.d.sync += previous.eq(credits)
        m.d.comb += Assert(h.wire("credit_ok") == (previous >= 2 * R))
        return m


class MacHoldSpec(_Spec):
    """Mode 1, free everything: a result offered on ``outputs`` and not taken is offered again
    in the next cycle, unchanged (unless the pipeline is reset). k-inductive at 2."""

    def __init__(self, design: Design, top: str, wires, *, runtime: bool = False,
                 lanes: int = 1):
        super().__init__(lanes)
        self.design, self.top, self.wires, self.runtime = design, top, wires, runtime

    def elaborate(self, platform):
        m = self.module()
        h = _ModeOneHarness(m, self.design, self.top, self.wires, runtime=self.runtime,
                            lanes=self.lanes)
        m.d.comb += [h.w_en.eq(AnySeq(1)), h.w_data.eq(AnySeq(len(h.w_data)))]
        held = Signal()
        held_payload = Signal.like(h.out_payload)
        m.d.sync += [held.eq(h.out_valid & ~h.out_ready), held_payload.eq(h.out_payload)]
        m.d.comb += Assert(~held | h.out_valid, "a result not taken disappeared")
        with m.If(held):
            m.d.comb += Assert(h.out_payload == held_payload, "a result not taken changed")
        return m


# -- the plan --------------------------------------------------------------------------------------

def assert_message(log_text: str) -> str | None:
    """Return the message of the first failed assertion that sby's log names (file:line)."""
    import re

    mo = re.search(r"Assert failed in \S+: (\S+):(\d+)", log_text)
    if not mo:
        return None
    try:
        lines = Path(mo.group(1)).read_text().splitlines()
    except OSError:
        return None
    line = int(mo.group(2)) - 1
    text = " ".join(lines[line:line + 2])
    found = re.search(r',\s*"([^"]+)"\)', text)
    return found.group(1) if found else lines[line].strip()


def _mac_counterexample(prop: str, task: Path, workdir: Path) -> tuple[dict | None, str | None]:
    """Describe a failed MAC property: the failed assertion and the handshake pattern."""
    from .formal import read_vcd

    log = workdir / f"{prop}.log"
    message = assert_message(log.read_text()) if log.exists() else None
    vcd = task / "engine_0" / "trace.vcd"
    if not vcd.exists():
        return ({"cycle": 0, "problem": message or "see the log", "pattern": {}}, None)
    steps = read_vcd(vcd)
    names = [n for n in ("in_valid", "in_ready", "out_valid", "out_ready", "valid", "w_en", "r_en")
             if any(n in s for s in steps)]
    pattern = {n: "".join(str(s.get(n, 0)) for s in steps) for n in names}
    ce = {"cycle": len(steps) - 1, "problem": message or "an assertion failed", "pattern": pattern}
    resets = [c for c, s in enumerate(steps) if s.get("rst")]
    if resets:
        ce["resets"] = resets
    return ce, str(vcd)


def mac_plan(design: Design, netlist: Netlist, workdir: Path, *, runtime: bool, log=print,
             lanes: int = 1):
    """Return the MAC checks of ``design`` (its pipeline with ``lanes`` sample lanes) as
    ``(name, make_spec, mode, depth, sources, prelude, where)`` (``make_spec`` None for the
    products' simulation) and a note saying where the netlist parts were proved."""
    from .formal import generate_netlist, read_netlist_ports

    pipe = pipeline_mac(design, lanes, runtime)
    mac = pipe.mac
    feed = pipeline_latency(design, runtime) + 1
    assert mac.latency == (mac.products.latency + mac.accumulator.latency + 3)
    bank = bank_wires(design) if runtime else ()
    wires = mac_wires(netlist, workdir, bank)
    where, note = "netlist", "on the netlist: mac-feed, mac-credits, mac-hold"
    if wires is None:  # an external netlist without the generator's names
        gen_dir = workdir / "generator"
        gen_dir.mkdir(exist_ok=True)
        gen = read_netlist_ports(generate_netlist(design, gen_dir / f"{design.name}.v", runtime,
                                                  lanes=lanes), gen_dir)
        wires = mac_wires(gen, gen_dir, bank)
        note = (f"{netlist.name} lacks the generator's wire names ({', '.join(MAC_WIRES)}): "
                "mac-feed, mac-credits, mac-hold proved on the generator's netlist instead")
        netlist, where = gen, "generator"
        log(note)
    prelude = mac_prelude(netlist, wires)
    bound = 2 ** (design.decode.width - 1 + mac.q)  # the largest golden product's magnitude
    # the netlist's result FIFO: a CreditFIFO, its level as wide as its pointers (a power of two
    # entries); the generator's FIFO of that depth is the one mac-fifo proves
    fifo_depth = 2 ** wires["out_fifo.level"]
    fifo_v = fifo_netlist(fifo_depth, workdir / "mac_fifo.v")
    top, src = netlist.top, [netlist.path]
    plan = [
        ("mac-feed", lambda: MacFeedSpec(design, top, wires, feed=feed, runtime=runtime,
                                         lanes=lanes), "prove", feed + 1, src, prelude, where),
        ("mac-credits", lambda: MacCreditsSpec(
            design, top, wires, feed=feed, mac_latency=mac.latency,
            beats=mac.beats * mac.groups, output_beats=mac.output_beats, credits=pipe.credits,
            fifo_depth=fifo_depth, runtime=runtime, lanes=lanes), "prove", 3, src, prelude,
         where),
        ("mac-products", None, "simulate", mac.beats * mac.groups * 2 ** design.decode.width,
         [], "", "generator"),
        ("mac-accumulate", lambda: AccumulatorSpec(pipeline_mac(design, lanes).mac.accumulator,
                                                   steps=mac.beats * mac.groups, bound=bound),
         "prove", mac.accumulator.tree_levels + 3, [], "", "generator"),
        # (with lanes, one output stage per output, all of one generator and parameters)
        ("mac-output", lambda: OutputStageSpec(pipeline_mac(design, lanes).mac.output_stages[0]),
         "prove", 4, [], "", "generator"),
        ("mac-fifo", lambda: FifoOrderSpec(fifo_depth), "prove", 3, [fifo_v],
         fifo_prelude(fifo_depth), "generator"),
        ("mac-hold", lambda: MacHoldSpec(design, top, wires, runtime=runtime, lanes=lanes),
         "prove", 2, src, prelude, where),
    ]
    facts = {"feed": feed, "outputs": mac.output_beats, "credits": pipe.credits,
             "cases": mac.beats * mac.groups * mac.in_lanes * mac.mac_lanes
             * 2 ** design.decode.width,
             "acc_latency": mac.accumulator.latency, "shift": design.mac.output_shift,
             "bits": design.mac.output_bits, "fifo_depth": fifo_depth}
    # a bounded search from reset, after an induction that did not close, goes as deep as
    # filling the FIFO takes
    facts["search_depth"] = feed + mac.latency + fifo_depth + mac.output_beats + 2
    return plan, note, facts


def run_products(design: Design, lanes: int = 1) -> PropertyResult:
    """Run the products' exhaustive simulation (the pipeline's with ``lanes`` sample lanes) as a
    property result."""
    report = check_products(pipeline_mac(design, lanes).mac.products)
    pr = PropertyResult("mac-products", "exhaustive", report["steps"], report["seconds"],
                        "passed" if report["mismatches"] == 0 else "failed")
    if report["mismatches"]:
        first = report["first"][0]
        pr.counterexample = {"cycle": first["step"], "pattern": {},
                             "problem": f"step {first['step']} of the sweep: a product or its "
                                        "last flag differs from the golden model",
                             "expected": str(first["expected"]), "got": str(first["got"])}
    return pr

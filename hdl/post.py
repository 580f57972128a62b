"""POST (power-of-√2) arithmetic: `POSTMultiplier` and the multiply–accumulate core `POSTMac`.

A POST weight is ``sign * sqrt(2)**-n``. With ``k = n // 2`` a product is a shift for even ``n``
and a table lookup then a shift for odd ``n``: ``(a << q) >> k`` or ``lut[a] >> k`` with
``lut[a] = round(a * 2**q / sqrt 2)``, negated for a negative sign. No multiplier is used.

Golden models: :func:`ref_post_multiplier`, :func:`ref_post_mac`, :func:`ref_output_stage`.
"""

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from adcforge.design import product_frac_bits
from adcforge.golden import ref_output_stage, ref_post_mac, ref_post_multiplier, sqrt_half_lut

from .pipe import SkidBuffer, logic_rom

__all__ = ["POSTMultiplier", "POSTMac", "POSTProducts", "MacAccumulator", "OutputStage",
           "products_layout", "ref_post_multiplier", "ref_post_mac", "ref_output_stage"]


def _check_post_args(width, exponent_bits, guard_bits):
    if not isinstance(width, int) or not 2 <= width <= 12:
        raise ValueError(f"width must be an integer in [2, 12], not {width!r}")
    if not isinstance(exponent_bits, int) or not 1 <= exponent_bits <= 4:
        raise ValueError(f"exponent_bits must be an integer in [1, 4], not {exponent_bits!r}")
    if not isinstance(guard_bits, int) or not 0 <= guard_bits <= 8:
        raise ValueError(f"guard_bits must be an integer in [0, 8], not {guard_bits!r}")


class WeightLayout(data.StructLayout):
    """One POST weight: ``sign`` (-1, 0, +1 as signed 2 bits) and ``exponent`` n."""

    def __init__(self, exponent_bits: int):
        super().__init__({"sign": signed(2), "exponent": unsigned(exponent_bits)})


def _odd_lut_memory(width: int, q: int, rom_style: str | None = None) -> memory.Memory:
    """The odd-exponent table, addressed by the activation's two's-complement bits."""
    lut = sqrt_half_lut(width, q)
    half = 2 ** (width - 1)
    # Address = the activation's raw bits: a >= 0 at a, a < 0 at a + 2**width.
    init = [int(lut[(addr if addr < half else addr - 2 * half) + half])
            for addr in range(2 * half)]
    attrs = {"rom_style": rom_style} if rom_style else None
    return memory.Memory(shape=signed(width + q), depth=2 * half, init=init, attrs=attrs)


def _post_magnitude(even, odd, exponent):
    """``even = a << q`` or ``odd = lut[a]`` by the exponent's parity, shifted right by ``n // 2``
    (one LUT level for the parity, a small barrel shifter for ``k``)."""
    mag = Mux(exponent[0], odd, even)
    k = exponent[1:] if len(exponent) > 1 else Const(0, 1)
    return mag >> k


def _post_signed(mag, sign):
    """Apply a weight's sign (-1, 0, +1) to a product magnitude."""
    return Mux(sign == 0, 0, Mux(sign[1], -mag, mag))


class POSTMultiplier(wiring.Component):
    """Multiply a signed activation by a POST weight; one product per clock, three stages
    (table read, parity select and shift, sign).

    Parameters
    ----------
    width : int
        Activation width W, 2..12 (the odd-exponent table has ``2**W`` entries).
    exponent_bits : int
        e: exponents ``n`` in ``[0, 2**e - 1]``, 1..4.
    guard_bits : int
        The product has ``q = K + guard_bits`` more fractional bits than the activation,
        ``K = (2**e - 1) // 2``.

    Members
    -------
    i : In(stream.Signature(struct {a: signed(W), sign: signed(2), exponent: unsigned(e)}))
    o : Out(stream.Signature(signed(W + q + 1)))
    """

    def __init__(self, width: int, exponent_bits: int, guard_bits: int):
        _check_post_args(width, exponent_bits, guard_bits)
        self.width, self.exponent_bits, self.guard_bits = width, exponent_bits, guard_bits
        self.q = product_frac_bits(exponent_bits, guard_bits)
        self.latency = 3
        in_layout = data.StructLayout({"a": signed(width), "sign": signed(2),
                                       "exponent": unsigned(exponent_bits)})
        super().__init__({
            "i": In(stream.Signature(in_layout)),
            "o": Out(stream.Signature(signed(width + self.q + 1))),
        })

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        # Stage 1: the odd-exponent table (block RAM) and the even-exponent value.
        m.submodules.odd_lut = lut = _odd_lut_memory(self.width, self.q)
        rd = lut.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(self.i.payload.a.as_unsigned()), rd.en.eq(en)]
        even = Signal(signed(self.width + self.q))
        weight1 = Signal(WeightLayout(self.exponent_bits))
        weight2 = Signal(WeightLayout(self.exponent_bits))
        mag = Signal(signed(self.width + self.q))
        valid1, valid2 = Signal(), Signal()
        with m.If(en):
            m.d.sync += [
                even.eq(self.i.payload.a << self.q),
                weight1.sign.eq(self.i.payload.sign),
                weight1.exponent.eq(self.i.payload.exponent),
                valid1.eq(self.i.valid),
                # Stage 2: parity select and shift.
                mag.eq(_post_magnitude(even, rd.data, weight1.exponent)),
                weight2.eq(weight1),
                valid2.eq(valid1),
                # Stage 3: sign.
                self.o.payload.eq(_post_signed(mag, weight2.sign)),
                self.o.valid.eq(valid2),
            ]
        return m


class OutputStage(wiring.Component):
    """Round half up and saturate accumulator values, as :func:`ref_output_stage` says:
    ``y = saturate_bits((acc + 2**(shift-1)) >> shift)``; three register stages (round,
    compare, select), one value per clock.

    Members
    -------
    i : In(stream.Signature(signed(acc_bits)))
    o : Out(stream.Signature(signed(output_bits)))
    """

    def __init__(self, acc_bits: int, output_bits: int, output_shift: int):
        if not isinstance(output_bits, int) or not 2 <= output_bits <= 32:
            raise ValueError(f"output_bits must be an integer in [2, 32], not {output_bits!r}")
        if not isinstance(output_shift, int) or not 0 <= output_shift <= 48:
            raise ValueError(f"output_shift must be an integer in [0, 48], not {output_shift!r}")
        self.acc_bits, self.output_bits, self.output_shift = acc_bits, output_bits, output_shift
        super().__init__({
            "i": In(stream.Signature(signed(acc_bits))),
            "o": Out(stream.Signature(signed(output_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        acc = self.i.payload
        if self.output_shift:
            rounded_expr = (acc + (1 << (self.output_shift - 1))) >> self.output_shift
        else:
            rounded_expr = acc
        rounded = Signal(signed(self.acc_bits + 1))
        rounded2 = Signal(signed(self.acc_bits + 1))
        over, under = Signal(), Signal()
        valid1, valid2 = Signal(), Signal()
        hi, lo = 2 ** (self.output_bits - 1) - 1, -(2 ** (self.output_bits - 1))
        with m.If(en):
            m.d.sync += [
                rounded.eq(rounded_expr), valid1.eq(self.i.valid),
                # the two compares and the selection in separate stages (carry chains are slow)
                over.eq(rounded > hi), under.eq(rounded < lo), rounded2.eq(rounded),
                valid2.eq(valid1),
                self.o.payload.eq(Mux(over, hi, Mux(under, lo, rounded2))),
                self.o.valid.eq(valid2),
            ]
        return m


def products_layout(prod_shape, in_lanes: int, mac_lanes: int) -> data.StructLayout:
    """The payload of :class:`POSTProducts`'s output: ``products[p][lane]`` (activation ``p`` of
    the beat times the weight of lane ``lane``) and ``last`` (the inference's last step)."""
    return data.StructLayout({
        "products": data.ArrayLayout(data.ArrayLayout(prod_shape, mac_lanes), in_lanes),
        "last": 1,
    })


class POSTProducts(wiring.Component):
    """The products of :class:`POSTMac`: each beat's ``in_lanes`` activations times their
    weights, ``mac_lanes`` weights per clock, five register stages (table reads, their
    registers, parity select with the sign as a ones' complement, the shift, its carry-in).

    A beat of ``i`` is taken in ``groups = ceil(outputs / mac_lanes)`` steps, one lane group
    per clock; step ``n`` of an inference (``n = beat * groups + group``, counted from reset)
    yields ``products[p][lane] = ref_post_multiplier(a[p], sign[j, i], exponent[j, i])`` with
    ``i = beat * in_lanes + p`` and ``j = group * mac_lanes + lane`` (0 for ``j >= outputs``),
    and ``last`` on its final step. Every register advances when ``o.ready`` is high (the
    pipeline's enable): ``o`` carries the steps in order, five enabled clocks after their beat.

    Members
    -------
    i : In(stream.Signature(signed(width)))  (``in_lanes`` > 1: an array of activations)
    o : Out(stream.Signature(products_layout(signed(width + q + 1), in_lanes, mac_lanes)))
    """

    def __init__(self, *, sign, exponent, width, exponent_bits, guard_bits, mac_lanes,
                 in_lanes, rom_style=None):
        _check_post_args(width, exponent_bits, guard_bits)
        self.sign, self.exponent = np.asarray(sign), np.asarray(exponent)
        self.outputs, self.inputs = self.sign.shape
        self.width, self.exponent_bits = width, exponent_bits
        self.q = product_frac_bits(exponent_bits, guard_bits)
        self.mac_lanes, self.in_lanes = mac_lanes, in_lanes
        self.groups = -(-self.outputs // mac_lanes)
        self.beats = self.inputs // in_lanes
        self.rom_style = rom_style
        self.latency = 5
        self.product_shape = signed(width + self.q + 1)
        in_shape = signed(width) if in_lanes == 1 else data.ArrayLayout(signed(width), in_lanes)
        super().__init__({
            "i": In(stream.Signature(in_shape)),
            "o": Out(stream.Signature(products_layout(self.product_shape, in_lanes,
                                                      mac_lanes))),
        })

    def _weight_layout(self):
        lane_word = data.ArrayLayout(WeightLayout(self.exponent_bits), self.mac_lanes)
        return lane_word if self.in_lanes == 1 else data.ArrayLayout(lane_word, self.in_lanes)

    def _weight_rom_init(self):
        """One word per (beat, group): for each of the beat's ``in_lanes`` activations,
        ``mac_lanes`` weights, lane 0 in the low bits."""
        init = []
        for b in range(self.beats):
            for g in range(self.groups):
                word = []
                for p in range(self.in_lanes):
                    i = b * self.in_lanes + p
                    row = []
                    for lane in range(self.mac_lanes):
                        j = g * self.mac_lanes + lane
                        if j < self.outputs:
                            row.append({"sign": int(self.sign[j, i]),
                                        "exponent": int(self.exponent[j, i])})
                        else:
                            row.append({"sign": 0, "exponent": 0})
                    word.append(row)
                init.append(word[0] if self.in_lanes == 1 else word)
        return self._weight_layout(), init

    def elaborate(self, platform):
        m = Module()
        G, L, B, P = self.groups, self.mac_lanes, self.beats, self.in_lanes
        en = self.o.ready  # the product pipeline advances

        def act(p):
            return self.i.payload if P == 1 else self.i.payload[p]

        # Beat sequencer: each beat is presented for G clocks, one lane group each.
        group = Signal(range(G))
        waddr = Signal(range(B * G))
        beat = self.i.valid & en
        m.d.comb += self.i.ready.eq(en & (group == G - 1))
        with m.If(beat):
            m.d.sync += [group.eq(Mux(group == G - 1, 0, group + 1)),
                         waddr.eq(Mux(waddr == B * G - 1, 0, waddr + 1))]

        # Stage 1: table reads (odd-exponent LUT, weight word) and the even-exponent value.
        pipelined = self.rom_style == "logic"  # the table in LUTs, two register stages
        if not pipelined:
            m.submodules.odd_lut = lut = _odd_lut_memory(self.width, self.q, self.rom_style)
            lut_rds = [lut.read_port(domain="sync") for _ in range(P)]
        word_layout, init = self._weight_rom_init()
        # A weight table of up to 64 words (or any, with rom_style "logic") is a two-stage LUT
        # ROM (its read and its register, as the block RAM's read and stage 2's register): one
        # LUT level per stage, where Yosys's own LUT mapping of a one-stage table was 7 deep.
        logic_weights = pipelined or B * G <= 64
        if logic_weights:
            raw = [Const.cast(word_layout.const(w)).value for w in init]
            w_data = logic_rom(m, raw, word_layout.size, waddr, en, name="weights")
        else:
            attrs = {"rom_style": self.rom_style} if self.rom_style else None
            m.submodules.weights = wrom = memory.Memory(shape=word_layout, depth=B * G,
                                                        init=init, attrs=attrs)
            w_rd = wrom.read_port(domain="sync")
            m.d.comb += [w_rd.addr.eq(waddr), w_rd.en.eq(en)]
        if not pipelined:
            for p, rd in enumerate(lut_rds):
                m.d.comb += [rd.addr.eq(act(p).as_unsigned()), rd.en.eq(en)]
        sfx = (lambda p: "") if P == 1 else (lambda p: f"_a{p}")
        even = [Signal(signed(self.width + self.q), name=f"even{sfx(p)}") for p in range(P)]
        valid1, last1 = Signal(), Signal()
        with m.If(en):
            m.d.sync += [valid1.eq(beat), last1.eq(waddr == B * G - 1)]
            m.d.sync += [even[p].eq(act(p) << self.q) for p in range(P)]

        # Stage 2: the table outputs registered as they are (block RAM outputs are slow).
        odd2 = [Signal(signed(self.width + self.q), name=f"odd2{sfx(p)}") for p in range(P)]
        even2 = [Signal(signed(self.width + self.q), name=f"even2{sfx(p)}") for p in range(P)]
        weights2 = Signal(word_layout)
        valid2, last2 = Signal(), Signal()
        with m.If(en):
            m.d.sync += [valid2.eq(valid1), last2.eq(last1)]
            if not logic_weights:
                m.d.sync += weights2.eq(w_rd.data)
            if not pipelined:
                m.d.sync += [odd2[p].eq(lut_rds[p].data) for p in range(P)]
            m.d.sync += [even2[p].eq(even[p]) for p in range(P)]

        if logic_weights:
            m.d.comb += weights2.eq(w_data)
        if pipelined:  # the ROM's two stages stand for the read and its register
            lut = sqrt_half_lut(self.width, self.q)
            half = 2 ** (self.width - 1)
            init_raw = [int(lut[(a if a < half else a - 2 * half) + half])
                        for a in range(2 * half)]
            for p in range(P):
                data_ = logic_rom(m, init_raw, self.width + self.q, act(p).as_unsigned(), en,
                                  name=f"odd_lut{sfx(p)}")
                m.d.comb += odd2[p].eq(data_.as_signed())

        def weight(p, lane):
            return weights2[lane] if P == 1 else weights2[p][lane]

        # Stage 3: per activation and lane, the parity select with the sign as a ones'
        # complement (each bit a function of five registers: the even and odd bit, the
        # exponent's parity and the sign); stage 4: the shift by the exponent's upper bits (a
        # 4:1 mux per bit, its selects registers: ~m >> k = ~(m >> k)) and the carry-in;
        # stage 5: the carry-in added (a carry chain straight from registers to registers).
        # -mag = ~mag + 1 (sign 0: 0 + 0).
        mag_shape = signed(self.width + self.q)
        valid3, last3, valid4, last4 = Signal(), Signal(), Signal(), Signal()
        valid5, last5 = Signal(), Signal()
        with m.If(en):
            m.d.sync += [valid3.eq(valid2), last3.eq(last2), valid4.eq(valid3), last4.eq(last3),
                         valid5.eq(valid4), last5.eq(last4)]
            for p in range(P):
                for lane in range(L):
                    sel = Signal(mag_shape, name=f"selected{sfx(p)}_{lane}")
                    shift = Signal(max(self.exponent_bits - 1, 1), name=f"shift{sfx(p)}_{lane}")
                    neg3 = Signal(name=f"negative{sfx(p)}_{lane}")
                    ones = Signal(self.product_shape, name=f"ones{sfx(p)}_{lane}")
                    cin = Signal(name=f"negate{sfx(p)}_{lane}")
                    prod = Signal(self.product_shape, name=f"product{sfx(p)}_{lane}")
                    w = weight(p, lane)
                    picked = Mux(w.exponent[0], odd2[p], even2[p])
                    m.d.sync += [sel.eq(Mux(w.sign == 0, 0, Mux(w.sign[1], ~picked, picked))),
                                 shift.eq(w.exponent[1:] if self.exponent_bits > 1 else 0),
                                 neg3.eq(w.sign[1]),
                                 ones.eq(sel >> shift),
                                 cin.eq(neg3),
                                 prod.eq(ones + cin)]
                    m.d.comb += self.o.payload.products[p][lane].eq(prod)
        m.d.comb += [self.o.valid.eq(valid5), self.o.payload.last.eq(last5)]
        return m


class MacAccumulator(wiring.Component):
    """The accumulators of :class:`POSTMac`: each step's ``in_lanes`` products per lane summed
    by a pipelined adder tree (``tree_levels`` register levels), added into a ring of
    ``groups`` lane groups that rotates once per step (so after the ``beats * groups`` steps
    of an inference it is aligned again), the ring starting at the bias; on an inference's
    ``last`` step the ``outputs`` sums are copied into a bank of final sums, and the next clock
    into an output buffer, which ``o`` emits in order, ``out_lanes`` per beat, while the next
    inference accumulates.

    Each accumulator is kept in carry-save form: a low half of ``split`` bits, a high half and
    the low half's carry out, which the high half adds one step later, so that no carry chain in
    the accumulate loop is longer than half the accumulator; the bias reload on ``last`` and the
    copy into the final bank are constants and clock enables after the adders, with no logic
    between the adders and the registers. The final bank and the output buffer keep the same
    form; the high halves take their pending carry in the register that ``o`` leaves from.

    With ``stall=True``, ``i.ready`` drops only when an inference completes while the previous
    one is still being emitted (or about to be). With ``stall=False`` nothing ever waits
    (``i.ready`` is 1, ``o`` must always be ready and the last steps of two inferences must be at
    least ``output_beats`` clocks apart); the first result beat leaves ``tree_levels + 3`` clocks
    after the last step, one beat per clock.

    The ring (``ring[g][lane]``: the value ``hi * 2**split + lo + carry * 2**split`` modulo
    ``2**acc_bits`` of its parts ``ring_parts[g][lane]``), the final bank (``final``, values
    likewise, and ``fill``: it goes to the buffer this clock), the output buffer (``out_buf``,
    values of ``out_parts``), ``out_busy`` and ``out_count`` are attributes: the formal specification of ``adcforge
    prove`` states invariants on them.

    Members
    -------
    i : In(stream.Signature(products_layout(product_shape, in_lanes, mac_lanes)))
    o : Out(stream.Signature(signed(acc_bits)))  (``out_lanes`` > 1: an array of sums)
    """

    def __init__(self, *, bias, product_shape, acc_bits, mac_lanes, in_lanes, groups,
                 out_lanes=1, stall=True, split=None):
        self.bias = np.asarray(bias)
        self.outputs = len(self.bias)
        self.product_shape = product_shape
        self.acc_bits, self.mac_lanes, self.in_lanes = acc_bits, mac_lanes, in_lanes
        self.groups, self.out_lanes, self.stall = groups, out_lanes, bool(stall)
        self.output_beats = self.outputs // out_lanes
        self.tree_levels = (in_lanes - 1).bit_length()
        self.latency = self.tree_levels + 3
        # the low half's width (the high half has the rest; 0: no split)
        self.split = (acc_bits + 1) // 2 if split is None else split
        if not 0 <= self.split < acc_bits:
            raise ValueError(f"split must be in [0, {acc_bits}), not {self.split!r}")
        G, L, A, H = groups, mac_lanes, acc_bits, self.split
        init = [int(self.bias[j]) if j < self.outputs else 0 for j in range(G * L)]
        self._init = init

        def parts(prefix, g, lane, reset=True):
            b = init[g * L + lane] % 2 ** A if reset else 0
            kw = {} if reset else {"reset_less": True}
            lo = Signal(H, name=f"{prefix}_g{g}_l{lane}_lo", init=b % 2 ** H, **kw) if H else None
            hi = Signal(A - H, name=f"{prefix}_g{g}_l{lane}_hi", init=b >> H, **kw)
            c = Signal(name=f"{prefix}_g{g}_l{lane}_carry", **kw) if H else None
            return lo, hi, c

        self.ring_parts = [[parts("acc", g, lane) for lane in range(L)] for g in range(G)]
        self.final_parts = [[parts("final", g, lane, reset=False) for lane in range(L)]
                            for g in range(G)]
        self.ring = [[self._value(p) for p in row] for row in self.ring_parts]
        self.final = [[self._value(p) for p in row] for row in self.final_parts]
        acc_shape = signed(acc_bits)
        self.fill = Signal(name="fill")
        self.out_parts = [parts("out", j // L, j % L, reset=False) for j in range(self.outputs)]
        self.out_buf = [self._value(p) for p in self.out_parts]
        self.out_busy = Signal(name="out_busy")
        self.out_count = Signal(range(self.output_beats), name="out_count")
        out_shape = acc_shape if out_lanes == 1 else data.ArrayLayout(acc_shape, out_lanes)
        super().__init__({
            "i": In(stream.Signature(products_layout(product_shape, in_lanes, mac_lanes))),
            "o": Out(stream.Signature(out_shape)),
        })

    def _value(self, parts):
        """The signed ``acc_bits`` value of an accumulator's carry-save parts."""
        lo, hi, c = parts
        if lo is None:
            return hi.as_signed()
        return Cat(lo, (hi + c)[:len(hi)]).as_signed()

    def elaborate(self, platform):
        m = Module()
        G, L, P, K = self.groups, self.mac_lanes, self.in_lanes, self.out_lanes
        R, A, H = self.output_beats, self.acc_bits, self.split
        en = Signal()  # the adder tree and the ring advance
        products = self.i.payload.products

        # Stages 5...: the in_lanes products of each lane summed pairwise, one register level
        # per adder level (none for one activation per beat).
        sums = [[products[p][lane] for p in range(P)] for lane in range(L)]
        valid_k, last_k = self.i.valid, self.i.payload.last
        level = 0
        while len(sums[0]) > 1:
            level += 1
            nv, nl = Signal(name=f"valid_sum{level}"), Signal(name=f"last_sum{level}")
            with m.If(en):
                m.d.sync += [nv.eq(valid_k), nl.eq(last_k)]
            valid_k, last_k = nv, nl
            for lane in range(L):
                terms, reduced = sums[lane], []
                for j in range(0, len(terms), 2):
                    if j + 1 == len(terms):
                        r = Signal(terms[j].shape(), name=f"sum{level}_{lane}_{j}")
                        expr = terms[j]
                    else:
                        r = Signal(signed(max(len(terms[j]), len(terms[j + 1])) + 1),
                                   name=f"sum{level}_{lane}_{j}")
                        expr = terms[j] + terms[j + 1]
                    with m.If(en):
                        m.d.sync += r.eq(expr)
                    reduced.append(r)
                sums[lane] = reduced
        lane_sum = []
        for lane in range(L):  # the lane's sum as acc_bits (two's complement, wrapping)
            s = Signal(signed(A), name=f"lane_sum_{lane}")
            m.d.comb += s.eq(sums[lane][0])
            lane_sum.append(s)

        # Accumulate into the ring (carry-save); the head group is updated and the ring rotates
        # once per step.
        ring, final = self.ring_parts, self.final_parts
        out_buf, out_busy, out_count, fill = self.out_buf, self.out_busy, self.out_count, self.fill
        head = []
        for lane in range(L):
            lo, hi, c = ring[0][lane]
            x = lane_sum[lane].as_unsigned()
            n_hi = Signal(A - H, name=f"acc_next_{lane}_hi")
            if H:
                low = Signal(H + 1, name=f"acc_next_{lane}_low")
                m.d.comb += [low.eq(lo + x[:H]), n_hi.eq(hi + x[H:] + c)]
                head.append((low[:H], n_hi, low[H]))
            else:
                m.d.comb += n_hi.eq(hi + x)
                head.append((None, n_hi, None))
        rotated = ring[1:] + [head]  # group order after this step's update

        def assign(dst, src):
            return [d.eq(s) for d, s in zip(dst, src) if d is not None]

        def bias_parts(g, lane):
            b = self._init[g * L + lane] % 2 ** A
            return (b % 2 ** H if H else None, b >> H, 0 if H else None)

        # Output: out_buf[0:K] leave through a register that adds their pending carries; the
        # buffer shifts by K.
        o_en = Signal()  # the output register advances
        m.d.comb += o_en.eq(~self.o.valid | self.o.ready)
        with m.If(o_en):
            m.d.sync += self.o.valid.eq(out_busy)
            m.d.sync += [self.o.payload.eq(out_buf[0])] if K == 1 else [
                self.o.payload[k].eq(out_buf[k]) for k in range(K)]
        taken = Signal()  # a beat of sums leaves the buffer this clock
        m.d.comb += taken.eq(out_busy & o_en)
        freed = taken & (out_count == R - 1)  # ... the last one of the inference
        # Stall only if an inference completes while the previous one is still being emitted
        # (or is yet to be copied into the buffer).
        m.d.comb += en.eq(~(valid_k & last_k & ((out_busy & ~freed) | fill)) if self.stall
                          else 1)
        m.d.comb += self.i.ready.eq(en)
        step = Signal()
        m.d.comb += step.eq(valid_k & en)
        with m.If(step):
            with m.If(last_k):
                for g in range(G):
                    for lane in range(L):
                        m.d.sync += assign(ring[g][lane], bias_parts(g, lane))
            with m.Else():
                for g in range(G):
                    for lane in range(L):
                        m.d.sync += assign(ring[g][lane], rotated[g][lane])
        # A finished inference's sums go to the final bank (an enable, no logic after the
        # adders), and the next clock to the buffer.
        m.d.sync += fill.eq(step & last_k)
        with m.If(step & last_k):
            for g in range(G):
                for lane in range(L):
                    m.d.sync += assign(final[g][lane], rotated[g][lane])
        out_parts = self.out_parts
        with m.If(taken):
            for a, b in zip(out_parts, out_parts[K:]):
                m.d.sync += assign(a, b)
            m.d.sync += out_count.eq(Mux(out_count == R - 1, 0, out_count + 1))
            with m.If(out_count == R - 1):
                m.d.sync += out_busy.eq(0)
        # The fill (after the shift above, which it overrides).
        with m.If(fill):
            m.d.sync += [out_busy.eq(1), out_count.eq(0)]
            flat = [v for grp in final for v in grp][:self.outputs]
            for b, v in zip(out_parts, flat):
                m.d.sync += assign(b, v)
        return m


class POSTMac(wiring.Component):
    """POST multiply–accumulate: ``inputs`` activations in, ``outputs`` results out per inference.

    A beat carries ``in_lanes`` consecutive activations of one inference (element 0 the
    earliest); each is multiplied by its column of weights, ``mac_lanes`` weights per clock (so a
    beat takes ``ceil(outputs / mac_lanes)`` clocks; ``mac_lanes = outputs`` takes one beat per
    clock), and the ``in_lanes`` products of each output are summed by a pipelined adder tree.
    Accumulators start at the bias; after the last beat of an inference the accumulators are
    handed to the output stage, which emits the ``outputs`` results in order, ``out_lanes`` per
    beat, each rounded and saturated as :func:`ref_output_stage` says, while the next inference
    accumulates. The output stage's back-pressure is registered (a skid buffer), so the MAC's
    enable depends on registers only.

    With ``stall=False`` the core has no enable at all (every register advances every clock,
    the fastest form): ``i`` must present each beat for exactly ``ceil(outputs / mac_lanes)``
    clocks (``valid`` high for that many clocks, then a new beat or idle), the last beats of two
    inferences must be at least ``output_beats`` clocks apart, and ``o`` must always be ready
    (``o.ready`` is ignored): :class:`AdcPipeline` guarantees this with credits for a FIFO
    after the core. ``latency`` is then the clocks from a last beat to its first result.

    Parameters come from a design's ``mac`` section (see ``docs/design-format.md``):
    ``sign``/``exponent`` of shape (outputs, inputs), ``bias`` (outputs,), the activation
    ``width``, ``exponent_bits``, ``guard_bits``, ``acc_bits``, ``output_bits``, ``output_shift``.
    ``in_lanes`` must divide ``inputs``; ``out_lanes`` is 1 or ``outputs``.

    Members
    -------
    i : In(stream.Signature(signed(width)))  (``in_lanes`` > 1: an array of activations)
    o : Out(stream.Signature(signed(output_bits)))  (``out_lanes`` > 1: an array of results)
    """

    def __init__(self, *, sign, exponent, bias, width, exponent_bits, guard_bits, acc_bits,
                 output_bits, output_shift, mac_lanes=None, in_lanes=1, out_lanes=1,
                 stall=True, rom_style=None):
        _check_post_args(width, exponent_bits, guard_bits)
        sign, exponent = np.asarray(sign), np.asarray(exponent)
        bias = np.asarray(bias)
        if sign.ndim != 2 or sign.shape != exponent.shape or bias.shape != sign.shape[:1]:
            raise ValueError(f"sign and exponent must have shape (outputs, inputs) and bias "
                             f"(outputs,), not {sign.shape}, {exponent.shape}, {bias.shape}")
        self.outputs, self.inputs = sign.shape
        mac_lanes = self.outputs if mac_lanes is None else mac_lanes
        if not isinstance(mac_lanes, int) or not 1 <= mac_lanes <= self.outputs:
            raise ValueError(f"mac_lanes must be an integer in [1, {self.outputs}], not "
                             f"{mac_lanes!r}")
        if (not isinstance(in_lanes, int) or isinstance(in_lanes, bool) or in_lanes < 1
                or self.inputs % in_lanes):
            raise ValueError(f"in_lanes must be a positive divisor of the {self.inputs} inputs, "
                             f"not {in_lanes!r}")
        if out_lanes not in (1, self.outputs):
            raise ValueError(f"out_lanes must be 1 or {self.outputs} (the outputs), not "
                             f"{out_lanes!r}")
        self.sign, self.exponent, self.bias = sign, exponent, bias
        self.width, self.exponent_bits, self.guard_bits = width, exponent_bits, guard_bits
        self.q = product_frac_bits(exponent_bits, guard_bits)
        self.acc_bits, self.output_bits, self.output_shift = acc_bits, output_bits, output_shift
        self.mac_lanes = mac_lanes
        self.in_lanes, self.out_lanes = in_lanes, out_lanes
        self.groups = -(-self.outputs // mac_lanes)
        self.beats = self.inputs // in_lanes
        self.stall = bool(stall)
        self.rom_style = rom_style  # Yosys's rom_style for the tables (None: Yosys chooses)
        self.output_beats = self.outputs // out_lanes
        # stages: 2 table reads, 3 product, adder tree, accumulate, final bank, carry, 3 output
        # (+ skid)
        self.tree_levels = (in_lanes - 1).bit_length()
        self.latency = 5 + self.tree_levels + 3 + 3 + (1 if self.stall else 0)
        in_shape = signed(width) if in_lanes == 1 else data.ArrayLayout(signed(width), in_lanes)
        out_shape = (signed(output_bits) if out_lanes == 1
                     else data.ArrayLayout(signed(output_bits), out_lanes))
        super().__init__({
            "i": In(stream.Signature(in_shape)),
            "o": Out(stream.Signature(out_shape)),
        })
        # The parts, each its own component: products -> accumulators -> output stage(s).
        self.products = POSTProducts(sign=sign, exponent=exponent, width=width,
                                     exponent_bits=exponent_bits, guard_bits=guard_bits,
                                     mac_lanes=mac_lanes, in_lanes=in_lanes, rom_style=rom_style)
        self.accumulator = MacAccumulator(bias=bias, product_shape=self.products.product_shape,
                                          acc_bits=acc_bits, mac_lanes=mac_lanes,
                                          in_lanes=in_lanes, groups=self.groups,
                                          out_lanes=out_lanes, stall=stall)
        self.output_stages = [OutputStage(acc_bits, output_bits, output_shift)
                              for _ in range(out_lanes)]

    def elaborate(self, platform):
        m = Module()
        K = self.out_lanes
        m.submodules.products = products = self.products
        m.submodules.accumulator = acc = self.accumulator
        wiring.connect(m, wiring.flipped(self.i), products.i)
        wiring.connect(m, products.o, acc.i)
        # acc.o's sums go to the rounding, saturating output stages (lockstep: same valid, same
        # ready), then through a skid buffer.
        stages = self.output_stages
        for k, st in enumerate(stages):
            m.submodules[f"output_stage{'' if K == 1 else k}"] = st
        if self.stall:
            m.submodules.output_skid = skid = SkidBuffer(self.o.payload.shape())
            wiring.connect(m, skid.o, wiring.flipped(self.o))
            out = skid.i
        else:  # the caller guarantees that o is always ready
            out = self.o
        m.d.comb += [out.valid.eq(stages[0].o.valid), acc.o.ready.eq(stages[0].i.ready)]
        for k, st in enumerate(stages):
            m.d.comb += [st.i.valid.eq(acc.o.valid),
                         st.i.payload.eq(acc.o.payload if K == 1 else acc.o.payload[k]),
                         st.o.ready.eq(skid.i.ready if self.stall else 1)]
            m.d.comb += (out.payload.eq(st.o.payload) if K == 1
                         else out.payload[k].eq(st.o.payload))
        return m

    @classmethod
    def from_design(cls, design, mac_lanes=None, in_lanes=1, out_lanes=1, stall=True,
                    rom_style=None):
        """Build the MAC core of a design file's ``mac`` section."""
        mac = design.mac
        return cls(sign=mac.sign, exponent=mac.exponent, bias=mac.bias,
                   width=design.decode.width, exponent_bits=mac.exponent_bits,
                   guard_bits=mac.guard_bits, acc_bits=design.acc_bits,
                   output_bits=mac.output_bits, output_shift=mac.output_shift,
                   mac_lanes=mac_lanes, in_lanes=in_lanes, out_lanes=out_lanes, stall=stall,
                   rom_style=rom_style)

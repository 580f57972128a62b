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

from .golden import ref_output_stage, ref_post_mac, ref_post_multiplier, sqrt_half_lut

__all__ = ["POSTMultiplier", "POSTMac", "ref_post_multiplier", "ref_post_mac",
           "ref_output_stage", "post_max_half_shift"]


def post_max_half_shift(exponent_bits: int) -> int:
    """Return ``K``, the largest ``n // 2`` for ``n < 2**exponent_bits``."""
    return (2**exponent_bits - 1) // 2


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


def _odd_lut_memory(width: int, q: int) -> memory.Memory:
    """The odd-exponent table, addressed by the activation's two's-complement bits."""
    lut = sqrt_half_lut(width, q)
    half = 2 ** (width - 1)
    # Address = the activation's raw bits: a >= 0 at a, a < 0 at a + 2**width.
    init = [int(lut[(addr if addr < half else addr - 2 * half) + half])
            for addr in range(2 * half)]
    return memory.Memory(shape=signed(width + q), depth=2 * half, init=init)


def _post_select(even, odd, weight, k_width):
    """Return the product expression from aligned ``even = a << q``, ``odd = lut[a]`` and a
    :class:`WeightLayout` view."""
    n = weight.exponent
    mag = Mux(n[0], odd, even)
    k = n[1:] if len(n) > 1 else Const(0, 1)
    shifted = mag >> k
    return Mux(weight.sign == 0, 0, Mux(weight.sign[1], -shifted, shifted))


class POSTMultiplier(wiring.Component):
    """Multiply a signed activation by a POST weight; one product per clock, two stages.

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
        self.q = post_max_half_shift(exponent_bits) + guard_bits
        self.latency = 2
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
        m.submodules.odd_lut = lut = _odd_lut_memory(self.width, self.q)
        rd = lut.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(self.i.payload.a.as_unsigned()), rd.en.eq(en)]
        even = Signal(signed(self.width + self.q))
        weight = Signal(WeightLayout(self.exponent_bits))
        valid1 = Signal()
        with m.If(en):
            m.d.sync += [
                even.eq(self.i.payload.a << self.q),
                weight.sign.eq(self.i.payload.sign),
                weight.exponent.eq(self.i.payload.exponent),
                valid1.eq(self.i.valid),
                self.o.payload.eq(_post_select(even, rd.data, weight, self.exponent_bits)),
                self.o.valid.eq(valid1),
            ]
        return m


class POSTMac(wiring.Component):
    """POST multiply–accumulate: ``inputs`` activations in, ``outputs`` results out per inference.

    Each activation is multiplied by its column of weights, ``lanes`` weights per clock (so an
    activation takes ``ceil(outputs / lanes)`` clocks; ``lanes = outputs`` takes one activation
    per clock). Accumulators start at the bias; after the last activation of an inference the
    accumulators are handed to the output stage, which emits ``outputs`` results in order, each
    rounded and saturated as :func:`ref_output_stage` says, while the next inference accumulates.

    Parameters come from a design's ``mac`` section (see ``docs/design-format.md``):
    ``sign``/``exponent`` of shape (outputs, inputs), ``bias`` (outputs,), the activation
    ``width``, ``exponent_bits``, ``guard_bits``, ``acc_bits``, ``output_bits``, ``output_shift``.

    Members
    -------
    i : In(stream.Signature(signed(width)))
    o : Out(stream.Signature(signed(output_bits)))
    """

    def __init__(self, *, sign, exponent, bias, width, exponent_bits, guard_bits, acc_bits,
                 output_bits, output_shift, lanes=None):
        _check_post_args(width, exponent_bits, guard_bits)
        sign, exponent = np.asarray(sign), np.asarray(exponent)
        bias = np.asarray(bias)
        if sign.ndim != 2 or sign.shape != exponent.shape or bias.shape != sign.shape[:1]:
            raise ValueError(f"sign and exponent must have shape (outputs, inputs) and bias "
                             f"(outputs,), not {sign.shape}, {exponent.shape}, {bias.shape}")
        self.outputs, self.inputs = sign.shape
        lanes = self.outputs if lanes is None else lanes
        if not isinstance(lanes, int) or not 1 <= lanes <= self.outputs:
            raise ValueError(f"lanes must be an integer in [1, {self.outputs}], not {lanes!r}")
        self.sign, self.exponent, self.bias = sign, exponent, bias
        self.width, self.exponent_bits, self.guard_bits = width, exponent_bits, guard_bits
        self.q = post_max_half_shift(exponent_bits) + guard_bits
        self.acc_bits, self.output_bits, self.output_shift = acc_bits, output_bits, output_shift
        self.lanes = lanes
        self.groups = -(-self.outputs // lanes)
        super().__init__({
            "i": In(stream.Signature(signed(width))),
            "o": Out(stream.Signature(signed(output_bits))),
        })

    def _weight_rom_init(self):
        """One word per (input, group): ``lanes`` weights, lane 0 in the low bits."""
        word_layout = data.ArrayLayout(WeightLayout(self.exponent_bits), self.lanes)
        init = []
        for i in range(self.inputs):
            for g in range(self.groups):
                row = []
                for lane in range(self.lanes):
                    j = g * self.lanes + lane
                    if j < self.outputs:
                        row.append({"sign": int(self.sign[j, i]),
                                    "exponent": int(self.exponent[j, i])})
                    else:
                        row.append({"sign": 0, "exponent": 0})
                init.append(row)
        return word_layout, init

    def elaborate(self, platform):
        m = Module()
        G, L, N = self.groups, self.lanes, self.inputs
        en = Signal()  # the product pipeline advances

        # Beat sequencer: each activation is presented for G clocks, one lane group each.
        group = Signal(range(G))
        waddr = Signal(range(N * G))
        beat = self.i.valid & en
        m.d.comb += self.i.ready.eq(en & (group == G - 1))
        with m.If(beat):
            m.d.sync += [group.eq(Mux(group == G - 1, 0, group + 1)),
                         waddr.eq(Mux(waddr == N * G - 1, 0, waddr + 1))]

        # Stage 1: table reads (odd-exponent LUT, weight word) and the even-exponent value.
        m.submodules.odd_lut = lut = _odd_lut_memory(self.width, self.q)
        lut_rd = lut.read_port(domain="sync")
        word_layout, init = self._weight_rom_init()
        m.submodules.weights = wrom = memory.Memory(shape=word_layout, depth=N * G, init=init)
        w_rd = wrom.read_port(domain="sync")
        m.d.comb += [lut_rd.addr.eq(self.i.payload.as_unsigned()), lut_rd.en.eq(en),
                     w_rd.addr.eq(waddr), w_rd.en.eq(en)]
        even = Signal(signed(self.width + self.q))
        valid1, last1 = Signal(), Signal()
        with m.If(en):
            m.d.sync += [even.eq(self.i.payload << self.q), valid1.eq(beat),
                         last1.eq(waddr == N * G - 1)]

        # Stage 2: one product per lane.
        prod_shape = signed(self.width + self.q + 1)
        products = [Signal(prod_shape, name=f"product_{lane}") for lane in range(L)]
        valid2, last2 = Signal(), Signal()
        with m.If(en):
            m.d.sync += [valid2.eq(valid1), last2.eq(last1)]
            for lane in range(L):
                m.d.sync += products[lane].eq(_post_select(even, lut_rd.data, w_rd.data[lane],
                                                           self.exponent_bits))

        # Stage 3: accumulate into a ring of G lane groups; the head group is updated and the
        # ring rotates once per beat, so after an inference (N * G beats) it is aligned again.
        acc_shape = signed(self.acc_bits)
        bias = [int(self.bias[j]) if j < self.outputs else 0 for j in range(G * L)]
        ring = [[Signal(acc_shape, name=f"acc_g{g}_l{lane}", init=bias[g * L + lane])
                 for lane in range(L)] for g in range(G)]
        head = [Signal(acc_shape, name=f"acc_next_{lane}") for lane in range(L)]
        m.d.comb += [head[lane].eq(ring[0][lane] + products[lane]) for lane in range(L)]
        rotated = ring[1:] + [head]  # group order after this beat's update

        out_buf = [Signal(acc_shape, name=f"out_{j}") for j in range(self.outputs)]
        out_busy = Signal()
        out_count = Signal(range(self.outputs))
        m.d.comb += en.eq(~(valid2 & last2 & out_busy))
        with m.If(valid2 & en):
            with m.If(last2):
                m.d.sync += [ring[g][lane].eq(bias[g * L + lane])
                             for g in range(G) for lane in range(L)]
            with m.Else():
                m.d.sync += [ring[g][lane].eq(rotated[g][lane])
                             for g in range(G) for lane in range(L)]

        # Output stage: emit out_buf[0], shift the buffer; round half up, saturate.
        acc0 = out_buf[0]
        if self.output_shift:
            rounded = (acc0 + (1 << (self.output_shift - 1))) >> self.output_shift
        else:
            rounded = acc0
        hi, lo = 2 ** (self.output_bits - 1) - 1, -(2 ** (self.output_bits - 1))
        m.d.comb += [
            self.o.valid.eq(out_busy),
            self.o.payload.eq(Mux(rounded > hi, hi, Mux(rounded < lo, lo, rounded))),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [a.eq(b) for a, b in zip(out_buf, out_buf[1:])]
            m.d.sync += out_count.eq(Mux(out_count == self.outputs - 1, 0, out_count + 1))
            with m.If(out_count == self.outputs - 1):
                m.d.sync += out_busy.eq(0)
        # A finished inference fills the buffer (after the shift above, which it overrides).
        with m.If(valid2 & en & last2):
            m.d.sync += [out_busy.eq(1), out_count.eq(0)]
            flat = [s for grp in rotated for s in grp][:self.outputs]
            m.d.sync += [b.eq(s) for b, s in zip(out_buf, flat)]
        return m

    @classmethod
    def from_design(cls, design, lanes=None):
        """Build the MAC core of a design file's ``mac`` section."""
        mac = design.mac
        return cls(sign=mac.sign, exponent=mac.exponent, bias=mac.bias,
                   width=design.decode.width, exponent_bits=mac.exponent_bits,
                   guard_bits=mac.guard_bits, acc_bits=design.acc_bits,
                   output_bits=mac.output_bits, output_shift=mac.output_shift, lanes=lanes)

"""Clock-domain crossing: :class:`CrossingFIFO`, an asynchronous FIFO whose enables carry no
pointer logic (the board top's crossing between its UART and ADC clock domains).

Its proof: :func:`tb.formal_cdc.prove_crossing_fifo` (two unrelated clocks, k-induction)."""

from amaranth.hdl import Cat, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import AsyncFFSynchronizer, FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


def gray_encode(value):
    return value ^ value[1:]


def gray_decode(value):
    bits = [value[-1]]
    for k in reversed(range(len(value) - 1)):
        bits.insert(0, bits[0] ^ value[k])
    return Cat(*bits)


class CrossingFIFO(wiring.Component):
    """An asynchronous FIFO (Cummings' style 2, as ``lib.fifo.AsyncFIFO``: Gray-coded pointers
    one bit wider than the address, each through a two-flop synchroniser; the write domain's
    reset empties it) of ``depth`` words of ``width`` in block RAM, in which no pointer compare
    or arithmetic is on the path of a read or write enable.

    * Writes are not checked: ``w_en`` writes (its caller keeps count, with ``w_level``), the
      pointer steps under ``w_en`` as a clock enable (its next value is computed from
      registers).
    * ``w_level`` is registered (write pointer minus the synchronised read pointer, decoded
      a cycle earlier): it never falls below the true level and lags a write by one cycle, so
      writing only while ``w_level < depth - 1`` never overfills it (``lib.fifo.AsyncFIFO``'s
      ``w_level`` is the same register).
    * ``r_rdy`` is a register (read pointer unequal to the synchronised write pointer, a cycle
      before), 0 in the cycle after a read: a read, ``r_en & r_rdy``, takes at most every
      other cycle. ``r_data`` is the word at the read pointer (the memory's read address is
      the pointer register itself; a read's next word is there when ``r_rdy`` rises again).
    """

    def __init__(self, width: int, depth: int, *, w_domain: str, r_domain: str):
        self.width, self.depth = width, depth
        self.w_domain, self.r_domain = w_domain, r_domain
        super().__init__({"w_data": In(width), "w_en": In(1), "w_level": Out(range(depth + 1)),
                          "r_data": Out(width), "r_en": In(1), "r_rdy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        bits = self.depth.bit_length()  # the address's bits and one
        wd, rd = m.d[self.w_domain], m.d[self.r_domain]

        produce_w_bin = Signal(bits)
        produce_w_nxt = Signal(bits)
        produce_w_gry = Signal(bits)
        m.d.comb += produce_w_nxt.eq(produce_w_bin + 1)
        with m.If(self.w_en):
            wd += [produce_w_bin.eq(produce_w_nxt), produce_w_gry.eq(gray_encode(produce_w_nxt))]
        produce_r_gry = Signal(bits)
        m.submodules.produce_cdc = FFSynchronizer(produce_w_gry, produce_r_gry,
                                                  o_domain=self.r_domain)

        # the read side's pointers are reset by the write side's reset (as lib.fifo.AsyncFIFO)
        consume_r_bin = Signal(bits, reset_less=True)
        consume_r_gry = Signal(bits, reset_less=True)
        consume_w_gry = Signal(bits)
        m.submodules.consume_cdc = FFSynchronizer(consume_r_gry, consume_w_gry,
                                                  o_domain=self.w_domain)
        consume_w_bin = Signal(bits)
        wd += [consume_w_bin.eq(gray_decode(consume_w_gry)),
               self.w_level.eq(produce_w_bin - consume_w_bin)]

        consume_r_nxt = Signal(bits)
        m.d.comb += consume_r_nxt.eq(consume_r_bin + 1)
        do_read = Signal()
        m.d.comb += do_read.eq(self.r_en & self.r_rdy)
        w_rst = ResetSignal(domain=self.w_domain, allow_reset_less=True)
        r_rst = Signal()
        m.submodules.rst_cdc = AsyncFFSynchronizer(w_rst, r_rst, o_domain=self.r_domain)
        with m.If(r_rst):
            rd += [consume_r_gry.eq(produce_r_gry),
                   consume_r_bin.eq(gray_decode(produce_r_gry)), self.r_rdy.eq(0)]
        with m.Else():
            with m.If(do_read):
                rd += [consume_r_bin.eq(consume_r_nxt),
                       consume_r_gry.eq(gray_encode(consume_r_nxt))]
            rd += self.r_rdy.eq(~do_read & (consume_r_gry != produce_r_gry))

        m.submodules.storage = storage = Memory(shape=self.width, depth=self.depth, init=[])
        storage.attrs["ram_style"] = "block"
        w_port = storage.write_port(domain=self.w_domain)
        r_port = storage.read_port(domain=self.r_domain)
        m.d.comb += [w_port.addr.eq(produce_w_bin[:-1]), w_port.data.eq(self.w_data),
                     w_port.en.eq(self.w_en),
                     r_port.addr.eq(consume_r_bin[:-1]), self.r_data.eq(r_port.data)]
        return m

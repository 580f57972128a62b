"""A UART (8N1) receiver and transmitter with ``lib.stream`` byte ports.

``divisor`` is clock cycles per bit (``clk_hz // baud``, at least 4). The receiver samples each
bit in its middle, checks the stop bit (a bad one is a framing error: the byte is dropped and
``framing_error`` pulses) and pushes bytes into its ``o`` stream; a byte that arrives while the
previous one is still unaccepted is dropped and ``overflow`` pulses. The receiver never needs a
reset to recover: it returns to hunting for a start bit after every byte.
"""


from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


def _check_divisor(divisor):
    if not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"divisor must be an integer of at least 4 clock cycles per bit, "
                         f"not {divisor!r}")


class UARTRx(wiring.Component):
    """8N1 receiver: ``rx`` pin in, bytes out on ``o``."""

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    overflow: Out(1)
    framing_error: Out(1)

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bits = Signal(8)
        count = Signal(range(9))
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"  # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(self.divisor - 1), count.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(Cat(bits[1:], rx)),
                                 count.eq(count + 1)]
                    with m.If(count == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.comb += self.framing_error.eq(1)
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overflow.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(bits), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UARTTx(wiring.Component):
    """8N1 transmitter: bytes in on ``i``, ``tx`` pin out (idle high)."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shreg = Signal(10, init=0x3FF)  # stop bit, 8 data bits, start bit (LSB first)
        left = Signal(range(11))
        m.d.comb += self.i.ready.eq(left == 0)
        with m.If(left == 0):
            with m.If(self.i.valid):
                m.d.sync += [shreg.eq(Cat(0, self.i.payload, 1)), left.eq(10),
                             timer.eq(self.divisor - 1), self.tx.eq(0)]
        with m.Else():
            with m.If(timer == 0):
                m.d.sync += [timer.eq(self.divisor - 1), left.eq(left - 1),
                             shreg.eq(Cat(shreg[1:], 1)), self.tx.eq(Cat(shreg[1:], 1)[0])]
                with m.If(left == 1):
                    m.d.sync += self.tx.eq(1)
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m

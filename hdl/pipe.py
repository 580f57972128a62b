"""Levelised pipelines with one global stall: the scheduling shared by the ladder's stages.

Logic is written as numbered *levels* (one LUT level each). :class:`Levels` turns the output of
level ``l`` into a register when ``l`` is a multiple of ``levels_per_stage`` (and always at the
last level), and delays shorter paths so that every value consumed at a level was produced for
the same sample. All registers advance together on ``en`` (the pipeline's global enable), so a
stalled pipeline holds every sample in place and one sample per clock flows when it does not.
"""

from amaranth.hdl import Cat, Const, Module, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def is_registered(level: int, final_level: int | None, levels_per_stage: int) -> bool:
    """Return whether the output of logic ``level`` is a register: every ``levels_per_stage``-th
    level, and always the last one."""
    return level % levels_per_stage == 0 or level == final_level


class Levels:
    """Place registers in a levelised pipeline.

    ``levels_per_stage`` is the number of logic levels between registers (1: register every
    level, the fastest; larger: fewer flip-flops, lower Fmax).
    """

    def __init__(self, m: Module, en: Value, levels_per_stage: int = 1, name: str = "p"):
        if not isinstance(levels_per_stage, int) or levels_per_stage < 1:
            raise ValueError(f"levels_per_stage must be a positive integer, not {levels_per_stage!r}")
        self.m = m
        self.en = en
        self.levels_per_stage = levels_per_stage
        self.name = name
        self._delayed: dict = {}
        self._count = 0
        self._pending: dict[int, list] = {}  # level -> [(signal, expression)]
        self.final_level = None  # set by finish(): the level whose outputs are always registered

    def registered(self, level: int) -> bool:
        """Return whether the output of ``level`` is a register."""
        return is_registered(level, self.final_level, self.levels_per_stage)

    def emit(self, expr, level: int, name: str | None = None) -> Signal:
        """Return a signal holding ``expr`` as the output of logic level ``level``."""
        self._count += 1
        expr = Value.cast(expr)
        sig = Signal(expr.shape(), name=name or f"{self.name}_l{level}_{self._count}")
        if self.registered(level):
            self._pending.setdefault(level, []).append((sig, expr))
        else:
            self.m.d.comb += sig.eq(expr)
        return sig

    def finish(self):
        """Create the registers: one wide register per level (few, wide registers simulate and
        compile much faster than many one-bit ones; the logic is the same)."""
        for level, items in sorted(self._pending.items()):
            width = sum(len(sig) for sig, _ in items)
            bus = Signal(width, name=f"{self.name}_stage_l{level}")
            with self.m.If(self.en):
                self.m.d.sync += bus.eq(Cat(*(expr.as_unsigned()[:len(sig)]
                                              for sig, expr in items)))
            offset = 0
            for sig, _ in items:
                self.m.d.comb += sig.eq(bus[offset:offset + len(sig)])
                offset += len(sig)
        self._pending.clear()

    def at(self, value, from_level: int, to_level: int):
        """Return ``value`` (the output of ``from_level``) delayed to be an input of level
        ``to_level + 1``, i.e. aligned with the outputs of ``to_level``."""
        if isinstance(value, Const) or from_level == to_level:
            return value
        assert from_level < to_level
        key = (id(value), from_level, to_level)
        if key not in self._delayed:
            prev = self.at(value, from_level, to_level - 1)
            self._delayed[key] = (self.emit(prev, to_level), value)
        return self._delayed[key][0]


class SkidBuffer(wiring.Component):
    """A stream register slice whose ``i.ready`` is a register: it cuts the combinational
    back-pressure path between two pipelines (one transfer per clock, two entries).

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    """

    def __init__(self, shape):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid = Signal.like(self.o.payload, name="skid")
        skid_valid = Signal()
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(~self.o.valid | self.o.ready):  # the output register can take a value
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & self.i.ready):  # the output is stalled: park the input
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m


def logic_rom(m: Module, init, width: int, addr: Value, en: Value, name: str,
              split_bits: int = 2) -> Signal:
    """Read ``init[addr]`` (``width``-bit raw words) from a ROM in LUTs, two register stages
    deep: the first reads ``2**split_bits`` sub-tables by the low address bits, the second picks
    one by the top bits. The word is valid two clocks (of ``en``) after its address. For devices
    whose block RAM outputs are slow (ECP5: 5.8 ns without an output register)."""
    from amaranth.hdl import Array

    aw = len(addr)
    k = min(split_bits, aw)
    lo_bits = aw - k
    mask = (1 << width) - 1
    parts = []
    for h in range(2**k):
        part = Signal(width, name=f"{name}_part{h}")
        table = [int(init[(h << lo_bits) | a]) & mask if (h << lo_bits) | a < len(init) else 0
                 for a in range(2**lo_bits)]
        value = (Array(Const(v, width) for v in table)[addr[:lo_bits]] if lo_bits
                 else Const(table[0], width))
        with m.If(en):
            m.d.sync += part.eq(value)
        parts.append(part)
    top = Signal(max(k, 1), name=f"{name}_top")
    out = Signal(width, name=f"{name}_data")
    with m.If(en):
        m.d.sync += [top.eq(addr[lo_bits:] if k else 0),
                     out.eq(Array(parts)[top] if k else parts[0])]
    return out

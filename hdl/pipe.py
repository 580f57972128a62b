"""Levelised pipelines, stalled or free-running, and the credits that let a free-running
pipeline end in a FIFO: the scheduling shared by the ladder's stages and the pipeline's admission.

Logic is written as numbered *levels* (one LUT level each). :class:`Levels` turns the output of
level ``l`` into a register when ``l`` is a multiple of ``levels_per_stage`` (and always at the
last level), and delays shorter paths so that every value consumed at a level was produced for
the same sample. All registers advance together on ``en`` (the pipeline's global enable), so a
stalled pipeline holds every sample in place and one sample per clock flows when it does not;
with ``en=None`` the registers have no enable and advance every clock (free-running).

:func:`credit_counter`: the admission of a free-running pipeline that ends in a FIFO: a beat is
taken only against a credit, a credit comes back when the FIFO is read, so the FIFO never
overflows and back-pressure ends there.
"""

from contextlib import contextmanager

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


def is_registered(level: int, final_level: int | None, levels_per_stage: int) -> bool:
    """Return whether the output of logic ``level`` is a register: every ``levels_per_stage``-th
    level, and always the last one."""
    return level % levels_per_stage == 0 or level == final_level


@contextmanager
def enabled(m: Module, en: Value | None):
    """``with m.If(en)``, or no condition at all when ``en`` is None (a free-running register)."""
    if en is None:
        yield
    else:
        with m.If(en):
            yield


def check_lanes(lanes) -> int:
    """Check a sample-lane count (a positive integer); return it."""
    if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
        raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
    return lanes


def check_stall(stall):
    """Check a stage's stall mode (True, ``"ready"`` or False); return it."""
    if not (stall is True or stall is False or stall == "ready"):
        raise ValueError(f"stall must be True, False or 'ready', not {stall!r}")
    return stall


def stream_enable(m: Module, stall, i, o):
    """Drive ``i.ready`` of a pipeline between streams ``i`` and ``o``; return its registers'
    enable (None: no enable).

    ``stall=True``: ``~o.valid | o.ready`` (a stalled pipeline still fills its bubbles).
    ``"ready"``: ``o.ready`` itself, so a registered ``o.ready`` (a :class:`SkidBuffer`'s)
    drives every enable with no logic between. False: no enable, ``i.ready`` is 1 and
    ``o.ready`` is ignored (free-running; the caller keeps room for every beat)."""
    if stall is True:
        en = Signal()
        m.d.comb += [en.eq(~o.valid | o.ready), i.ready.eq(en)]
        return en
    if stall == "ready":
        m.d.comb += i.ready.eq(o.ready)
        return o.ready
    m.d.comb += i.ready.eq(1)
    return None


def credit_counter(m: Module, *, total: int, take: Value, give: Value, cost: int = 1,
                   lookahead: bool = False, name: str = "credits"):
    """Count the credits of a FIFO at the end of a free-running pipeline; return
    ``(count, ok)``, both registers of ``m``.

    ``total`` credits at reset (at most the FIFO entries guaranteed free when it is empty); a
    ``take`` spends ``cost`` (the FIFO entries the taken beat will fill), a ``give`` (one entry
    read from the FIFO) returns one. ``ok`` says a take is allowed in this cycle. With
    ``lookahead`` it is registered from the counter's next value (``ok = count >= cost``, no lag:
    the fewest credits for full rate; computed as compares of the counter with constants,
    selected by ``take`` and ``give``, so no adder sits in front of it); without, from the
    counter alone (``ok = count >= 2 * cost`` a clock ago; the loop then needs ``cost`` more
    credits). Either way ``count`` never goes negative: the FIFO
    never holds more than ``total`` entries that were taken against it.
    """
    if total < (1 if lookahead else 2) * cost:
        raise ValueError(f"{name}: {total} credits cannot pay for one take of {cost}")
    count = Signal(range(total + 1), init=total, name=name)
    ok = Signal(init=1, name=f"{name}_ok" if name != "credits" else "credit_ok")
    if lookahead:
        # one adder, its addend chosen by take and give; ok: count's next value >= cost, as
        # compares of count with constants
        with m.If(take & ~give):
            m.d.sync += count.eq(count - cost)
        with m.Elif(give & ~take):
            m.d.sync += count.eq(count + 1)
        with m.Elif(take & give & (cost != 1)):
            m.d.sync += count.eq(count - (cost - 1))
        m.d.sync += ok.eq(Mux(take, Mux(give, count >= 2 * cost - 1, count >= 2 * cost),
                              Mux(give, count + 1 >= cost, count >= cost)))
    else:
        m.d.sync += [count.eq(count - Mux(take, cost, 0) + give), ok.eq(count >= 2 * cost)]
    return count, ok


class Levels:
    """Place registers in a levelised pipeline.

    ``levels_per_stage`` is the number of logic levels between registers (1: register every
    level, the fastest; larger: fewer flip-flops, lower Fmax). ``reset_less``: the stage
    registers have no reset (the valid bits that travel beside them do): on the iCE40 an
    enabled register with a reset needs ``en | rst`` in a LUT, without one ``en`` drives it.
    """

    def __init__(self, m: Module, en: Value | None, levels_per_stage: int = 1, name: str = "p",
                 reset_less: bool = False):
        if not isinstance(levels_per_stage, int) or levels_per_stage < 1:
            raise ValueError(f"levels_per_stage must be a positive integer, not {levels_per_stage!r}")
        self.m = m
        self.en = en
        self.levels_per_stage = levels_per_stage
        self.name = name
        self.reset_less = reset_less  # the stage registers (the valid bits are not here)
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
            bus = Signal(width, name=f"{self.name}_stage_l{level}", reset_less=self.reset_less)
            with enabled(self.m, self.en):
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
        # Every register's next value is one LUT of registers and o.ready (on the iCE40: the
        # data registers have no reset, so their enables need no `| rst`).
        skid = Signal.like(self.o.payload, name="skid", reset_less=True)
        out = Signal.like(self.o.payload, name="out", reset_less=True)
        skid_valid = Signal(name="skid_valid")
        load = Signal()  # the output register takes a value (the skid's, else the input's)
        m.d.comb += [self.i.ready.eq(~skid_valid), load.eq(~self.o.valid | self.o.ready),
                     self.o.payload.eq(out)]
        with m.If(~skid_valid):  # an empty skid register may always take the input
            m.d.sync += skid.eq(self.i.payload)
        with m.If(load):
            m.d.sync += out.eq(Mux(skid_valid, skid, self.i.payload))
        m.d.sync += [
            self.o.valid.eq(~load | skid_valid | self.i.valid),
            # parked: the output is stalled and the skid holds a beat or takes the input's
            skid_valid.eq(~load & (skid_valid | self.i.valid)),
        ]
        return m


def logic_rom(m: Module, init, width: int, addr: Value, en: Value, name: str,
              split_bits: int = 2) -> Signal:
    """Read ``init[addr]`` (``width``-bit raw words) from a ROM in LUTs, two register stages
    deep: the first reads ``2**split_bits`` sub-tables by the low address bits, the second picks
    one by the top bits. The word is valid two clocks (of ``en``; None: every clock) after its
    address. For devices
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
        with enabled(m, en):
            m.d.sync += part.eq(value)
        parts.append(part)
    top = Signal(max(k, 1), name=f"{name}_top")
    out = Signal(width, name=f"{name}_data")
    with enabled(m, en):
        m.d.sync += [top.eq(addr[lo_bits:] if k else 0),
                     out.eq(Array(parts)[top] if k else parts[0])]
    return out


class CreditFIFO(wiring.Component):
    """A FIFO for a writer that holds a credit for every write (:func:`credit_counter`): it has
    no ``i.ready`` to wait on, and every flag is a register, so the reader's ``o.ready`` passes
    through one LUT level (``~o.valid | o.ready``, with the registered ``nonempty``) before the
    registers it enables.

    ``depth`` memory entries (a power of two: the pointers wrap by themselves) and the output
    register. At most ``depth - 1`` entries may wait in the memory (equal pointers mean empty):
    the writer's credits must never allow more, or entries are lost. A word written in cycle
    ``c`` is offered on ``o`` from ``c + 2``.

    Members
    -------
    i : In(stream.Signature(shape))  (``i.ready`` is 1: the writer never waits)
    o : Out(stream.Signature(shape))
    """

    def __init__(self, shape, depth: int):
        if not isinstance(depth, int) or depth < 1 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two, not {depth!r}")
        self.shape, self.depth = shape, depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        from amaranth.lib import memory

        m = Module()
        width = len(Value.cast(self.i.payload))
        # A cell is never read in the cycle it is written (the credits keep the FIFO from
        # filling), so Yosys need not emulate read-during-write (a bypass register and a mux).
        m.submodules.storage = storage = memory.Memory(shape=width, depth=self.depth, init=[],
                                                       attrs={"no_rw_check": 1})
        w_port, r_port = storage.write_port(), storage.read_port(domain="sync")
        produce = Signal(range(self.depth), name="produce")
        consume = Signal(range(self.depth), name="consume")
        level = Signal(range(self.depth), name="level")  # entries in the memory
        nonempty = Signal(name="nonempty")  # level != 0, a register
        write = self.i.valid
        read = Signal()
        m.d.comb += [
            self.i.ready.eq(1),
            read.eq(nonempty & (~self.o.valid | self.o.ready)),
            w_port.addr.eq(produce), w_port.data.eq(self.i.payload), w_port.en.eq(write),
            r_port.addr.eq(consume), r_port.en.eq(read),
            self.o.payload.eq(r_port.data),
        ]
        with m.If(write):
            m.d.sync += produce.eq(produce + 1)
        with m.If(read):
            m.d.sync += [consume.eq(consume + 1), self.o.valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(write & ~read):
            m.d.sync += level.eq(level + 1)
        with m.Elif(read & ~write):
            m.d.sync += level.eq(level - 1)
        # level's next value != 0 as compares of level with constants; the late read last
        m.d.sync += nonempty.eq(write | Mux(read, level != 1, nonempty))
        return m


class LaneGather(wiring.Component):
    """Gather ``lanes`` consecutive beats of ``i`` into one beat of ``o`` (element 0 the
    earliest): a one-sample stream onto sample lanes (``AdcPipeline(lanes=N)``'s input).

    ``o`` is a register: a beat is offered once its last element has arrived, and ``i`` is
    taken while the beat being filled is not waiting (``~o.valid | o.ready``), so samples flow
    at one per clock. Inverse: :class:`LaneScatter`.

    Members
    -------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(ArrayLayout(shape, lanes)))
    """

    def __init__(self, shape, lanes: int):
        from amaranth.lib import data

        self.lanes = check_lanes(lanes)
        super().__init__({"i": In(stream.Signature(shape)),
                          "o": Out(stream.Signature(data.ArrayLayout(shape, lanes)))})

    def elaborate(self, platform):
        m = Module()
        n = self.lanes
        index = Signal(range(n), name="index")
        beat = Signal.like(self.o.payload, name="beat")
        m.d.comb += [self.o.payload.eq(beat), self.i.ready.eq(~self.o.valid | self.o.ready)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.Switch(index):
                for k in range(n):
                    with m.Case(k):
                        m.d.sync += beat[k].eq(self.i.payload)
            with m.If(index == n - 1):
                m.d.sync += [index.eq(0), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += index.eq(index + 1)
        return m


class LaneScatter(wiring.Component):
    """Send the ``lanes`` elements of each beat of ``i`` one after another on ``o`` (element
    0 first): sample lanes back onto a one-sample stream. Inverse: :class:`LaneGather`.

    Members
    -------
    i : In(stream.Signature(ArrayLayout(shape, lanes)))
    o : Out(stream.Signature(shape))
    """

    def __init__(self, shape, lanes: int):
        from amaranth.lib import data

        self.lanes = check_lanes(lanes)
        super().__init__({"i": In(stream.Signature(data.ArrayLayout(shape, lanes))),
                          "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        n = self.lanes
        index = Signal(range(n), name="index")
        last = index == n - 1
        m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready & last)]
        with m.Switch(index):  # a case per lane (a variable index makes one enormous line)
            for k in range(n):
                with m.Case(k):
                    m.d.comb += self.o.payload.eq(self.i.payload[k])
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += index.eq(Mux(last, 0, index + 1))
        return m

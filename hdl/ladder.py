"""`ComparatorLadder`: the flash ADC's comparator ladder and thermometer-to-binary encoder.

Golden model: :func:`ref_comparator_ladder` (``code = number of thresholds t with x >= t``).

Architecture (every level one LUT level deep, registered every ``levels_per_stage`` levels):

1. The sample is cut into ``chunk_bits``-bit chunks. For each chunk position and each distinct
   chunk value among the thresholds, ``gt = chunk > v`` and ``eq = chunk == v`` (the lowest chunk:
   ``ge = chunk >= v``) are computed once and shared by every threshold with that chunk value.
2. Chunk results are merged pairwise, ``GT = gt_hi | eq_hi & gt_lo``, ``EQ = eq_hi & eq_lo``,
   ``GE = gt_hi | eq_hi & ge_lo`` (shared again where thresholds share their upper chunks),
   giving the thermometer code ``T[k] = x >= thresholds[k]``.
3. The encoder: with sorted constant thresholds the thermometer code is monotone, and bit ``j``
   of the code is the XOR of ``T[m * 2**j]`` over ``m >= 1`` (XOR trees of four inputs per level).
   With runtime-writeable thresholds (which the board may load in any order) a ones-count adder
   tree is used instead: it counts correctly for any thresholds, bubbles included.

Stalling (the default) or free-running (``stall=False``): stalled, every register advances on
one enable, ``~o.valid | o.ready`` (``stall="ready"``: ``o.ready``), so a beat not taken holds
the whole ladder; free-running,
no register has an enable, ``i.ready`` is 1 and a beat leaves ``latency`` clocks after it was
taken whatever ``o.ready`` says (the caller keeps room for it: :class:`hdl.pipeline.AdcPipeline`
puts a FIFO after the ladder and admits a sample only against a credit for that FIFO).

Sample lanes (``lanes=N``): N samples per beat (an ``ArrayLayout`` payload, lane 0 the earliest
sample), N copies of the compare tree and encoder in one pipeline (one enable, if any), sharing the
thresholds (constant: the compare constants; runtime: one register bank, so every lane of a beat
sees the same set).

Runtime-writeable thresholds (``runtime=True``): a write port (:class:`ThresholdWriteSignature`)
fills a shadow bank, and ``commit`` copies the whole bank into the active thresholds in one
clock, so each sample is compared with the old set or the new set, never a mixture. The port is
registered: a write or ``commit`` presented in cycle ``c`` acts at the end of cycle ``c + 1``; a
sample accepted (``i.valid & i.ready``) up to cycle ``c + 1`` of a commit uses the old set, every
later one the new set.
"""

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from adcforge.design import ladder_size_problem, threshold_problem
from adcforge.golden import ref_comparator_ladder, ref_comparator_ladder_unsorted
from .pipe import Levels, check_lanes, check_stall, enabled, is_registered, stream_enable

__all__ = ["ComparatorLadder", "ThresholdWriteSignature", "ref_comparator_ladder",
           "ref_comparator_ladder_unsorted", "check_ladder_args", "check_lanes", "lane_shape"]


def lane_shape(shape, lanes: int):
    """The payload of ``lanes`` values of ``shape``: ``shape`` itself for one lane, else an
    ``ArrayLayout`` (element 0 = the earliest sample)."""
    return shape if lanes == 1 else data.ArrayLayout(shape, lanes)


class ThresholdWriteSignature(wiring.Signature):
    """Write port of a runtime-writeable ladder: ``we`` writes ``data`` into shadow threshold
    ``addr``; ``commit`` makes the whole shadow bank active at once."""

    def __init__(self, bits: int, input_bits: int):
        self.bits, self.input_bits = bits, input_bits
        super().__init__({
            "addr": Out(max(bits, 1)),
            "data": Out(input_bits),
            "we": Out(1),
            "commit": Out(1),
        })


def check_ladder_args(input_bits, thresholds, *, sorted_required=True) -> int:
    """Check a ladder's parameters; return the code width ``b``. Errors state the rule broken."""
    if not isinstance(input_bits, int) or isinstance(input_bits, bool) or not 1 <= input_bits <= 16:
        raise ValueError(f"input_bits must be an integer in [1, 16], not {input_bits!r}")
    thresholds = list(thresholds)
    problem = ladder_size_problem(len(thresholds), input_bits)
    if problem:
        raise ValueError(f"thresholds: got {len(thresholds)}; {problem}")
    bad = threshold_problem(thresholds, 2**input_bits - 1, sorted_required=sorted_required)
    if bad:
        raise ValueError(f"threshold {bad[0]}: got {bad[1]!r}; {bad[2]}")
    return (len(thresholds) + 1).bit_length() - 1


class ComparatorLadder(wiring.Component):
    """Comparator ladder: one ``input_bits`` sample in, one ``b``-bit code out, per clock.

    Parameters
    ----------
    input_bits : int
        Width of the sample word, 1..16.
    thresholds : list of int
        ``2**b - 1`` thresholds in ``[1, 2**input_bits - 1]``, strictly increasing; with
        ``runtime=True`` they are the values after reset.
    runtime : bool
        Make the thresholds writeable through the ``thr`` port (no sharing of compares).
    chunk_bits : int or None
        Width of the partial compares, 1..8. Default 4 for constant thresholds (a compare with a
        constant nibble fills one LUT4) and 2 for runtime thresholds (a compare of two 2-bit
        values fills one LUT4).
    levels_per_stage : int
        Logic levels between pipeline registers (1 = register every level).
    lanes : int
        Samples per beat, a positive integer. With 1 the payloads are plain ``unsigned``; with
        more, ``ArrayLayout(unsigned(...), lanes)`` (element 0 = the earliest sample).
    stall : True, "ready" or False
        True (the default): one clock enable, ``~o.valid | o.ready``, holds every stage.
        ``"ready"``: the enable is ``o.ready`` itself (for a registered ``o.ready``: no logic
        between it and the stage registers). False: no clock enable; ``i.ready`` is 1 and
        ``o.ready`` is ignored, so ``o`` must always be able to take a beat ``latency`` clocks
        after one was offered on ``i``. (:func:`hdl.pipe.stream_enable`)

    Members
    -------
    i : In(stream.Signature(input_bits))  (``lanes`` > 1: an array of ``lanes`` samples)
    o : Out(stream.Signature(b))  (``lanes`` > 1: an array of ``lanes`` codes)
    thr : In(ThresholdWriteSignature(b, input_bits)), only with ``runtime=True``.
    """

    def __init__(self, input_bits: int, thresholds, *, runtime: bool = False,
                 chunk_bits: int | None = None, levels_per_stage: int = 1, lanes: int = 1,
                 stall: bool = True):
        self.bits = check_ladder_args(input_bits, thresholds)
        self.lanes = check_lanes(lanes)
        if chunk_bits is None:
            chunk_bits = 2 if runtime else 4
        if not isinstance(chunk_bits, int) or not 1 <= chunk_bits <= 8:
            raise ValueError(f"chunk_bits must be an integer in [1, 8], not {chunk_bits!r}")
        if not isinstance(levels_per_stage, int) or levels_per_stage < 1:
            raise ValueError(f"levels_per_stage must be a positive integer, not "
                             f"{levels_per_stage!r}")
        self.input_bits = input_bits
        self.thresholds = tuple(thresholds)
        self.runtime = runtime
        self.chunk_bits = chunk_bits
        self.levels_per_stage = levels_per_stage
        self.stall = check_stall(stall)
        self.encoder = "popcount" if runtime else "xor"
        members = {
            "i": In(stream.Signature(lane_shape(unsigned(input_bits), lanes))),
            "o": Out(stream.Signature(lane_shape(unsigned(self.bits), lanes))),
        }
        if runtime:
            members["thr"] = In(ThresholdWriteSignature(self.bits, input_bits))
        super().__init__(members)
        self.latency = self._count_stages()

    # -- structure ------------------------------------------------------------------------------

    def _chunks(self):
        """Return chunk bit ranges ``(lo, hi)`` from the most significant chunk down."""
        out, hi = [], self.input_bits
        while hi > 0:
            lo = max(0, hi - self.chunk_bits)
            out.append((lo, hi))
            hi = lo
        return out

    def _compare_levels(self) -> int:
        levels, p = 1, len(self._chunks())
        while p > 1:
            p = (p + 1) // 2
            levels += 1
        return levels

    def _encoder_levels(self) -> int:
        n = len(self.thresholds)
        if self.encoder == "xor":
            levels, count = 0, n
            while count > 1:
                count = (count + 3) // 4
                levels += 1
            return levels
        return max(0, (n - 1).bit_length()) if n > 1 else 0

    def _count_stages(self) -> int:
        final = self._compare_levels() + self._encoder_levels()
        return sum(is_registered(lv, final, self.levels_per_stage) for lv in range(1, final + 1))

    # -- elaboration ----------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        en = stream_enable(m, self.stall, self.i, self.o)
        # the data registers reset only in the default mode (its netlist as before)
        lv = Levels(m, en, self.levels_per_stage, name="ladder",
                    reset_less=self.stall is not True)
        compare_levels = self._compare_levels()
        lv.final_level = compare_levels + self._encoder_levels()

        n = len(self.thresholds)
        if self.runtime:
            active = [Signal(self.input_bits, name=f"thr_active_{k}", init=t)
                      for k, t in enumerate(self.thresholds)]
            shadow = [Signal(self.input_bits, name=f"thr_shadow_{k}", init=t)
                      for k, t in enumerate(self.thresholds)]
            # The write port is registered (and decoded to one-hot) before it touches the
            # banks: a write or commit acts one clock after it is presented.
            write_one_hot = Signal(n)
            write_data = Signal(self.input_bits)
            commit = Signal()
            m.d.sync += [
                write_one_hot.eq(Cat(self.thr.we & (self.thr.addr == k) for k in range(n))),
                write_data.eq(self.thr.data),
                commit.eq(self.thr.commit),
            ]
            for k in range(n):
                with m.If(write_one_hot[k]):
                    m.d.sync += shadow[k].eq(write_data)
            with m.If(commit):
                m.d.sync += [a.eq(s) for a, s in zip(active, shadow)]
            sources = active
        else:
            sources = [Const(t, self.input_bits) for t in self.thresholds]

        codes = []
        for lane in range(self.lanes):
            x = self.i.payload if self.lanes == 1 else self.i.payload[lane]
            codes.append(self._lane(lv, x, sources, compare_levels,
                                    f"_s{lane}" if self.lanes > 1 else ""))
        lv.finish()
        if self.lanes == 1:
            m.d.comb += self.o.payload.eq(codes[0])
        else:
            m.d.comb += [self.o.payload[lane].eq(code) for lane, code in enumerate(codes)]

        # Valid bits travel with the data through the same number of registers.
        valid = self.i.valid
        for s in range(self.latency):
            v = Signal(name=f"valid_{s}")
            with enabled(m, en):
                m.d.sync += v.eq(valid)
            valid = v
        m.d.comb += self.o.valid.eq(valid)
        return m

    def _lane(self, lv, x, sources, compare_levels, suffix):
        """Build one lane's compares and encoder on sample ``x``; return its code."""
        n = len(self.thresholds)
        # Level 1: partial compares, shared by chunk value (constants) or per threshold.
        chunks = self._chunks()
        last = len(chunks) - 1
        memo = {}

        def leaf(k, p):
            lo, hi = chunks[p]
            if self.runtime:
                key, v = (p, "thr", k), sources[k][lo:hi]
            else:
                v_int = (self.thresholds[k] >> lo) & ((1 << (hi - lo)) - 1)
                key, v = (p, v_int), Const(v_int, hi - lo)
            if key not in memo:
                xc = x[lo:hi]
                if p == last:
                    memo[key] = ("ge", lv.emit(xc >= v, 1, name=f"ge_c{p}_{key[-1]}{suffix}"))
                else:
                    memo[key] = ("gteq", lv.emit(xc > v, 1, name=f"gt_c{p}_{key[-1]}{suffix}"),
                                 lv.emit(xc == v, 1, name=f"eq_c{p}_{key[-1]}{suffix}"))
            return memo[key]

        def combine(hi, lo, level):
            key = ("comb", level, id(hi), id(lo))
            if key not in memo:
                if lo[0] == "ge":
                    memo[key] = ("ge", lv.emit(hi[1] | hi[2] & lo[1], level))
                else:
                    memo[key] = ("gteq", lv.emit(hi[1] | hi[2] & lo[1], level),
                                 lv.emit(hi[2] & lo[2], level))
            return memo[key]

        def delay(node, level):
            key = ("delay", level, id(node))
            if key not in memo:
                memo[key] = (node[0],) + tuple(lv.at(s, level - 1, level) for s in node[1:])
            return memo[key]

        therm = []
        for k in range(n):
            nodes = [leaf(k, p) for p in range(len(chunks))]
            level = 1
            while len(nodes) > 1:
                level += 1
                merged = []
                if len(nodes) % 2:
                    merged.append(delay(nodes[0], level))
                    nodes = nodes[1:]
                for j in range(0, len(nodes), 2):
                    merged.append(combine(nodes[j], nodes[j + 1], level))
                nodes = merged
            therm.append(nodes[0][1])
        assert level == compare_levels
        if self.runtime:
            # Named copies of the thermometer code (wires only, no logic): `adcforge prove`
            # checks the compares and the ones-count encoder of free thresholds separately.
            for k, t in enumerate(therm):
                alias = Signal(name=f"therm_{k}{suffix}")
                lv.m.d.comb += alias.eq(t)

        # Encoder: thermometer -> binary.
        code_bits = []
        if self.encoder == "xor":
            for j in range(self.bits):
                terms = [therm[m * 2**j - 1] for m in range(1, n // 2**j + 1)]
                code_bits.append(self._tree(lv, terms, compare_levels, lambda a, b: a ^ b, 4))
            code = Cat(*code_bits)
        else:
            code = self._tree(lv, therm, compare_levels, lambda a, b: a + b, 2)
        return code

    @staticmethod
    def _tree(lv, terms, level, op, fanin):
        """Reduce ``terms`` (outputs of ``level``) with ``op``, ``fanin`` per level; return the
        result aligned with ``lv.final_level``."""
        while len(terms) > 1:
            level += 1
            reduced = []
            for j in range(0, len(terms), fanin):
                group = terms[j:j + fanin]
                if len(group) == 1:
                    reduced.append(lv.at(group[0], level - 1, level))
                    continue
                acc = group[0]
                for t in group[1:]:
                    acc = op(acc, t)
                reduced.append(lv.emit(acc, level))
            terms = reduced
        return lv.at(terms[0], level, lv.final_level)

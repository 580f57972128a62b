"""`AdcPipeline`: the blocks of one design file chained: ladder → decode → (FIFO → POST MAC).

Golden model: :func:`ref_adc_pipeline`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from adcforge.design import Design
from adcforge.errors import AdcforgeError

from adcforge.golden import ref_adc_pipeline

from . import CODES_PATH_NAMES
from .decode import DecodedLayout, DecodeLUT
from .ladder import ComparatorLadder, ThresholdWriteSignature, check_lanes, lane_shape
from .pipe import CreditFIFO, credit_counter
from .post import POSTMac

# codes path -> the ladder's and the decoder's stall mode (hdl.pipe.stream_enable)
CODES_PATHS = dict(zip(CODES_PATH_NAMES, (True, "ready", False)))

__all__ = ["AdcPipeline", "ChannelSerializer", "check_design_lanes", "lanes_problem",
           "ref_adc_pipeline"]


class ChannelSerializer(wiring.Component):
    """Send the ``channels`` decoded values of one code one after another (channel 0 first).

    Members
    -------
    i : In(stream.Signature(DecodedLayout(bits, width, channels)))
    o : Out(stream.Signature(signed(width)))
    """

    def __init__(self, bits: int, width: int, channels: int):
        self.channels = channels
        super().__init__({
            "i": In(stream.Signature(DecodedLayout(bits, width, channels))),
            "o": Out(stream.Signature(signed(width))),
        })

    def elaborate(self, platform):
        m = Module()
        index = Signal(range(self.channels))
        last = index == self.channels - 1
        m.d.comb += [
            self.o.valid.eq(self.i.valid),
            self.o.payload.eq(self.i.payload.values[index]),
            self.i.ready.eq(self.o.ready & last),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += index.eq(0 if self.channels == 1 else
                                 (index + 1) % self.channels)
        return m


class AdcPipeline(wiring.Component):
    """The ADC of one design file: samples in; codes (with their decoded values) or POST-layer
    results out.

    Sample lanes: with ``lanes = N`` every beat of ``i`` carries N consecutive samples of one
    stream (a ``lib.data.ArrayLayout``, element 0 the earliest), N ladders side by side share the
    design's thresholds (one register bank with ``runtime_thresholds``: every lane of a beat sees
    the same set), the decode runs per lane and ``codes`` carries N codes per beat in the same
    order; the POST layer takes the N samples' ``N * channels`` activations per clock and
    ``outputs`` carries one inference's ``mac.outputs`` results per beat. With ``lanes = 1``
    (the default) every payload is the plain one-sample shape, and ``outputs`` carries one
    result per beat. Results equal :func:`ref_adc_pipeline` of the samples in stream order.

    With a MAC layer, in mode 1 nothing between the input and a small FIFO after the MAC ever
    stalls (the ladder, the decoder and the MAC have no clock enable): a beat is accepted only
    when the FIFO has room for the results it will produce (credits, sized from the latency)
    and when the MAC can take it (a beat every ``ceil(outputs / mac_lanes)`` clocks; an
    inference's last beat no sooner than the previous inference's results have left the MAC),
    so the back-pressure of ``outputs`` ends at that FIFO. With ``codes_path="fifo"`` mode 0
    never stalls either (credits for a FIFO after the decoder).

    Parameters
    ----------
    design : Design
        A validated design file.
    runtime_thresholds : bool
        Make the ladder's thresholds writeable through ``thr`` (the design's values at reset).
    mac_lanes : int or None
        Parallel multiply lanes of the MAC core: weights applied per clock to each activation
        (default: one per output, so the MAC takes a beat every clock).
    levels_per_stage : int
        Logic levels between the ladder's pipeline registers.
    lanes : int
        Samples per clock, a positive integer; with a MAC layer it must divide the samples per
        inference (``mac.inputs / channels``).
    rom_style : str or None
        Yosys's ``rom_style`` for the decode and POST tables (``"logic"``: LUTs, not block
        RAM); None (the default) lets Yosys choose.
    codes_path : str
        How the ``codes`` path (mode 0) meets back-pressure on ``codes``. ``"stall"`` (the
        default): one clock enable, ``~codes.valid | codes.ready``, on the decoder and every
        ladder register. ``"ready"``: the enable is ``codes.ready`` itself (a registered ready
        then drives every enable with no logic between; a stalled pipeline does not fill its
        bubbles). ``"fifo"``: no enable: the ladder and the decoder run free into a
        :class:`~hdl.pipe.CreditFIFO` and a sample is taken only against a credit for it
        (``latency + 3`` credits, one beat per clock; ``codes`` offers a beat ``latency + 2``
        clocks after its sample), so the back-pressure ends at that FIFO. Results are the same
        for all three; their size and speed differ by device (docs/boards.md); ``adcforge prove
        --codes-path`` proves each.

    Members
    -------
    i : In(stream.Signature(input_bits))  (``lanes`` > 1: ``ArrayLayout(unsigned(input_bits),
        lanes)``)
        Samples.
    codes : Out(stream.Signature(DecodedLayout(bits, width, channels)))  (``lanes`` > 1: an
        ``ArrayLayout`` of ``lanes`` of them)
        One code and its decoded values per sample (with a MAC layer: when ``mode`` is 0).
    outputs : Out(stream.Signature(signed(mac.output_bits))), with a MAC layer only
        ``mac.outputs`` results per ``design.samples_per_inference`` samples, when ``mode`` is 1
        (``lanes`` > 1: one beat per inference, ``ArrayLayout(signed(output_bits), outputs)``).
    mode : In(1), with a MAC layer only
        0: samples → codes; 1: samples → MAC results. Change it only while the pipeline is
        empty (no sample in flight).
    thr : In(ThresholdWriteSignature), with ``runtime_thresholds`` only.
    """

    def __init__(self, design: Design, *, runtime_thresholds: bool = False, mac_lanes=None,
                 levels_per_stage: int = 1, lanes: int = 1, rom_style: str | None = None,
                 codes_path: str = "stall"):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {type(design).__name__}")
        check_lanes(lanes)
        problem = lanes_problem(design, lanes)
        if problem:
            raise ValueError(problem)
        self.design = design
        self.lanes = lanes
        self.runtime_thresholds = runtime_thresholds
        if codes_path not in CODES_PATHS:
            raise ValueError(f"codes_path must be one of {', '.join(CODES_PATHS)}, not "
                             f"{codes_path!r}")
        self.codes_path = codes_path
        stall = CODES_PATHS[codes_path]
        self.ladder = ComparatorLadder(design.input_bits, design.thresholds,
                                       runtime=runtime_thresholds,
                                       levels_per_stage=levels_per_stage, lanes=lanes,
                                       stall=stall)
        self.decode = DecodeLUT(design.decode.table, design.decode.width, lanes=lanes,
                                rom_style=rom_style, stall=stall)
        self.mac = (POSTMac.from_design(design, mac_lanes=mac_lanes,
                                        in_lanes=lanes * design.channels,
                                        out_lanes=1 if lanes == 1 else design.mac.outputs,
                                        stall=False, rom_style=rom_style)
                    if design.mac is not None else None)
        # clocks from a sample's acceptance to its decoded values (the FIFO's write side)
        self.latency = self.ladder.latency + self.decode.latency
        # The codes FIFO: a credit goes round in latency + 3 clocks (the write, the CreditFIFO's
        # two clocks to its output, where the read gives it back to the counter, whose flag is
        # registered with lookahead), so that many credits keep one beat per clock flowing.
        codes_fifo = codes_path == "fifo"
        self.codes_latency = self.latency + (2 if codes_fifo else 0)
        self.codes_credits = self.latency + 3 if codes_fifo else None
        # CreditFIFO: a memory of a power of two entries, more than the credits (at most
        # depth - 1 may wait in it)
        self.codes_fifo_depth = (2 ** self.codes_credits.bit_length() if codes_fifo
                                 else None)
        if self.mac is not None:
            mac = self.mac
            hold = 1  # the register between the decoder's table and the MAC's
            # results in flight at most: one inference's per beat_cycles * beats clocks
            flight = self.latency + hold + mac.latency + mac.output_beats + 2
            per_inference = mac.groups * mac.beats
            # (+1 inference: credit_ok lags the counter by a clock, see elaborate). The result
            # FIFO is a CreditFIFO, as the codes FIFO: a write in cycle c is offered from c + 2
            # (as SyncFIFOBuffered's was), so the credits' round trip is unchanged.
            self.credits = mac.output_beats * (-(-flight // per_inference) + 3)
            # its memory, a power of two entries, more than the credits (at most depth - 1 wait
            # in it; the output register is one more entry)
            self.fifo_depth = 2 ** self.credits.bit_length()
        decoded = DecodedLayout(design.bits, design.decode.width, design.channels)
        members = {
            "i": In(stream.Signature(lane_shape(unsigned(design.input_bits), lanes))),
            "codes": Out(stream.Signature(lane_shape(decoded, lanes))),
        }
        if self.mac is not None:
            members["outputs"] = Out(stream.Signature(self.mac.o.payload.shape()))
            members["mode"] = In(1)
        if runtime_thresholds:
            members["thr"] = In(ThresholdWriteSignature(design.bits, design.input_bits))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ladder = ladder = self.ladder
        m.submodules.decode = decode = self.decode
        wiring.connect(m, ladder.o, decode.i)
        if self.runtime_thresholds:
            wiring.connect(m, wiring.flipped(self.thr), ladder.thr)
        mode = self.mode if self.mac is not None else Const(0, 1)
        codes_take = Signal()
        free = self.codes_path == "fifo"  # the ladder and the decoder have no enable
        if free:
            # The codes path: ladder and decoder free-running, a FIFO after them; a sample is
            # taken (mode 0) only against a credit for that FIFO, so back-pressure on ``codes``
            # ends there.
            m.submodules.codes_fifo = cfifo = CreditFIFO(decode.o.payload.shape(),
                                                         self.codes_fifo_depth)
            _, codes_ok = credit_counter(m, total=self.codes_credits, take=codes_take,
                                         give=self.codes.valid & self.codes.ready,
                                         lookahead=True, name="codes_credits")
            wiring.connect(m, cfifo.o, wiring.flipped(self.codes))
            m.d.comb += [cfifo.i.payload.eq(decode.o.payload),
                         cfifo.i.valid.eq(decode.o.valid & ~mode)]
        else:  # the codes path stalls: codes.ready (with "stall": ~codes.valid | codes.ready) is
            # the decoder's and every ladder register's enable
            codes_ok = ladder.i.ready
            m.d.comb += [self.codes.payload.eq(decode.o.payload),
                         self.codes.valid.eq(decode.o.valid & ~mode),
                         decode.o.ready.eq(mode | self.codes.ready)]
        m.d.comb += ladder.i.payload.eq(self.i.payload)
        if self.mac is None:
            m.d.comb += [self.i.ready.eq(codes_ok), codes_take.eq(self.i.valid & codes_ok),
                         ladder.i.valid.eq(self.i.valid & codes_ok if free else self.i.valid)]
            return m

        N, C, W = self.lanes, self.design.channels, self.design.decode.width
        m.submodules.mac = mac = self.mac
        G, B, R = mac.groups, mac.beats, mac.output_beats
        # The activations of a beat, sample-major and channel-minor (the design's input order).
        lanes = [decode.o.payload] if N == 1 else [decode.o.payload[k] for k in range(N)]
        acts = Cat(*(lane.values[c] for lane in lanes for c in range(C)))
        mac_valid = decode.o.valid & self.mode
        # A register between the decoder's table and the MAC's (block RAM outputs are slow).
        if G == 1:
            act_reg, act_valid = Signal(len(acts)), Signal()
            m.d.sync += [act_reg.eq(acts), act_valid.eq(mac_valid)]
            m.d.comb += [mac.i.payload.eq(act_reg), mac.i.valid.eq(act_valid)]
        else:  # hold each beat for the G clocks the MAC takes for it
            hold = Signal(len(acts))
            hold_count = Signal(range(G + 1))
            with m.If(mac_valid):
                m.d.sync += [hold.eq(acts), hold_count.eq(G)]
            with m.Elif(hold_count != 0):
                m.d.sync += hold_count.eq(hold_count - 1)
            m.d.comb += [mac.i.payload.eq(hold), mac.i.valid.eq(hold_count != 0)]

        # The result FIFO: written without a ready (the credits keep room for every result),
        # its flags registers, so no level logic sits in front of its memory's write enable.
        m.submodules.out_fifo = fifo = CreditFIFO(mac.o.payload.shape(), self.fifo_depth)
        wiring.connect(m, fifo.o, wiring.flipped(self.outputs))
        m.d.comb += [fifo.i.payload.eq(mac.o.payload), fifo.i.valid.eq(mac.o.valid),
                     mac.o.ready.eq(1)]

        # Admission in mode 1: every condition is a register or a compare of one.
        beat_index = Signal(range(B))
        # the next beat is an inference's last (beat_index == B - 1, registered)
        is_last = Signal(name="last_beat") if B > 1 else Const(1, 1)
        gap = Signal(range(G))  # clocks until the MAC takes another beat
        last_gap = Signal(range(R))  # clocks until the MAC takes another inference's last beat
        # last_gap == 0, registered
        last_free = Signal(name="last_gap_zero", init=1) if R > 1 else Const(1, 1)
        take = Signal()
        # credit_ok is registered from the counter alone (credits >= 2R a clock ago: at most
        # one last beat, R credits, was taken since), so no adder sits behind the admission.
        _, credit_ok = credit_counter(m, total=self.credits, take=take & is_last,
                                      give=self.outputs.valid & self.outputs.ready, cost=R)
        admit = Signal()
        m.d.comb += admit.eq((gap == 0) & (~is_last | (last_free & credit_ok)))
        m.d.comb += [
            # mode 1 (and mode 0 with the codes FIFO): the ladder, the decoder and the MAC never
            # stall
            ladder.i.valid.eq(self.i.valid & Mux(self.mode, admit, codes_ok) if free
                              else self.i.valid & (~self.mode | admit)),
            self.i.ready.eq(Mux(self.mode, admit, codes_ok)),
            codes_take.eq(self.i.valid & codes_ok & ~self.mode),
            take.eq(self.i.valid & admit & self.mode),
        ]
        with m.If(take):
            m.d.sync += beat_index.eq(Mux(is_last, 0, beat_index + 1))
            if B > 1:
                m.d.sync += is_last.eq(beat_index == B - 2)
        if G > 1:
            with m.If(take):
                m.d.sync += gap.eq(G - 1)
            with m.Elif(gap != 0):
                m.d.sync += gap.eq(gap - 1)
        if R > 1:
            with m.If(take & is_last):
                m.d.sync += [last_gap.eq(R - 1), last_free.eq(0)]
            with m.Elif(last_gap != 0):
                m.d.sync += [last_gap.eq(last_gap - 1), last_free.eq(last_gap == 1)]
        return m


def lanes_problem(design: Design, lanes: int) -> str | None:
    """Return why ``lanes`` sample lanes cannot carry ``design`` (None if they can)."""
    if design.mac is not None and design.samples_per_inference % lanes:
        spi, c = design.samples_per_inference, design.channels
        return (f"lanes: {lanes} does not divide the POST layer's {spi} samples per inference "
                f"(mac.inputs {design.mac.inputs} = {spi} samples x {c} channel"
                f"{'s' if c > 1 else ''}); use a divisor of {spi}")
    return None


def check_design_lanes(design: Design, lanes) -> int:
    """Check a lane count for ``design`` (a positive integer that carries it); raise
    :class:`~adcforge.errors.AdcforgeError` in one line, naming the design."""
    try:
        check_lanes(lanes)
    except ValueError as exc:
        raise AdcforgeError(str(exc)) from None
    problem = lanes_problem(design, lanes)
    if problem:
        raise AdcforgeError(f"{design.name}: {problem}")
    return lanes

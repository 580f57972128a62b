"""The board top: UART, the framed protocol (:mod:`boards.protocol`) and the ADC pipeline.

:class:`BoardTop` is small components joined with ``wiring.connect``, clocked by the caller's
``sync`` domain (a PLL on a board, the harness in the simulated board)::

    rx ─► UARTRx ─► StreamFIFO ─► FrameReceiver ─► AdcPipeline ─► ResultSelect ─► ResultRing
                                   │ │  └ thr (shadow bank, committed with a good CRC)  │
                                   │ └ ring control (start / commit / rollback) ────────┤
                                   ├ events ─► StatusCounters ─┐                        │
                                   │        └► EventLeds       ▼ words                  ▼
                                   └ responses ─► StreamFIFO ─► FrameTransmitter ─► UARTTx ─► tx

* :class:`FrameReceiver` hunts for the sync word, checks header, length and CRC, streams
  samples into the pipeline as they arrive (no frame buffer) and, at the frame's end, commits
  or rolls back its results and queues a response descriptor. A frame that stops arriving for
  ``timeout`` cycles is answered ``TIMEOUT``; a byte lost to a full receive FIFO makes it
  ``OVERFLOW``. The only waits are for bytes and for a free response slot: it cannot wedge.
* :class:`ResultRing`: the results in block RAM, a circular buffer whose write pointer is
  committed when the frame's CRC is good and rolled back otherwise, so a response carries all
  of a frame's results or none.
* :class:`FrameTransmitter` sends one response per descriptor: header, status, the committed
  results (or the status words), CRC.
* :class:`StatusCounters` counts frames, errors and samples for ``STATUS``; :class:`EventLeds`
  lights ``led_activity`` on every good frame and ``led_error`` on every error.

Both CRCs are the protocol's :data:`boards.protocol.CRC16` (``amaranth.lib.crc``), the one the
host computes.
"""


from amaranth.hdl import (Array, Cat, Const, DomainRenamer, Module, Mux, ResetInserter, Shape,
                          Signal, signed, unsigned)
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from adcforge.design import Design
from hdl.cdc import CrossingFIFO
from hdl.decode import DecodedLayout
from hdl.ladder import ThresholdWriteSignature
from hdl.pipe import LaneGather, LaneScatter
from hdl.pipeline import AdcPipeline

from .pmod_ad1 import PmodAD1, adc_to_sample
from .protocol import (ACQUIRE_RECORD_BYTES, ADC_BITS, CRC16, MAX_ACQUIRE, MAX_PAYLOAD,
                       MAX_SAMPLES, RESPONSE, STATUS_FIELDS, SYNC, Command, Status, design_id,
                       output_bytes, sample_bytes)
from .uart import UARTRx, UARTTx


def result_width(design: Design) -> int:
    """Bits of one result word: a code, or a MAC output when the design has a MAC layer."""
    return max(design.bits, design.mac.output_bits if design.mac is not None else 1)


def max_results(design: Design) -> int:
    """Results one frame can produce (``MAX_SAMPLES`` codes, or its inferences' MAC outputs)."""
    return MAX_SAMPLES * (design.mac.outputs if design.mac is not None else 1)


def crc_register(restart):
    """Return the protocol's CRC (``CRC16.create()``), restarted by ``restart`` through a
    synchronous reset: its ``start`` input stays 0, so its XOR network has no multiplexer in
    front of the register (the reset is the flip-flops' own set input)."""
    return ResetInserter(restart)(CRC16.create())


def _check_design(design):
    if not isinstance(design, Design):
        raise TypeError(f"design must be a Design, not {type(design).__name__}")


def _check_int(name, value, low):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer of at least {low}, not {value!r}")


# -- signatures and layouts ------------------------------------------------------------------


class ResponseLayout(data.StructLayout):
    """A response descriptor: what the transmitter sends for one received frame."""

    def __init__(self, count_bits: int):
        super().__init__({"cmd": unsigned(8), "seq": unsigned(8), "status": unsigned(8),
                          "count": unsigned(count_bits)})


class RingControlSignature(wiring.Signature):
    """The receiver's hold on the result ring (the receiver's side).

    ``start`` begins a frame (``written`` counts its results from 0); ``commit`` makes them
    readable by the transmitter, ``rollback`` discards them. One pulse each, one cycle.
    With ``keep`` (a board top with sample lanes): ``commit`` makes the frame's first ``keep``
    results readable and discards the rest (the results of the zero samples that completed the
    frame's last lane beat).
    """

    def __init__(self, max_results: int, keep: bool = False):
        self.max_results = max_results
        members = {"start": Out(1), "commit": Out(1), "rollback": Out(1),
                   "written": In(range(max_results + 1))}
        if keep:
            members["keep"] = Out(range(max_results + 1))
        super().__init__(members)


class FrameEventSignature(wiring.Signature):
    """What the receiver reports when a frame ends (the receiver's side).

    ``done`` pulses once per answered frame, with its ``status`` (a :class:`Status` value) and,
    for a good frame, the ``samples`` it carried.
    """

    def __init__(self):
        super().__init__({"done": Out(1), "status": Out(8),
                          "samples": Out(range(MAX_SAMPLES + 1))})


#: the ``STATUS`` response's words (:data:`STATUS_FIELDS`), 32 bits each
StatusWords = data.ArrayLayout(unsigned(32), len(STATUS_FIELDS))


class SourcedSample(data.StructLayout):
    """A sample for the pipeline and the raw converter word it came from (a build with a sample
    source: ``raw`` is 0 for a sample that came over the UART)."""

    def __init__(self, input_bits: int):
        super().__init__({"sample": unsigned(input_bits), "raw": unsigned(ADC_BITS)})


# -- a FIFO with stream ports ----------------------------------------------------------------


class StreamFIFO(wiring.Component):
    """A first-in first-out buffer of ``depth`` payloads of ``shape`` with ``lib.stream`` ports
    (``lib.fifo.SyncFIFOBuffered`` inside)."""

    def __init__(self, shape, depth: int):
        _check_int("depth", depth, 2)
        self.shape, self.depth = shape, depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = f = fifo.SyncFIFOBuffered(width=Shape.cast(self.shape).width,
                                                      depth=self.depth)
        m.d.comb += [f.w_data.eq(self.i.payload), f.w_en.eq(self.i.valid),
                     self.i.ready.eq(f.w_rdy),
                     self.o.payload.eq(f.r_data), self.o.valid.eq(f.r_rdy),
                     f.r_en.eq(self.o.ready)]
        return m


class AsyncStreamFIFO(wiring.Component):
    """A clock-domain crossing for a stream: a :class:`CrossingFIFO` of ``depth`` payloads of
    ``shape`` (a power of two, at least 4), ``i`` in ``w_domain``, ``o`` in ``r_domain``.

    ``i.ready`` is the FIFO's registered ``w_level`` compared with a constant (1 while at
    least two entries were free a cycle before), so the FIFO's pointer arithmetic (a Gray
    decoder and a subtraction) is not on the writer's stall path; with a write in each of two
    cycles in a row the level it saw lags by one, so all ``depth`` entries may fill, never
    more. ``w_level`` is the FIFO's registered level, on the write side (the read side's
    pointer reaches it through a synchroniser: never below the true level). ``o.valid`` is a
    register, 0 in the cycle after a transfer: ``o`` takes at most one payload every other
    cycle of ``r_domain``.
    """

    def __init__(self, shape, depth: int, *, w_domain: str, r_domain: str):
        if not isinstance(depth, int) or isinstance(depth, bool) or depth & (depth - 1) \
                or depth < 4:
            raise ValueError(f"depth must be a power of two of at least 4, not {depth!r}")
        self.shape, self.depth = shape, depth
        self.w_domain, self.r_domain = w_domain, r_domain
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)),
                          "w_level": Out(range(depth + 1))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = f = CrossingFIFO(Shape.cast(self.shape).width, self.depth,
                                             w_domain=self.w_domain, r_domain=self.r_domain)
        space = Signal()
        m.d.comb += space.eq(f.w_level < self.depth - 1)
        m.d.comb += [self.w_level.eq(f.w_level),
                     f.w_data.eq(self.i.payload), f.w_en.eq(self.i.valid & space),
                     self.i.ready.eq(space),
                     self.o.payload.eq(f.r_data), self.o.valid.eq(f.r_rdy),
                     f.r_en.eq(self.o.ready)]
        return m


class CoreCommand(data.StructLayout):
    """What crosses into the ADC domain, in order: a sample (``kind`` :attr:`SAMPLE`, with a
    sample source its raw word too), a threshold write (:attr:`WRITE`: ``addr``, the value in
    ``sample``'s bits) or a threshold commit (:attr:`COMMIT`)."""

    SAMPLE, WRITE, COMMIT = 0, 1, 2

    def __init__(self, sample_shape, addr_bits: int):
        super().__init__({"kind": unsigned(2), "sample": sample_shape,
                          "addr": unsigned(addr_bits)})


class DomainCrossing(wiring.Component):
    """The pipeline's way into its own clock domain and back.

    On the ``sync`` side: ``samples`` and (writeable thresholds) ``thr`` from the receiver,
    ``mode`` (a MAC layer), and ``results`` to the ring. On the ``domain`` side: ``core_i``,
    ``core_thr``, ``core_mode`` to the pipeline, ``core_results`` from it.

    Samples, threshold writes and commits share one :class:`AsyncStreamFIFO` of
    :class:`CoreCommand` (so a commit takes effect after the writes before it and before the
    samples after it); the results come back through another, ``out_depth`` deep (a power of
    two above one charge and 1: small, for short pointers). The pipeline is never stalled: ``core_results.ready`` is 1, and a sample enters the pipeline
    only while the results FIFO has room for every result in flight and for this sample's
    (one code; with a MAC layer in mode 1, ``mac.outputs`` for an inference's first sample) —
    a credit count, so that no ready signal runs back through the pipeline.

    ``mode`` passes an ``FFSynchronizer``: the receiver changes it only between frames, when
    the pipeline and both FIFOs are empty (it answers a frame only once all of its results are
    in the ring), and the first sample of a frame follows the command byte by at least four
    UART bytes. A threshold write or commit is never refused: the receiver issues them only in
    a ``LOAD_THRESHOLDS`` frame, after the last frame's samples have left the FIFO, at most
    one per received word.

    With ``lanes`` (a pipeline of that many sample lanes behind a gather) a code comes out only
    once its lane beat is complete: the results FIFO holds a beat's codes besides one charge,
    so that the credits admit a whole beat.
    """

    def __init__(self, design: Design, *, domain: str, sample_shape, result_shape,
                 runtime_thresholds: bool, in_depth: int = 4, lanes: int = 1):
        _check_design(design)
        _check_int("lanes", lanes, 1)
        self.design, self.domain = design, domain
        self.has_mac = design.mac is not None
        self.runtime_thresholds = runtime_thresholds
        self.in_depth = in_depth
        self.sample_shape, self.result_shape = sample_shape, result_shape
        #: the results one sample can be charged (an inference's MAC outputs, or one code)
        self.charge = max(1, design.mac.outputs if self.has_mac else 1)
        self.out_depth = 1 << (max(self.charge, lanes) + 1).bit_length()
        members = {
            "samples": In(stream.Signature(sample_shape)),
            "results": Out(stream.Signature(result_shape)),
            "core_i": Out(stream.Signature(sample_shape)),
            "core_results": In(stream.Signature(result_shape)),
        }
        if runtime_thresholds:
            thr = ThresholdWriteSignature(design.bits, design.input_bits)
            members["thr"] = In(thr)
            members["core_thr"] = Out(thr)
        if self.has_mac:
            members["mode"] = In(1)
            members["core_mode"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        d = self.design
        dom = m.d[self.domain]
        layout = CoreCommand(self.sample_shape, max(d.bits, 1))
        m.submodules.to_core = fin = AsyncStreamFIFO(layout, self.in_depth, w_domain="sync",
                                                     r_domain=self.domain)
        # the results' FIFO is written without a ready: the credits below keep room for every
        # write, so its write enable is a register (no level compare in front of it)
        m.submodules.from_core = fout = CrossingFIFO(
            Shape.cast(self.result_shape).width, self.out_depth,
            w_domain=self.domain, r_domain="sync")
        value = fin.i.payload.sample.sample if isinstance(self.sample_shape, SourcedSample) \
            else fin.i.payload.sample
        m.d.comb += [fin.i.payload.sample.eq(self.samples.payload),
                     fin.i.valid.eq(self.samples.valid), self.samples.ready.eq(fin.i.ready)]
        if self.runtime_thresholds:
            thr = self.thr
            with m.If(thr.we):
                m.d.comb += [fin.i.payload.kind.eq(CoreCommand.WRITE), value.eq(thr.data),
                             fin.i.payload.addr.eq(thr.addr), fin.i.valid.eq(1)]
            with m.Elif(thr.commit):
                m.d.comb += [fin.i.payload.kind.eq(CoreCommand.COMMIT), fin.i.valid.eq(1)]

        # one command register after the FIFO, refilled at most every fifth cycle (the UART's
        # rate is far below): the FIFO's read side sees only registers, and the credits'
        # pipelined sum has caught up with one sample before the next is admitted
        full = Signal()
        gap = Signal(2)
        cmd = Signal(layout)
        m.d.comb += fin.o.ready.eq(~full & (gap == 0))
        with m.If(gap != 0):
            dom += gap.eq(gap - 1)
        with m.If(fin.o.ready):  # the register's enable: registers only
            dom += [cmd.eq(fin.o.payload), full.eq(fin.o.valid)]
        is_sample = cmd.kind == CoreCommand.SAMPLE

        # credits: results charged to samples in the pipeline and not yet in the FIFO, two
        # wrapping counts (their difference is what is in flight; each has its own enable)
        charge = self.charge
        count_bits = self.out_depth.bit_length() + 1
        charged = Signal(count_bits)
        returned = Signal(count_bits)
        # in flight + in the FIFO, in three registered steps (each a carry chain at most): it
        # lags by three cycles, less than the gap between two samples, and never undercounts
        # (a result leaves the count and enters the FIFO's level in the same step); room: this
        # sample's charge fits, with one entry to spare
        in_flight = Signal(count_bits)
        used = Signal(count_bits + 1)
        room = Signal()
        dom += [in_flight.eq(charged - returned), used.eq(in_flight + fout.w_level),
                room.eq(used <= self.out_depth - charge - 1)]
        cost = Signal(range(charge + 1))
        # the sample taken, registered: the register, the credits and the gap follow a cycle
        # later (the pipeline's ready reaches one flip-flop), and the sample is not offered in
        # that cycle
        taken = Signal()
        if self.has_mac:
            spi = d.samples_per_inference
            pos = Signal(range(max(spi, 2)))
            first = Signal(init=1)  # pos == 0, registered
            with m.If(taken & self.core_mode):
                dom += [pos.eq(Mux(pos == spi - 1, 0, pos + 1)), first.eq(pos == spi - 1)]
            m.d.comb += cost.eq(Mux(self.core_mode, Mux(first, d.mac.outputs, 0), 1))
        else:
            m.d.comb += cost.eq(1)
        # the offer to the pipeline is a register (its valid reaches the MAC's admission
        # logic); an inference's later samples are charged nothing: its first one reserved
        # its room
        # its logic a clock earlier: ``eligible`` (a sample waits, not offered or taken, and its
        # charge fits), registered, so the offer's own update is one LUT (offer, ready,
        # eligible, taken); the room it saw is a clock older, still after the last sample's
        # charge reached it (the gap)
        offer = Signal()
        eligible = Signal()
        m.d.comb += [self.core_i.payload.eq(cmd.sample), self.core_i.valid.eq(offer)]
        dom += [taken.eq(offer & self.core_i.ready),
                eligible.eq(full & is_sample & ~offer & ~taken & (room | (cost == 0))),
                offer.eq(Mux(offer, ~self.core_i.ready, eligible & ~taken))]
        # each result enters the FIFO from a register, which is its write pointer's clock
        # enable (the write is not checked: the credits keep room); it counts in flight there
        wrote = Signal()
        word = Signal.like(self.core_results.payload)
        dom += [wrote.eq(self.core_results.valid), word.eq(self.core_results.payload)]
        with m.If(taken):
            dom += charged.eq(charged + cost)
        with m.If(wrote):
            dom += returned.eq(returned + 1)
        with m.If(taken | full & ~is_sample):
            dom += [full.eq(0), gap.eq(3)]
        if self.runtime_thresholds:
            core_value = cmd.sample.sample if isinstance(self.sample_shape, SourcedSample) \
                else cmd.sample
            m.d.comb += [self.core_thr.addr.eq(cmd.addr), self.core_thr.data.eq(core_value),
                         self.core_thr.we.eq(full & (cmd.kind == CoreCommand.WRITE)),
                         self.core_thr.commit.eq(full & (cmd.kind == CoreCommand.COMMIT))]
        if self.has_mac:
            m.submodules.mode_sync = FFSynchronizer(self.mode, self.core_mode,
                                                    o_domain=self.domain)
        # the pipeline is never held: the credits keep room for what it sends
        m.d.comb += [self.core_results.ready.eq(1), fout.w_data.eq(word), fout.w_en.eq(wrote),
                     self.results.payload.eq(fout.r_data), self.results.valid.eq(fout.r_rdy),
                     fout.r_en.eq(self.results.ready)]
        return m


# -- the receiver ----------------------------------------------------------------------------


class FrameReceiver(wiring.Component):
    """Bytes in; samples, threshold writes, ring control, events and responses out.

    Parameters
    ----------
    design : Design
    timeout : int
        Cycles without a byte after which a started frame is abandoned (``TIMEOUT``).
    runtime_thresholds : bool
        The pipeline's thresholds are writeable (``thr`` port); otherwise ``LOAD_THRESHOLDS``
        is answered ``UNSUPPORTED``.
    acquire : bool
        The board has a sample source (``adc``): ``ACQUIRE`` frames are answered; otherwise
        ``ACQUIRE`` is an unknown command, as in protocol version 1.
    lanes : int
        The pipeline's sample lanes (it takes its samples ``lanes`` at a time): a frame whose
        samples end inside a lane beat is completed with zero samples, whose results the
        ring's ``keep`` leaves out of the answer. Not with ``acquire``.

    Members
    -------
    i : In(stream.Signature(8))
        Received bytes.
    overflow : In(1)
        A byte was lost before the FIFO (the frame becomes ``OVERFLOW``).
    samples : Out(stream.Signature(input_bits))  (``acquire``: ``SourcedSample``)
        Samples for the pipeline, and zero samples completing a MAC inference cut short or a
        lane beat.
    adc : In(stream.Signature(12)), with ``acquire`` only
        The sample source's raw words; taken only while an ``ACQUIRE`` frame is answered.
    adc_en : Out(1), with ``acquire`` only
        1 while an ``ACQUIRE`` frame takes its samples (the source converts while it is 1).
    mode : Out(1), with a MAC layer only
        1 while a ``MAC`` frame is received (the pipeline's mode).
    thr : Out(ThresholdWriteSignature), with ``runtime_thresholds`` only
    ring : Out(RingControlSignature)
    events : Out(FrameEventSignature)
    resp : Out(stream.Signature(ResponseLayout))
        One descriptor per answered frame.
    """

    #: the states that take a byte from ``i`` when one is there
    BYTE_STATES = frozenset({"HUNT", "SYNC1", "CMD", "SEQ", "LEN0", "LEN1", "PAYLOAD", "CRC0",
                             "CRC1"})

    def __init__(self, design: Design, *, timeout: int, runtime_thresholds: bool = True,
                 acquire: bool = False, lanes: int = 1):
        _check_design(design)
        _check_int("timeout", timeout, 1)
        _check_int("lanes", lanes, 1)
        if acquire and lanes > 1:
            raise ValueError("a board top with a sample source has one lane (the source's "
                             "samples come one at a time)")
        self.lanes = lanes
        self.design = design
        self.timeout = timeout
        self.runtime_thresholds = runtime_thresholds
        self.acquire = acquire
        self.has_mac = design.mac is not None
        n = max_results(design)
        self.count_bits = n.bit_length()
        sample_shape = (SourcedSample(design.input_bits) if acquire
                        else unsigned(design.input_bits))
        members = {
            "i": In(stream.Signature(8)),
            "overflow": In(1),
            "samples": Out(stream.Signature(sample_shape)),
            "ring": Out(RingControlSignature(n, keep=lanes > 1)),
            "events": Out(FrameEventSignature()),
            "resp": Out(stream.Signature(ResponseLayout(self.count_bits))),
        }
        if self.has_mac:
            members["mode"] = Out(1)
        if runtime_thresholds:
            members["thr"] = Out(ThresholdWriteSignature(design.bits, design.input_bits))
        if acquire:
            members["adc"] = In(stream.Signature(unsigned(ADC_BITS)))
            members["adc_en"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        d = self.design
        sb = sample_bytes(d)
        n_thr = len(d.thresholds)
        spi = d.samples_per_inference
        n_out = d.mac.outputs if self.has_mac else 1
        rxs_valid, rxs_data = self.i.valid, self.i.payload

        crc_restart = Signal()
        m.submodules.crc = crc = crc_register(crc_restart)
        cmd = Signal(8)
        seq = Signal(8)
        length = Signal(8)  # LEN's first byte, until the second arrives
        left = Signal(range(MAX_PAYLOAD + 1))  # payload bytes to come (a longer LEN: answered)
        rx_crc = Signal(16)
        status = Signal(8)  # error decided while the frame arrives (OK: none yet)
        final = Signal(8)   # the frame's answer
        word = Signal(8 * sb)
        bidx = Signal(range(sb + 1))
        widx = Signal(range(n_thr + 1))
        sample = Signal(d.input_bits)
        pushed = Signal(range(MAX_SAMPLES + 1))
        expected = Signal(range(self.ring.signature.max_results + 1))
        inf_pos = Signal(range(max(spi, 2)))
        lane_pos = Signal(range(max(self.lanes, 2)))  # the sample's lane in its beat
        idle = Signal(range(self.timeout + 1))
        overflow_seen = Signal()
        frame_count = Signal(self.count_bits)  # set when a frame ends, queued when answered
        drained = Signal()
        # registered: the ring's count is compared one cycle later (DRAIN0 waits for it)
        m.d.sync += drained.eq(self.ring.written == expected)
        mode = Signal()
        if self.has_mac:
            m.d.comb += self.mode.eq(mode)
        with m.If(self.overflow):
            m.d.sync += overflow_seen.eq(1)
        # the frame's outcome leaves as registered one-cycle pulses (a cycle after the state
        # that decides it, while the response is queued): no decision logic in the ring's,
        # the counters' or the ladder's enables
        ring_start, ring_commit, ring_rollback, events_done, thr_commit = (
            Signal(name=n) for n in ("ring_start", "ring_commit", "ring_rollback", "events_done",
                                     "thr_commit"))
        m.d.sync += [ring_start.eq(0), ring_commit.eq(0), ring_rollback.eq(0),
                     events_done.eq(0), thr_commit.eq(0)]
        m.d.comb += [self.ring.start.eq(ring_start), self.ring.commit.eq(ring_commit),
                     self.ring.rollback.eq(ring_rollback), self.events.done.eq(events_done),
                     self.events.status.eq(final), self.events.samples.eq(pushed)]
        if self.runtime_thresholds:
            m.d.comb += self.thr.commit.eq(thr_commit)
        if self.lanes > 1:  # a MAC frame's inferences are whole beats: it has no pad to drop
            m.d.comb += self.ring.keep.eq(Mux(mode, expected, pushed) if self.has_mac
                                          else pushed)

        m.d.comb += [crc.data.eq(rxs_data),
                     (self.samples.payload.sample if self.acquire
                      else self.samples.payload).eq(sample)]
        if self.acquire:
            acq_count = Signal(16)  # ACQUIRE's payload: the samples asked for
            is_acq = cmd == Command.ACQUIRE.value
        if self.runtime_thresholds:
            m.d.comb += [self.thr.addr.eq(widx), self.thr.data.eq(word)]
        word_next = Cat(word[8:], rxs_data) if sb > 1 else rxs_data
        is_samples = (cmd == Command.CODES.value) | (
            (cmd == Command.MAC.value) if self.has_mac else Const(0))

        def push_accounting(pad=False):
            if not pad:
                m.d.sync += pushed.eq(pushed + 1)
            if self.lanes > 1:
                m.d.sync += lane_pos.eq(Mux(lane_pos == self.lanes - 1, 0, lane_pos + 1))
            if self.has_mac:
                with m.If(mode):
                    with m.If(inf_pos == spi - 1):
                        m.d.sync += [inf_pos.eq(0), expected.eq(expected + n_out)]
                    with m.Else():
                        m.d.sync += inf_pos.eq(inf_pos + 1)
                with m.Else():
                    m.d.sync += expected.eq(expected + 1)
            else:
                m.d.sync += expected.eq(expected + 1)

        # `take` (the byte stream's ready) is a register set with every transition: high in
        # the states that consume a byte, so that no logic lies between the state machine and
        # the receive FIFO's read side
        take = Signal(init=1)
        m.d.comb += self.i.ready.eq(take)

        def goto(state):
            m.next = state
            m.d.sync += take.eq(state in self.BYTE_STATES)

        # the cycles without a byte, counted outside the state machine (restarted by every byte
        # taken and in the states that take none); the states read one registered flag
        timed_out = Signal()
        with m.If(~take | rxs_valid):
            m.d.sync += [idle.eq(0), timed_out.eq(0)]
        with m.Else():
            m.d.sync += [idle.eq(idle + 1), timed_out.eq(idle == self.timeout - 1)]

        def byte_state(then, crc_byte=True):
            """Consume one byte (``then`` runs with it; it enters the CRC) or time out."""
            with m.If(rxs_valid):
                if crc_byte:
                    m.d.comb += crc.valid.eq(1)
                then()
            with m.Elif(timed_out):
                m.d.sync += final.eq(Status.TIMEOUT.value)
                goto("PAD")

        with m.FSM(name="rx_fsm"):
            with m.State("HUNT"):
                with m.If(rxs_valid & (rxs_data == SYNC[0])):
                    goto("SYNC1")
            with m.State("SYNC1"):
                with m.If(rxs_valid):
                    with m.If(rxs_data == SYNC[1]):
                        m.d.comb += crc_restart.eq(1)
                        m.d.sync += ring_start.eq(1)
                        m.d.sync += [overflow_seen.eq(0),
                                     status.eq(Status.OK.value), pushed.eq(0), expected.eq(0),
                                     widx.eq(0), bidx.eq(0), inf_pos.eq(0), lane_pos.eq(0)]
                        goto("CMD")
                    with m.Elif(rxs_data != SYNC[0]):
                        goto("HUNT")
            with m.State("CMD"):
                def got_cmd():
                    m.d.sync += cmd.eq(rxs_data)
                    if self.has_mac:
                        m.d.sync += mode.eq(rxs_data == Command.MAC.value)
                    goto("SEQ")
                byte_state(got_cmd)
            with m.State("SEQ"):
                def got_seq():
                    m.d.sync += seq.eq(rxs_data)
                    goto("LEN0")
                byte_state(got_seq)
            with m.State("LEN0"):
                def got_len0():
                    m.d.sync += length.eq(rxs_data)
                    goto("LEN1")
                byte_state(got_len0)
            with m.State("LEN1"):
                def got_len1():
                    n = Cat(length, rxs_data)
                    m.d.sync += left.eq(n)
                    with m.If(n > MAX_PAYLOAD):
                        # a length that cannot be trusted: answer now and hunt again
                        m.d.sync += final.eq(Status.BAD_LENGTH.value)
                        goto("DRAIN0")
                    with m.Else():
                        ok_len = Signal()
                        samples_len = (n <= MAX_SAMPLES * sb) & (n != 0) & (
                            (n[0] == 0) if sb == 2 else 1)
                        with m.Switch(cmd):
                            with m.Case(Command.STATUS.value):
                                m.d.comb += ok_len.eq(n == 0)
                            with m.Case(Command.LOAD_THRESHOLDS.value):
                                m.d.comb += ok_len.eq(n == n_thr * sb)
                                if not self.runtime_thresholds:
                                    m.d.sync += status.eq(Status.UNSUPPORTED.value)
                            with m.Case(Command.CODES.value):
                                m.d.comb += ok_len.eq(samples_len)
                            if self.has_mac:
                                with m.Case(Command.MAC.value):
                                    m.d.comb += ok_len.eq(samples_len)
                            if self.acquire:
                                with m.Case(Command.ACQUIRE.value):
                                    m.d.comb += ok_len.eq(n == 2)
                            with m.Default():
                                m.d.sync += status.eq(Status.UNKNOWN_COMMAND.value)
                                m.d.comb += ok_len.eq(1)
                        with m.If(~ok_len):
                            m.d.sync += status.eq(Status.BAD_LENGTH.value)
                        goto("LEN_DONE")
                byte_state(got_len1)
            with m.State("LEN_DONE"):
                with m.If(left == 0):
                    goto("CRC0")
                with m.Else():
                    goto("PAYLOAD")
            with m.State("PAYLOAD"):
                def got_byte():
                    m.d.sync += [word.eq(word_next), left.eq(left - 1)]
                    if self.acquire:
                        m.d.sync += acq_count.eq(Cat(acq_count[8:], rxs_data))
                    last_byte_of_word = bidx == sb - 1
                    with m.If(last_byte_of_word):
                        m.d.sync += bidx.eq(0)
                    with m.Else():
                        m.d.sync += bidx.eq(bidx + 1)
                    with m.If(last_byte_of_word & (status == Status.OK.value)):
                        with m.If(is_samples):
                            m.d.sync += sample.eq(word_next)
                            goto("PUSH")
                        with m.Elif(cmd == Command.LOAD_THRESHOLDS.value):
                            goto("THR")
                        with m.Elif(left == 1):
                            goto("CRC0")
                    with m.Elif(left == 1):
                        goto("CRC0")
                byte_state(got_byte)
            with m.State("PUSH"):
                m.d.comb += self.samples.valid.eq(1)
                with m.If(self.samples.ready):
                    push_accounting()
                    goto("AFTER_WORD")
            with m.State("THR"):
                if self.runtime_thresholds:
                    m.d.comb += self.thr.we.eq(1)
                m.d.sync += widx.eq(widx + 1)
                goto("AFTER_WORD")
            with m.State("AFTER_WORD"):
                with m.If(left == 0):
                    goto("CRC0")
                with m.Else():
                    goto("PAYLOAD")
            with m.State("CRC0"):
                def got_crc0():
                    m.d.sync += rx_crc[:8].eq(rxs_data)
                    goto("CRC1")
                byte_state(got_crc0, crc_byte=False)
            with m.State("CRC1"):
                def got_crc1():
                    m.d.sync += rx_crc[8:].eq(rxs_data)
                    goto("CHECK")
                byte_state(got_crc1, crc_byte=False)
            with m.State("CHECK"):
                with m.If(overflow_seen):  # lost bytes explain a bad CRC: say why
                    m.d.sync += final.eq(Status.OVERFLOW.value)
                with m.Elif(rx_crc != crc.crc):
                    m.d.sync += final.eq(Status.BAD_CRC.value)
                with m.Elif(mode & (inf_pos != 0)):
                    m.d.sync += final.eq(Status.BAD_LENGTH.value)
                if self.acquire:
                    with m.Elif(is_acq & ((acq_count == 0) | (acq_count > MAX_ACQUIRE))):
                        m.d.sync += final.eq(Status.BAD_LENGTH.value)
                with m.Else():
                    m.d.sync += final.eq(status)
                goto("PAD")
            with m.State("PAD"):
                # complete a partial inference with zero samples so that the MAC starts the
                # next frame clean; the results are rolled back with the frame
                with m.If(mode & (inf_pos != 0)):
                    m.d.comb += [self.samples.valid.eq(1), self.samples.payload.eq(0)]
                    with m.If(self.samples.ready):
                        push_accounting()
                if self.lanes > 1:
                    # and a partial lane beat (codes), so that the next frame starts on lane
                    # 0; the ring keeps only the real samples' codes (``keep``)
                    with m.Elif(lane_pos != 0):
                        m.d.comb += [self.samples.valid.eq(1), self.samples.payload.eq(0)]
                        with m.If(self.samples.ready):
                            push_accounting(pad=True)
                if self.acquire:
                    with m.Elif(is_acq & (final == Status.OK.value)):
                        goto("ACQ")
                with m.Else():
                    goto("DRAIN0")
            if self.acquire:
                with m.State("ACQ"):
                    # the source's samples go to the pipeline as they come (a good request
                    # only): the raw word with its design word
                    adc = self.adc
                    m.d.comb += [self.adc_en.eq(1),
                                 self.samples.payload.sample.eq(
                                     adc_to_sample(adc.payload, d.input_bits)),
                                 self.samples.payload.raw.eq(adc.payload),
                                 self.samples.valid.eq(adc.valid),
                                 adc.ready.eq(self.samples.ready)]
                    with m.If(adc.valid & self.samples.ready):
                        push_accounting()
                        with m.If(pushed + 1 == acq_count):
                            goto("DRAIN0")
            with m.State("DRAIN0"):
                goto("DRAIN")  # lets the registered `drained` see this frame's final counts
            with m.State("DRAIN"):
                with m.If(drained):
                    m.d.sync += [events_done.eq(1), ring_commit.eq(final == Status.OK.value),
                                 ring_rollback.eq(final != Status.OK.value)]
                    with m.If(final == Status.OK.value):
                        m.d.sync += frame_count.eq(self.ring.keep if self.lanes > 1
                                                   else self.ring.written)
                        if self.runtime_thresholds:
                            m.d.sync += thr_commit.eq(cmd == Command.LOAD_THRESHOLDS.value)
                    with m.Else():
                        m.d.sync += frame_count.eq(0)
                    goto("RESPOND")
            with m.State("RESPOND"):
                m.d.comb += [self.resp.payload.cmd.eq(cmd | RESPONSE),
                             self.resp.payload.seq.eq(seq),
                             self.resp.payload.status.eq(final),
                             self.resp.payload.count.eq(frame_count),
                             self.resp.valid.eq(1)]
                with m.If(self.resp.ready):
                    goto("HUNT")
        return m


# -- the result ring -------------------------------------------------------------------------


class ResultRing(wiring.Component):
    """Results in block RAM, committed or rolled back a frame at a time.

    Parameters
    ----------
    width : int
        Bits per result word.
    depth : int
        Words held (a power of two, at least 8).
    max_results : int
        Results one frame can write (the range of ``ctl.written``).
    keep : bool
        ``ctl`` has ``keep``: a commit keeps the frame's first ``keep`` words only.

    Members
    -------
    i : In(stream.Signature(width))
        Results; not ready while fewer than 4 words are free (a registered flag, so the ring's
        pointer arithmetic stays off the pipeline's stall path).
    ctl : In(RingControlSignature(max_results))
        ``start`` zeroes ``written``; ``commit`` makes every word written so far readable;
        ``rollback`` forgets the words written since the last commit.
    o : Out(stream.Signature(width))
        Committed words, in order (a word is offered one cycle after the previous one was
        taken: the block RAM's read latency).
    """

    def __init__(self, width: int, depth: int, max_results: int, keep: bool = False):
        _check_int("width", width, 1)
        _check_int("max_results", max_results, 1)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth & (depth - 1) \
                or depth < 8:
            raise ValueError(f"depth must be a power of two of at least 8, not {depth!r}")
        self.width, self.depth, self.max_results = width, depth, max_results
        self.keep = keep
        super().__init__({"i": In(stream.Signature(unsigned(width))),
                          "ctl": In(RingControlSignature(max_results, keep=keep)),
                          "o": Out(stream.Signature(unsigned(width)))})

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        ptr_bits = depth.bit_length()  # one more than the address: full and empty differ
        m.submodules.mem = mem = Memory(shape=self.width, depth=depth, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        wptr = Signal(ptr_bits)
        committed = Signal(ptr_bits)
        rptr = Signal(ptr_bits)
        written = Signal.like(self.ctl.written)
        m.d.comb += self.ctl.written.eq(written)

        space = Signal()  # registered; the margin of 4 covers the one cycle it lags
        m.d.sync += space.eq((wptr - rptr)[:ptr_bits] < depth - 4)
        m.d.comb += [self.i.ready.eq(space), wp.addr.eq(wptr[:ptr_bits - 1]),
                     wp.data.eq(self.i.payload), wp.en.eq(self.i.valid & space)]
        with m.If(self.i.valid & space):
            m.d.sync += [wptr.eq(wptr + 1), written.eq(written + 1)]
        with m.If(self.ctl.start):
            m.d.sync += written.eq(0)
        if self.keep:  # the frame's first `keep` words, from where the frame began
            base = Signal(ptr_bits)
            with m.If(self.ctl.start):
                m.d.sync += base.eq(wptr)
            with m.If(self.ctl.commit):
                kept = (base + self.ctl.keep)[:ptr_bits]
                m.d.sync += [committed.eq(kept), wptr.eq(kept)]
        else:
            with m.If(self.ctl.commit):
                m.d.sync += committed.eq(wptr)
        with m.If(self.ctl.rollback):
            m.d.sync += wptr.eq(committed)

        # o.valid is two registers: `fresh`, the read port's data belongs to rptr (one cycle
        # after rptr changed), and `ready_words`, words were committed and unread a cycle ago
        # (late only when a commit added words: a word taken clears `fresh` for that cycle)
        fresh = Signal()
        ready_words = Signal()
        m.d.sync += [fresh.eq(~(self.o.valid & self.o.ready)), ready_words.eq(rptr != committed)]
        m.d.comb += [rp.addr.eq(rptr[:ptr_bits - 1]), self.o.payload.eq(rp.data),
                     self.o.valid.eq(fresh & ready_words)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += rptr.eq(rptr + 1)
        return m


# -- the transmitter -------------------------------------------------------------------------


class FrameTransmitter(wiring.Component):
    """Response descriptors, results and status words in; the response frames' bytes out.

    Members
    -------
    resp : In(stream.Signature(ResponseLayout))
    results : In(stream.Signature(result_width))
        ``count`` words for each ``OK`` data response (codes, or MAC outputs sent sign-extended
        to ``output_bytes`` bytes).
    words : In(StatusWords)
        What an ``OK`` ``STATUS`` response carries.
    o : Out(stream.Signature(8))
        Bytes for the UART.

    With ``acquire`` (a build with a sample source) every result word carries, above the
    result, the raw 12-bit converter word of its sample (``result_width + 12`` bits), and an
    ``ACQUIRE`` response sends each as a record: the raw word (2 bytes, LE), the code (1 byte).
    """

    def __init__(self, design: Design, *, acquire: bool = False):
        _check_design(design)
        self.design = design
        self.acquire = acquire
        self.has_mac = design.mac is not None
        self.count_bits = max_results(design).bit_length()
        width = result_width(design) + (ADC_BITS if acquire else 0)
        super().__init__({
            "resp": In(stream.Signature(ResponseLayout(self.count_bits))),
            "results": In(stream.Signature(unsigned(width))),
            "words": In(StatusWords),
            "o": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.design
        ob = output_bytes(d)
        crc_restart = Signal()
        m.submodules.crc = crc = crc_register(crc_restart)
        t_cmd = Signal(8)
        t_seq = Signal(8)
        t_status = Signal(8)
        t_left = Signal(self.count_bits)
        t_len = Signal(16)
        hidx = Signal(range(8))
        tb = Signal(range(max(ob, 4 * len(STATUS_FIELDS)) + 1))
        tx_byte = Signal(8)
        # the CRC takes each byte in the cycle it is sent (``tx_byte`` and ``feed`` are
        # combinational; the CRC register holds the sum from the next cycle on), so SETTLE is a
        # spare cycle before the CRC's bytes; taking the byte from a register instead cost ECP5
        # cells (1329 -> 1384 LUT4 on the ULX3S adc4_in12 top) and was not kept
        feed = Signal()
        m.d.comb += [self.o.payload.eq(tx_byte), crc.data.eq(tx_byte), crc.valid.eq(feed)]
        t_is_mac = (t_cmd == (Command.MAC.value | RESPONSE)) if self.has_mac else Const(0)
        status_len = 1 + 4 * len(STATUS_FIELDS)
        res = self.results.payload
        # sign-extend a MAC output word to ob bytes; a code is one byte
        ext = Signal(8 * max(ob, 1))
        if self.has_mac:
            m.d.comb += ext.eq(Mux(t_is_mac, res[:d.mac.output_bits].as_signed(), res[:d.bits]))
        else:
            m.d.comb += ext.eq(res[:d.bits])
        r = self.resp.payload
        with m.FSM(name="tx_fsm"):
            with m.State("IDLE"):
                m.d.comb += self.resp.ready.eq(1)
                with m.If(self.resp.valid):
                    count_bytes = r.count
                    if self.has_mac:
                        count_bytes = Mux(r.cmd == (Command.MAC.value | RESPONSE),
                                          r.count * ob, r.count)
                    if self.acquire:
                        count_bytes = Mux(r.cmd == (Command.ACQUIRE.value | RESPONSE),
                                          r.count * ACQUIRE_RECORD_BYTES, count_bytes)
                    is_status_ok = ((r.cmd == (Command.STATUS.value | RESPONSE)) &
                                    (r.status == Status.OK.value))
                    m.d.comb += crc_restart.eq(1)
                    m.d.sync += [t_cmd.eq(r.cmd), t_seq.eq(r.seq), t_status.eq(r.status),
                                 t_left.eq(r.count),
                                 t_len.eq(Mux(is_status_ok, status_len, 1 + count_bytes)),
                                 hidx.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):
                hdr = Array([Const(SYNC[0], 8), Const(SYNC[1], 8), t_cmd, t_seq, t_len[:8],
                             t_len[8:], t_status, Const(0, 8)])
                m.d.comb += [tx_byte.eq(hdr[hidx]), self.o.valid.eq(1)]
                with m.If(self.o.ready):
                    with m.If(hidx >= 2):
                        m.d.comb += feed.eq(1)
                    m.d.sync += hidx.eq(hidx + 1)
                    with m.If(hidx == 6):
                        m.d.sync += tb.eq(0)
                        with m.If(t_status != Status.OK.value):
                            m.next = "SETTLE"
                        with m.Elif(t_cmd == (Command.STATUS.value | RESPONSE)):
                            m.next = "STATUS"
                        with m.Elif(t_left != 0):
                            m.next = "DATA"
                        with m.Else():
                            m.next = "SETTLE"
            with m.State("DATA"):
                if self.has_mac and ob > 1:
                    m.d.comb += tx_byte.eq(ext.word_select(tb[:max(1, (ob - 1).bit_length())], 8))
                    last = Mux(t_is_mac, tb == ob - 1, 1)
                else:
                    m.d.comb += tx_byte.eq(ext[:8])
                    last = Const(1)
                if self.acquire:  # a record: raw word (LE, zero-extended), then the code
                    rw = result_width(d)
                    t_is_acq = t_cmd == (Command.ACQUIRE.value | RESPONSE)
                    record = Cat(res[rw:rw + ADC_BITS], Const(0, 16 - ADC_BITS), res[:d.bits],
                                 Const(0, 8 - d.bits))
                    with m.If(t_is_acq):
                        m.d.comb += tx_byte.eq(record.word_select(tb[:2], 8))
                    last = Mux(t_is_acq, tb == ACQUIRE_RECORD_BYTES - 1, last)
                m.d.comb += self.o.valid.eq(self.results.valid)
                with m.If(self.results.valid & self.o.ready):
                    m.d.comb += feed.eq(1)
                    m.d.sync += tb.eq(tb + 1)
                    with m.If(last):
                        m.d.comb += self.results.ready.eq(1)
                        m.d.sync += [tb.eq(0), t_left.eq(t_left - 1)]
                        with m.If(t_left == 1):
                            m.next = "SETTLE"
            with m.State("STATUS"):
                words = Array(self.words[i] for i in range(len(STATUS_FIELDS)))
                m.d.comb += [tx_byte.eq(words[tb[2:]].word_select(tb[:2], 8)),
                             self.o.valid.eq(1)]
                with m.If(self.o.ready):
                    m.d.comb += feed.eq(1)
                    m.d.sync += tb.eq(tb + 1)
                    with m.If(tb == 4 * len(STATUS_FIELDS) - 1):
                        m.next = "SETTLE"
            with m.State("SETTLE"):
                m.next = "CRC0"
            with m.State("CRC0"):
                m.d.comb += [tx_byte.eq(crc.crc[:8]), self.o.valid.eq(1)]
                with m.If(self.o.ready):
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += [tx_byte.eq(crc.crc[8:]), self.o.valid.eq(1)]
                with m.If(self.o.ready):
                    m.next = "IDLE"
        return m


# -- status counters and LEDs ----------------------------------------------------------------


class StatusCounters(wiring.Component):
    """The ``STATUS`` words: frames, errors and samples counted from the receiver's events and
    the UART's pulses; ``design_id`` a constant.

    ``frames_ok`` and ``samples`` are 32 bits; the error counters 16 bits (wrapping),
    zero-extended on the wire.

    Members
    -------
    events : In(FrameEventSignature)
    overflow, framing_error : In(1)
        The UART's pulses (``overflows``, ``framing_errors``).
    words : Out(StatusWords)
    """

    events: In(FrameEventSignature())
    overflow: In(1)
    framing_error: In(1)
    words: Out(StatusWords)

    #: the counter each error status increments
    ERRORS = {Status.BAD_CRC: "crc_errors", Status.UNKNOWN_COMMAND: "unknown_commands",
              Status.BAD_LENGTH: "bad_lengths", Status.TIMEOUT: "timeouts"}

    def __init__(self, design: Design):
        _check_design(design)
        self.design = design
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        counters = {name: Signal(32 if name in ("frames_ok", "samples") else 16,
                                 name=f"n_{name}") for name in STATUS_FIELDS[:-1]}
        ev = self.events
        with m.If(self.overflow):
            m.d.sync += counters["overflows"].eq(counters["overflows"] + 1)
        with m.If(self.framing_error):
            m.d.sync += counters["framing_errors"].eq(counters["framing_errors"] + 1)
        with m.If(ev.done & (ev.status == Status.OK.value)):
            m.d.sync += [counters["frames_ok"].eq(counters["frames_ok"] + 1),
                         counters["samples"].eq(counters["samples"] + ev.samples)]
        for st, name in self.ERRORS.items():
            with m.If(ev.done & (ev.status == st.value)):
                m.d.sync += counters[name].eq(counters[name] + 1)
        for i, name in enumerate(STATUS_FIELDS):
            value = Const(design_id(self.design), 32) if name == "design_id" else counters[name]
            m.d.comb += self.words[i].eq(value)
        return m


class EventLeds(wiring.Component):
    """``led_activity`` lit for about ``led_cycles`` after a good frame, ``led_error`` after an
    error (a shared prescaler and two small timers)."""

    events: In(FrameEventSignature())
    led_activity: Out(1)
    led_error: Out(1)

    def __init__(self, led_cycles: int):
        _check_int("led_cycles", led_cycles, 8)
        self.led_cycles = led_cycles
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        pre_bits = max(1, (self.led_cycles // 8).bit_length() - 1)
        prescaler = Signal(pre_bits)
        strobe = Signal()
        m.d.sync += [prescaler.eq(prescaler + 1), strobe.eq(prescaler == 0)]
        ok = self.events.done & (self.events.status == Status.OK.value)
        err = self.events.done & (self.events.status != Status.OK.value)
        for led, event in ((self.led_activity, ok), (self.led_error, err)):
            timer = Signal(4)
            with m.If(event):
                m.d.sync += timer.eq(8)
            with m.Elif(strobe & (timer != 0)):
                m.d.sync += timer.eq(timer - 1)
            m.d.comb += led.eq(timer != 0)
        return m


# -- the pipeline's results, one stream ------------------------------------------------------


class ResultSelect(wiring.Component):
    """The pipeline's codes, or (with a MAC layer, ``mode`` 1) its MAC outputs, as one stream of
    result words for the ring. Both inputs are held back while the ring is full."""

    def __init__(self, design: Design):
        _check_design(design)
        self.design = design
        members = {
            "codes": In(stream.Signature(DecodedLayout(design.bits, design.decode.width,
                                                       design.channels))),
            "o": Out(stream.Signature(unsigned(result_width(design)))),
        }
        if design.mac is not None:
            members["outputs"] = In(stream.Signature(signed(design.mac.output_bits)))
            members["mode"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        codes = self.codes
        m.d.comb += codes.ready.eq(self.o.ready)
        if self.design.mac is None:
            m.d.comb += [self.o.valid.eq(codes.valid), self.o.payload.eq(codes.payload.code)]
            return m
        out = self.outputs
        m.d.comb += [out.ready.eq(self.o.ready),
                     self.o.valid.eq(Mux(self.mode, out.valid, codes.valid)),
                     self.o.payload.eq(Mux(self.mode, out.payload, codes.payload.code))]
        return m


# -- a build with a sample source: each code keeps its raw sample ---------------------------


class RawTap(wiring.Component):
    """Carry each sample's raw converter word past the pipeline to the sample's code.

    Samples pass to the pipeline (``core``) while their raw words wait in a small FIFO; each
    result from ``results`` leaves on ``o`` with the raw word of its sample above it
    (``Cat(result, raw)``). In MAC mode (``mode`` 1, a design with a MAC layer) an inference's
    outputs are not one per sample: samples and results then pass untagged (raw 0) and the
    FIFO, empty between frames, is left alone.

    Members
    -------
    i : In(stream.Signature(SourcedSample))
    core : Out(stream.Signature(input_bits))
    results : In(stream.Signature(result_width))
    o : Out(stream.Signature(result_width + 12))
    mode : In(1), with a MAC layer only
    """

    def __init__(self, design: Design, depth: int):
        _check_design(design)
        _check_int("depth", depth, 2)
        self.design, self.depth = design, depth
        rw = result_width(design)
        members = {
            "i": In(stream.Signature(SourcedSample(design.input_bits))),
            "core": Out(stream.Signature(unsigned(design.input_bits))),
            "results": In(stream.Signature(unsigned(rw))),
            "o": Out(stream.Signature(unsigned(rw + ADC_BITS))),
        }
        if design.mac is not None:
            members["mode"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = f = StreamFIFO(ADC_BITS, self.depth)
        tag = ~self.mode if self.design.mac is not None else Const(1)
        i, core, res, o = self.i, self.core, self.results, self.o
        m.d.comb += [core.payload.eq(i.payload.sample), f.i.payload.eq(i.payload.raw)]
        with m.If(tag):
            m.d.comb += [core.valid.eq(i.valid & f.i.ready), f.i.valid.eq(i.valid & core.ready),
                         i.ready.eq(core.ready & f.i.ready),
                         o.payload.eq(Cat(res.payload, f.o.payload)),
                         o.valid.eq(res.valid & f.o.valid), res.ready.eq(o.ready & f.o.valid),
                         f.o.ready.eq(o.ready & res.valid)]
        with m.Else():
            m.d.comb += [core.valid.eq(i.valid), i.ready.eq(core.ready),
                         o.payload.eq(res.payload), o.valid.eq(res.valid),
                         res.ready.eq(o.ready)]
        return m


# -- the top ---------------------------------------------------------------------------------


class BoardTop(wiring.Component):
    """UART + protocol + ADC pipeline (runtime-writeable thresholds unless told otherwise).

    Parameters
    ----------
    design : Design
    divisor : int
        Clock cycles per UART bit (``clk_hz // baud``).
    timeout : int
        Cycles without a byte after which a started frame is abandoned.
    buffer_depth : int
        Result words the circular buffer holds (a power of two, at least ``2 * MAX_SAMPLES``).
    led_cycles : int
        Cycles an LED stays lit after an event.
    runtime_thresholds : bool
        Build the ladder with writeable thresholds (``LOAD_THRESHOLDS``); with ``False`` the
        design's thresholds are constants and ``LOAD_THRESHOLDS`` is answered ``UNSUPPORTED``.
    adc_source : PmodAD1 or None
        A sample source (:class:`boards.pmod_ad1.PmodAD1`, built for this clock): ``ACQUIRE``
        frames make it convert samples that the pipeline digitises, and the answers carry each
        raw sample with its code. The top then has the Pmod's pins ``adc_cs_n``, ``adc_sclk``
        (outputs) and ``adc_sdata`` (input). None (the default): the UART's samples only, and
        the top is the one without a source, gate for gate.
    adc_domain : str
        The clock domain of the pipeline (``AdcPipeline``, ``ResultSelect`` and, with a source,
        ``RawTap``). ``"sync"`` (the default): one domain, the top's. Another name: the
        pipeline runs in that domain (the caller's clock, typically faster), reached through a
        :class:`DomainCrossing`; the UART, receiver, ring, transmitter, counters and the
        sample source stay in ``sync``. The top then has ``<adc_domain>_clk`` and
        ``<adc_domain>_rst`` inputs when converted alone.
    lanes : int
        Sample lanes of the pipeline (``AdcPipeline(lanes=N)``: N ladders side by side, N
        samples a clock). The receiver's one-sample stream is gathered into lane beats in front
        of it (:class:`hdl.pipe.LaneGather`) and its codes (and MAC outputs) are sent on one at
        a time behind it (:class:`hdl.pipe.LaneScatter`); a ``CODES`` frame of any length is
        answered with its own codes (the receiver completes the last beat with zero samples
        and the ring drops their codes). The link, not the pipeline, sets the rate; lanes here
        put the multi-lane pipeline on the board and check it end to end. With a MAC layer N
        must divide the samples per inference; not with ``adc_source``.
    """

    def __init__(self, design: Design, *, divisor: int, timeout: int = 1 << 16,
                 buffer_depth: int = 2048, rx_fifo_depth: int = 32, resp_fifo_depth: int = 8,
                 led_cycles: int = 1 << 21, runtime_thresholds: bool = True,
                 adc_source: PmodAD1 | None = None, adc_domain: str = "sync", lanes: int = 1):
        if not isinstance(adc_domain, str) or not adc_domain.isidentifier():
            raise ValueError(f"adc_domain must be a clock domain's name, not {adc_domain!r}")
        self.adc_domain = adc_domain
        if buffer_depth & (buffer_depth - 1) or buffer_depth < 2 * MAX_SAMPLES:
            raise ValueError(f"buffer_depth must be a power of two of at least {2 * MAX_SAMPLES}, "
                             f"not {buffer_depth!r}")
        if not isinstance(timeout, int) or timeout < 16 * divisor:
            raise ValueError(f"timeout must be at least 16 bit times ({16 * divisor} cycles), "
                             f"not {timeout!r}")
        self.design = design
        self.divisor = divisor
        self.timeout = timeout
        self.buffer_depth = buffer_depth
        self.rx_fifo_depth = rx_fifo_depth
        self.resp_fifo_depth = resp_fifo_depth
        self.led_cycles = led_cycles
        self.runtime_thresholds = runtime_thresholds
        if adc_source is not None and not isinstance(adc_source, PmodAD1):
            raise TypeError(f"adc_source must be a PmodAD1 or None, not "
                            f"{type(adc_source).__name__}")
        self.adc_source = adc_source
        _check_int("lanes", lanes, 1)
        if adc_source is not None and lanes > 1:
            raise ValueError("lanes > 1 and a sample source do not go together: the source's "
                             "samples come one at a time, at most 1 M samples/s")
        self.lanes = lanes
        self.core = AdcPipeline(design, runtime_thresholds=runtime_thresholds, lanes=lanes)
        self.has_mac = hasattr(self.core, "outputs")
        members = {"rx": In(1, init=1), "tx": Out(1, init=1), "led_activity": Out(1),
                   "led_error": Out(1)}
        if adc_source is not None:
            members.update({"adc_cs_n": Out(1, init=1), "adc_sclk": Out(1, init=1),
                            "adc_sdata": In(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        d = self.design
        acquire = self.adc_source is not None
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.rx_fifo = rxf = StreamFIFO(8, self.rx_fifo_depth)
        m.submodules.receiver = rx = FrameReceiver(d, timeout=self.timeout,
                                                   runtime_thresholds=self.runtime_thresholds,
                                                   acquire=acquire, lanes=self.lanes)
        core = self.core
        sel = ResultSelect(d)
        # the ring holds what one frame can produce, and at least buffer_depth words (with a
        # sample source each word also keeps its raw sample)
        m.submodules.ring = ring = ResultRing(result_width(d) + (ADC_BITS if acquire else 0),
                                              self.buffer_depth, max_results(d),
                                              keep=self.lanes > 1)
        m.submodules.resp_fifo = respf = StreamFIFO(ResponseLayout(rx.count_bits),
                                                    self.resp_fifo_depth)
        m.submodules.counters = counters = StatusCounters(d)
        m.submodules.leds = leds = EventLeds(self.led_cycles)
        m.submodules.transmitter = tx = FrameTransmitter(d, acquire=acquire)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)

        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx),
                     rx.overflow.eq(urx.overflow), counters.overflow.eq(urx.overflow),
                     counters.framing_error.eq(urx.framing_error),
                     tx.words.eq(counters.words),
                     self.led_activity.eq(leds.led_activity), self.led_error.eq(leds.led_error)]
        wiring.connect(m, urx.o, rxf.i)
        wiring.connect(m, rxf.o, rx.i)
        if acquire:
            m.submodules.adc = adc = self.adc_source
            m.d.comb += [adc.en.eq(rx.adc_en), self.adc_cs_n.eq(adc.cs_n),
                         self.adc_sclk.eq(adc.sclk), adc.sdata.eq(self.adc_sdata)]
            wiring.connect(m, adc.o, rx.adc)
            # enough raw words for every sample the pipeline holds: it never waits on the tap
            tap = RawTap(d, depth=core.latency + 4)
        split = self.adc_domain != "sync"
        # the pipeline's parts, in the ADC domain (renamed) when it is its own
        in_adc = (DomainRenamer({"sync": self.adc_domain}) if split else (lambda e: e))
        m.submodules.core = in_adc(core)
        m.submodules.select = in_adc(sel)
        if acquire:
            m.submodules.raw_tap = in_adc(tap)
        # the pipeline's one-sample ends (core_i, codes, outputs): the core's own, or with lanes
        # a gather in front of it and a scatter behind it
        core_i, core_codes = core.i, core.codes
        core_outputs = core.outputs if self.has_mac else None
        if self.lanes > 1:
            m.submodules.gather = gather = in_adc(LaneGather(d.input_bits, self.lanes))
            m.submodules.scatter = scatter = in_adc(
                LaneScatter(core.codes.payload.shape().elem_shape, self.lanes))
            wiring.connect(m, gather.o, core.i)
            wiring.connect(m, core.codes, scatter.i)
            core_i, core_codes = gather.i, scatter.o
            if self.has_mac:
                out_shape = core.outputs.payload.shape()
                m.submodules.scatter_outputs = scatter_out = in_adc(
                    LaneScatter(out_shape.elem_shape, out_shape.length))
                wiring.connect(m, core.outputs, scatter_out.i)
                core_outputs = scatter_out.o
        # (samples in, results out, mode) on the receiver's side, and the pipeline's ends
        head, tail = (tap.i, tap.o) if acquire else (core_i, sel.o)
        if split:
            m.submodules.crossing = cross = DomainCrossing(
                d, domain=self.adc_domain, sample_shape=rx.samples.payload.shape(),
                result_shape=ring.i.payload.shape(), runtime_thresholds=self.runtime_thresholds,
                lanes=self.lanes)
            wiring.connect(m, rx.samples, cross.samples)
            wiring.connect(m, cross.core_i, head)
            wiring.connect(m, tail, cross.core_results)
            wiring.connect(m, cross.results, ring.i)
            if self.runtime_thresholds:
                wiring.connect(m, rx.thr, cross.thr)
                wiring.connect(m, cross.core_thr, core.thr)
            if self.has_mac:
                m.d.comb += cross.mode.eq(rx.mode)
                mode = cross.core_mode
        else:
            wiring.connect(m, rx.samples, head)
            wiring.connect(m, tail, ring.i)
            if self.runtime_thresholds:
                wiring.connect(m, rx.thr, core.thr)
            if self.has_mac:
                mode = rx.mode
        if acquire:
            wiring.connect(m, tap.core, core.i)
        wiring.connect(m, core_codes, sel.codes)
        if self.has_mac:
            m.d.comb += [core.mode.eq(mode), sel.mode.eq(mode)]
            wiring.connect(m, core_outputs, sel.outputs)
            if acquire:
                m.d.comb += tap.mode.eq(mode)
        if acquire:
            wiring.connect(m, sel.o, tap.results)
        wiring.connect(m, rx.ring, ring.ctl)
        wiring.connect(m, rx.events, counters.events, leds.events)
        wiring.connect(m, rx.resp, respf.i)
        wiring.connect(m, respf.o, tx.resp)
        wiring.connect(m, ring.o, tx.results)
        wiring.connect(m, tx.o, utx.i)
        return m

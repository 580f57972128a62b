"""`AdcPipeline`: the blocks of one design file chained: ladder → decode → (FIFO → POST MAC).

Golden model: :func:`ref_adc_pipeline`.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from adcforge.design import Design

from .decode import DecodedLayout, DecodeLUT
from adcforge.golden import ref_adc_pipeline
from .ladder import ComparatorLadder, ThresholdWriteSignature, check_lanes, lane_shape
from .post import POSTMac

__all__ = ["AdcPipeline", "ChannelSerializer", "lanes_problem", "ref_adc_pipeline"]


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

    With a MAC layer the ladder never stalls for the POST layer: a sample is accepted only
    against a credit for a free entry in a small FIFO between the decoder and the MAC (sized
    from the ladder's latency), so the MAC's back-pressure ends at that FIFO.

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
                 levels_per_stage: int = 1, lanes: int = 1):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {type(design).__name__}")
        check_lanes(lanes)
        problem = lanes_problem(design, lanes)
        if problem:
            raise ValueError(problem)
        self.design = design
        self.lanes = lanes
        self.runtime_thresholds = runtime_thresholds
        self.ladder = ComparatorLadder(design.input_bits, design.thresholds,
                                       runtime=runtime_thresholds,
                                       levels_per_stage=levels_per_stage, lanes=lanes)
        self.decode = DecodeLUT(design.decode.table, design.decode.width, lanes=lanes)
        self.mac = (POSTMac.from_design(design, mac_lanes=mac_lanes,
                                        in_lanes=lanes * design.channels,
                                        out_lanes=1 if lanes == 1 else design.mac.outputs)
                    if design.mac is not None else None)
        # Credits and FIFO between the decoder and the MAC: enough entries for every sample in
        # flight in the ladder and decoder plus the FIFO's own read latency, so that a MAC that
        # takes a beat every clock never runs out of credits.
        self.latency = self.ladder.latency + self.decode.latency
        self.credits = self.latency + 4
        # SyncFIFOBuffered guarantees depth - 1 free entries (one may be in its output move)
        self.fifo_depth = self.credits + 1
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
        if self.mac is None:
            wiring.connect(m, wiring.flipped(self.i), ladder.i)
        wiring.connect(m, ladder.o, decode.i)
        if self.runtime_thresholds:
            wiring.connect(m, wiring.flipped(self.thr), ladder.thr)
        if self.mac is None:
            wiring.connect(m, decode.o, wiring.flipped(self.codes))
            return m

        d, N, C, W = self.design, self.lanes, self.design.channels, self.design.decode.width
        m.submodules.mac = mac = self.mac
        wiring.connect(m, mac.o, wiring.flipped(self.outputs))
        # The activations of a beat, sample-major and channel-minor (the design's input order).
        lanes = [decode.o.payload] if N == 1 else [decode.o.payload[k] for k in range(N)]
        acts = Cat(*(lane.values[c] for lane in lanes for c in range(C)))
        m.submodules.mac_fifo = fifo = SyncFIFOBuffered(width=N * C * W, depth=self.fifo_depth)
        credits = Signal(range(self.credits + 1), init=self.credits)
        has_credit = Signal(init=1)
        m.d.comb += [
            ladder.i.payload.eq(self.i.payload),
            ladder.i.valid.eq(self.i.valid & (~self.mode | has_credit)),
            # mode 1: a sample needs a credit, and the ladder and decoder never stall.
            self.i.ready.eq(Mux(self.mode, has_credit, ladder.i.ready)),
            fifo.w_data.eq(acts),
            fifo.w_en.eq(decode.o.valid & self.mode),
            self.codes.payload.eq(decode.o.payload),
            self.codes.valid.eq(decode.o.valid & ~self.mode),
            decode.o.ready.eq(self.mode | self.codes.ready),
            mac.i.payload.eq(fifo.r_data),
            mac.i.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(mac.i.ready),
        ]
        take = self.i.valid & self.i.ready & self.mode
        give = fifo.r_rdy & fifo.r_en
        new_credits = credits - take + give
        m.d.sync += [credits.eq(new_credits), has_credit.eq(new_credits != 0)]
        return m


def lanes_problem(design: Design, lanes: int) -> str | None:
    """Return why ``lanes`` sample lanes cannot carry ``design`` (None if they can)."""
    if design.mac is not None and design.samples_per_inference % lanes:
        spi, c = design.samples_per_inference, design.channels
        return (f"lanes: {lanes} does not divide the POST layer's {spi} samples per inference "
                f"(mac.inputs {design.mac.inputs} = {spi} samples x {c} channel"
                f"{'s' if c > 1 else ''}); use a divisor of {spi}")
    return None

"""`AdcPipeline`: the blocks of one design file chained: ladder → decode → (POST MAC).

Golden model: :func:`ref_adc_pipeline`.
"""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from adcforge.design import Design

from .decode import DecodedLayout, DecodeLUT
from adcforge.golden import ref_adc_pipeline
from .ladder import ComparatorLadder, ThresholdWriteSignature
from .pipe import SkidBuffer
from .post import POSTMac

__all__ = ["AdcPipeline", "ChannelSerializer", "ref_adc_pipeline"]


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

    Parameters
    ----------
    design : Design
        A validated design file.
    runtime_thresholds : bool
        Make the ladder's thresholds writeable through ``thr`` (the design's values at reset).
    mac_lanes : int or None
        Parallel multiply lanes of the MAC core: weights applied per clock to each activation
        (default: one per output, so the MAC takes an activation every clock).
    levels_per_stage : int
        Logic levels between the ladder's pipeline registers.

    Members
    -------
    i : In(stream.Signature(input_bits))
        Samples.
    codes : Out(stream.Signature(DecodedLayout(bits, width, channels)))
        One code and its decoded values per sample (with a MAC layer: when ``mode`` is 0).
    outputs : Out(stream.Signature(signed(mac.output_bits))), with a MAC layer only
        ``mac.outputs`` results per ``design.samples_per_inference`` samples, when ``mode`` is 1.
    mode : In(1), with a MAC layer only
        0: samples → codes; 1: samples → MAC results. Change it only while the pipeline is
        empty (no sample in flight).
    thr : In(ThresholdWriteSignature), with ``runtime_thresholds`` only.
    """

    def __init__(self, design: Design, *, runtime_thresholds: bool = False, mac_lanes=None,
                 levels_per_stage: int = 1):
        if not isinstance(design, Design):
            raise TypeError(f"design must be a Design, not {type(design).__name__}")
        self.design = design
        self.runtime_thresholds = runtime_thresholds
        self.ladder = ComparatorLadder(design.input_bits, design.thresholds,
                                       runtime=runtime_thresholds,
                                       levels_per_stage=levels_per_stage)
        self.decode = DecodeLUT(design.decode.table, design.decode.width)
        self.mac = POSTMac.from_design(design, mac_lanes=mac_lanes) if design.mac is not None else None
        members = {
            "i": In(stream.Signature(unsigned(design.input_bits))),
            "codes": Out(stream.Signature(DecodedLayout(design.bits, design.decode.width,
                                                        design.channels))),
        }
        if self.mac is not None:
            members["outputs"] = Out(stream.Signature(signed(design.mac.output_bits)))
            members["mode"] = In(1)
        if runtime_thresholds:
            members["thr"] = In(ThresholdWriteSignature(design.bits, design.input_bits))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ladder = ladder = self.ladder
        m.submodules.decode = decode = self.decode
        wiring.connect(m, wiring.flipped(self.i), ladder.i)
        wiring.connect(m, ladder.o, decode.i)
        if self.runtime_thresholds:
            wiring.connect(m, wiring.flipped(self.thr), ladder.thr)
        if self.mac is None:
            wiring.connect(m, decode.o, wiring.flipped(self.codes))
            return m

        m.submodules.serializer = ser = ChannelSerializer(
            self.design.bits, self.design.decode.width, self.design.channels)
        # A skid buffer registers the MAC's back-pressure, so that its stall does not run
        # combinationally through the decoder and the ladder into their clock enables.
        m.submodules.mac_skid = mac_skid = SkidBuffer(signed(self.design.decode.width))
        m.submodules.mac = mac = self.mac
        wiring.connect(m, ser.o, mac_skid.i)
        wiring.connect(m, mac_skid.o, mac.i)
        wiring.connect(m, mac.o, wiring.flipped(self.outputs))
        # Demultiplex the decoded stream by mode.
        m.d.comb += [
            ser.i.payload.eq(decode.o.payload),
            self.codes.payload.eq(decode.o.payload),
            ser.i.valid.eq(decode.o.valid & self.mode),
            self.codes.valid.eq(decode.o.valid & ~self.mode),
            decode.o.ready.eq((self.mode & ser.i.ready) | (~self.mode & self.codes.ready)),
        ]
        return m

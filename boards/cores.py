"""The ADC core that boards carry: ``hdl.pipeline.AdcPipeline``, or a stand-in until it exists.

:func:`adc_core` is the one place that chooses. The stand-in (:class:`StandInLadder`) is a plain
registered comparator ladder with the same ``i``/``codes``/``thr`` ports; it exists so that the
board flow could be developed before the real pipeline landed, and is used only when
``hdl.pipeline`` cannot be imported.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from adcforge.design import Design


def have_pipeline() -> bool:
    """Return whether ``hdl.pipeline.AdcPipeline`` is available."""
    try:
        from hdl.pipeline import AdcPipeline  # noqa: F401
    except ImportError:
        return False
    return True


def adc_core(design: Design, *, runtime_thresholds: bool = False):
    """Return the ADC pipeline component for ``design``."""
    try:
        from hdl.pipeline import AdcPipeline
    except ImportError:
        if design.mac is not None:
            from adcforge.errors import ToolchainError
            raise ToolchainError(f"design {design.name} has a MAC layer, which needs "
                                 "hdl.pipeline.AdcPipeline; it is not installed in this checkout")
        return StandInLadder(design, runtime_thresholds=runtime_thresholds)
    return AdcPipeline(design, runtime_thresholds=runtime_thresholds)


def code_of(payload):
    """Return the code of a ``codes`` stream payload (``AdcPipeline``'s carries ``.code`` and
    ``.values``; the stand-in's is the code itself)."""
    return payload.code if hasattr(payload, "code") else payload


def threshold_write_signature(design: Design) -> wiring.Signature:
    """Return the threshold write port's signature (``addr``, ``data``, ``we``, ``commit``)."""
    try:
        from hdl.ladder import ThresholdWriteSignature
    except ImportError:
        ThresholdWriteSignature = None
    n = len(design.thresholds)
    if ThresholdWriteSignature is not None:
        try:
            return ThresholdWriteSignature(design.bits, design.input_bits)
        except TypeError:
            pass
    return wiring.Signature({"addr": Out(max(1, (n - 1).bit_length())),
                             "data": Out(design.input_bits), "we": Out(1), "commit": Out(1)})


class StandInLadder(wiring.Component):
    """A registered comparator ladder, one sample per clock (a stand-in for ``AdcPipeline``)."""

    def __init__(self, design: Design, *, runtime_thresholds: bool = False):
        self._design = design
        self._runtime = runtime_thresholds
        members = {"i": In(stream.Signature(unsigned(design.input_bits))),
                   "codes": Out(stream.Signature(unsigned(design.bits)))}
        if runtime_thresholds:
            members["thr"] = In(threshold_write_signature(design))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        d = self._design
        n = len(d.thresholds)
        if self._runtime:
            active = [Signal(d.input_bits, init=t, name=f"thr{k}") for k, t in enumerate(d.thresholds)]
            shadow = [Signal(d.input_bits, init=t, name=f"shadow{k}")
                      for k, t in enumerate(d.thresholds)]
            for k in range(n):
                with m.If(self.thr.we & (self.thr.addr == k)):
                    m.d.sync += shadow[k].eq(self.thr.data)
            with m.If(self.thr.commit):
                m.d.sync += [a.eq(s) for a, s in zip(active, shadow)]
        else:
            active = list(d.thresholds)
        # two stages with one global enable: thermometer, then ones-count
        therm = Signal(n)
        v1 = Signal()
        code = Signal(d.bits)
        v2 = Signal()
        en = ~v2 | self.codes.ready
        m.d.comb += self.i.ready.eq(en)
        with m.If(en):
            m.d.sync += [v1.eq(self.i.valid), therm.eq(Cat(self.i.payload >= t for t in active)),
                         v2.eq(v1), code.eq(sum(therm[k] for k in range(n)))]
        m.d.comb += [self.codes.valid.eq(v2), self.codes.payload.eq(code)]
        return m

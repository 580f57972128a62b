"""`DecodeLUT`: ADC code → the learned decode values (signed fixed point, one or more channels).

Golden model: :func:`ref_decode_lut` (``values = table[code]``).
"""

import numpy as np
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from adcforge.design import signed_range
from adcforge.golden import ref_decode_lut

from .ladder import check_lanes, lane_shape
from .pipe import check_stall, enabled, logic_rom, stream_enable

__all__ = ["DecodeLUT", "DecodedLayout", "ref_decode_lut"]


class DecodedLayout(data.StructLayout):
    """A code and its decoded values: ``code`` (``bits``), ``values`` (``channels`` × signed
    ``width``)."""

    def __init__(self, bits: int, width: int, channels: int):
        super().__init__({"code": unsigned(bits),
                          "values": data.ArrayLayout(signed(width), channels)})


class DecodeLUT(wiring.Component):
    """Look up each code's decode values; one code per clock, one register stage (a ROM with a
    synchronous read port: block RAM where the device has it).

    Parameters
    ----------
    table : array of int, shape (2**bits, channels)
        Signed ``width``-bit values.
    width : int
        Width of one value, 2..24.
    lanes : int
        Codes per beat (one ROM read port each); with more than one, both payloads are
        ``ArrayLayout``s of ``lanes`` elements (element 0 = the earliest sample).
    rom_style : str or None
        Passed to Yosys as the table's ``rom_style`` (``"logic"``: LUTs instead of block RAM,
        whose clock-to-output is slow on the ECP5); None lets Yosys choose.
    stall : True, "ready" or False
        True (the default): one clock enable, ``~o.valid | o.ready``, holds the table's read.
        ``"ready"``: the enable is ``o.ready`` itself. False: no clock enable, ``i.ready`` is 1
        and ``o.ready`` is ignored (the caller keeps room for every beat, ``latency`` clocks
        after it was offered). (:func:`hdl.pipe.stream_enable`)

    Members
    -------
    i : In(stream.Signature(bits))
    o : Out(stream.Signature(DecodedLayout(bits, width, channels)))
    """

    def __init__(self, table, width: int, *, lanes: int = 1, rom_style: str | None = None,
                 stall: bool = True):
        table = np.asarray(table)
        if table.ndim != 2 or table.shape[0] < 2 or table.shape[0] & (table.shape[0] - 1):
            raise ValueError(f"table must have shape (2**bits, channels), not {table.shape}")
        if not isinstance(width, int) or not 2 <= width <= 24:
            raise ValueError(f"width must be an integer in [2, 24], not {width!r}")
        lo, hi = signed_range(width)
        if table.min() < lo or table.max() > hi:
            raise ValueError(f"table values must lie in [{lo}, {hi}] for width {width}")
        self.table = table.astype(np.int64)
        self.width = width
        self.bits = table.shape[0].bit_length() - 1
        self.channels = table.shape[1]
        self.lanes = check_lanes(lanes)
        self.rom_style = rom_style
        self.stall = check_stall(stall)
        # rom_style "logic": a two-stage ROM in LUTs (see hdl.pipe.logic_rom)
        self.latency = 2 if rom_style == "logic" else 1
        super().__init__({
            "i": In(stream.Signature(lane_shape(unsigned(self.bits), lanes))),
            "o": Out(stream.Signature(lane_shape(DecodedLayout(self.bits, width, self.channels),
                                                 lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        en = stream_enable(m, self.stall, self.i, self.o)
        self._reset_less = self.stall is not True  # data registers (the default: as before)
        row_layout = data.ArrayLayout(signed(self.width), self.channels)
        init = [[int(v) for v in row] for row in self.table]
        if self.latency == 2:
            return self._elaborate_logic(m, en, row_layout, init)
        attrs = {"rom_style": self.rom_style} if self.rom_style else None
        m.submodules.rom = rom = memory.Memory(shape=row_layout, depth=len(init), init=init,
                                               attrs=attrs)
        for lane in range(self.lanes):
            i_code = self.i.payload if self.lanes == 1 else self.i.payload[lane]
            out = self.o.payload if self.lanes == 1 else self.o.payload[lane]
            rd = rom.read_port(domain="sync")
            m.d.comb += [rd.addr.eq(i_code), rd.en.eq(1 if en is None else en)]
            code = Signal(unsigned(self.bits), name="code" if self.lanes == 1 else f"code_{lane}",
                          reset_less=self._reset_less)
            with enabled(m, en):
                m.d.sync += code.eq(i_code)
            m.d.comb += [out.code.eq(code), out.values.eq(rd.data)]
        with enabled(m, en):
            m.d.sync += self.o.valid.eq(self.i.valid)
        return m

    def _elaborate_logic(self, m, en, row_layout, init):
        w = self.width
        raw = [sum((v & ((1 << w) - 1)) << (c * w) for c, v in enumerate(row)) for row in init]
        for lane in range(self.lanes):
            i_code = self.i.payload if self.lanes == 1 else self.i.payload[lane]
            out = self.o.payload if self.lanes == 1 else self.o.payload[lane]
            data = logic_rom(m, raw, w * self.channels, i_code, en, name=f"rom{lane}")
            code1 = Signal(unsigned(self.bits), name=f"code1_{lane}",
                           reset_less=self._reset_less)
            code2 = Signal(unsigned(self.bits), name=f"code2_{lane}",
                           reset_less=self._reset_less)
            with enabled(m, en):
                m.d.sync += [code1.eq(i_code), code2.eq(code1)]
            m.d.comb += [out.code.eq(code2), out.values.eq(data)]
        valid1 = Signal()
        with enabled(m, en):
            m.d.sync += [valid1.eq(self.i.valid), self.o.valid.eq(valid1)]
        return m

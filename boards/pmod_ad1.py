"""A real sample source: the SPI front end of a Digilent Pmod AD1 (two AD7476A, channel 0 used).

The Pmod AD1 carries two AD7476A 12-bit, 1 M samples/s converters that share ``CS`` and
``SCLK``; each has its own data line (``D0``, ``D1``). Its 6-pin header: pin 1 ``CS``, pin 2
``D0``, pin 3 ``D1``, pin 4 ``SCLK``, pin 5 GND, pin 6 VCC (3.3 V). :class:`PmodAD1` drives
``CS`` (active low) and ``SCLK`` and reads ``D0`` (channel 0, the ``A0`` input); ``D1`` is not
used.

The converter's serial interface (AD7476A data sheet, Rev. F, "Timing specifications", Table 4,
and "Serial interface"): the falling edge of ``CS`` samples the analog input, starts the
conversion and drives the first of four leading zeros onto ``SDATA`` (within t3); each ``SCLK``
falling edge then clocks out the next bit (valid t4 after the edge, the previous one held for
t7), MSB first: 4 zeros, DB11 … DB0. The 16th falling edge ends the conversion and three-states
``SDATA`` (within t8); the next conversion may start t_quiet after that. The track-and-hold goes
back to track on the ``SCLK`` rising edge after the 13th falling edge and needs t_acq before the
next ``CS`` falling edge. :data:`AD7476A` holds those figures; :func:`plan_timing` derives the
front end's schedule from the board clock and checks it against them.

The schedule, in board-clock cycles from the ``CS`` falling edge (``h`` cycles per ``SCLK``
half period): ``SCLK`` idles high, falls at ``2kh`` (k = 1 … 16) and rises at ``(2k + 1)h``;
``CS`` rises with the last rising edge at ``33h``. Bit ``k - 1`` (clocked out by the previous
falling edge, or by ``CS`` for the first) is read at the ``k``-th falling edge, a whole ``SCLK``
period after it was clocked out, through a two-flop synchroniser. A conversion starts every
``period`` cycles while ``en`` is high, so the samples of one burst are evenly spaced.

A 12-bit sample becomes the design's input word by :func:`adcforge.design.sensor_to_samples`'s
rule (the most significant bits kept: shifted right when the design takes fewer than 12 bits,
left when it takes more): :func:`adc_to_sample` in the gateware, the same function as the host's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

#: bits of one converter sample
ADC_BITS = 12
#: ``SCLK`` periods of one conversion (4 leading zeros, then 12 bits)
FRAME_BITS = 16
LEADING_ZEROS = FRAME_BITS - ADC_BITS
#: the default conversion rate (an exact divisor of every supported board clock)
DEFAULT_SAMPLE_RATE = 500_000
#: the board's pad and trace delays, both ways, added to t3 and t4 when checking that one SCLK
#: period is time enough for a bit to reach the FPGA
IO_MARGIN_S = 20e-9


@dataclass(frozen=True)
class ConverterTiming:
    """An AD7476A's serial-interface figures (seconds, Hz), from its data sheet's Table 4."""

    sclk_max_hz: float = 20e6       # f_SCLK max
    sclk_min_hz: float = 10e3       # f_SCLK min (A, B grades) at which specifications hold
    throughput_max_hz: float = 1e6  # 1 M samples/s
    t_quiet: float = 50e-9          # min: bus relinquish to the next conversion
    t1: float = 10e-9               # min CS pulse width
    t2: float = 10e-9               # min CS to SCLK setup
    t3: float = 22e-9               # max: CS falling to SDATA out of three-state
    t4: float = 40e-9               # max data access time after an SCLK falling edge
    t_mark: float = 0.4             # SCLK low and high pulse widths: at least 0.4 t_SCLK (t5, t6)
    t7: float = 7e-9                # min SCLK to data valid hold (7 ns above 3.6 V, 10 ns at 3.3 V)
    t8: float = 36e-9               # max: 16th SCLK falling edge to SDATA high impedance
    t_acq: float = 250e-9           # track-and-hold acquisition (the data sheet's timing examples)


AD7476A = ConverterTiming()


@dataclass(frozen=True)
class FrontEndTiming:
    """The front end's schedule at one board clock (see the module docstring)."""

    clk_hz: float
    half: int            # board cycles per SCLK half period
    period: int          # board cycles between conversions (CS falling edges)
    min_period: int      # the fewest cycles a conversion cycle may take at this SCLK

    @property
    def sclk_hz(self) -> float:
        return self.clk_hz / (2 * self.half)

    @property
    def sample_rate(self) -> float:
        return self.clk_hz / self.period

    @property
    def max_sample_rate(self) -> float:
        return self.clk_hz / self.min_period

    def describe(self) -> str:
        return (f"{self.sample_rate:,.0f} samples/s (a conversion every {self.period} cycles "
                f"of {self.clk_hz / 1e6:g} MHz), SCLK {self.sclk_hz / 1e6:g} MHz")


def _cycles(seconds: float, clk_hz: float) -> int:
    """Whole cycles covering ``seconds`` (a float just above an integer does not round up)."""
    return math.ceil(seconds * clk_hz - 1e-9)


def plan_timing(clk_hz: float, sample_rate: float = DEFAULT_SAMPLE_RATE, *,
                sclk_hz: float = AD7476A.sclk_max_hz,
                adc: ConverterTiming = AD7476A) -> FrontEndTiming:
    """Return the schedule for ``clk_hz`` or raise ``ValueError`` in one line saying which
    figure of the converter a request breaks.

    ``sclk_hz`` is the fastest ``SCLK`` wanted (at most the converter's 20 MHz); the half period
    is the fewest board cycles that keep under it and leave a whole ``SCLK`` period for t4 (plus
    :data:`IO_MARGIN_S`) between clocking a bit out and reading it.
    """
    if not clk_hz > 0:
        raise ValueError(f"the board clock must be positive, not {clk_hz!r}")
    if not 0 < sclk_hz <= adc.sclk_max_hz:
        raise ValueError(f"SCLK of {sclk_hz / 1e6:g} MHz: the AD7476A takes at most "
                         f"{adc.sclk_max_hz / 1e6:g} MHz")
    if not 0 < sample_rate <= adc.throughput_max_hz:
        raise ValueError(f"a sample rate of {sample_rate:,.0f} samples/s: the AD7476A converts "
                         f"at most {adc.throughput_max_hz:,.0f} samples/s")
    half = max(1, math.ceil(clk_hz / (2 * sclk_hz) - 1e-9),
               _cycles((max(adc.t3, adc.t4) + IO_MARGIN_S) / 2, clk_hz))
    if clk_hz / (2 * half) < adc.sclk_min_hz:
        raise ValueError(f"SCLK of {clk_hz / (2 * half):,.0f} Hz is under the AD7476A's "
                         f"{adc.sclk_min_hz:,.0f} Hz")
    h = half
    min_period = max(
        32 * h + _cycles(adc.t8 + adc.t_quiet, clk_hz),  # 16th fall, relinquish, quiet time
        27 * h + _cycles(adc.t_acq, clk_hz),             # track from the rise after the 13th
        33 * h + _cycles(adc.t1, clk_hz),                # CS high at least t1
        _cycles(1 / adc.throughput_max_hz, clk_hz),      # 1 M samples/s
    )
    period = round(clk_hz / sample_rate)
    if period < min_period:
        raise ValueError(
            f"a sample rate of {sample_rate:,.0f} samples/s needs a conversion every {period} "
            f"cycles of {clk_hz / 1e6:g} MHz; with SCLK at {clk_hz / (2 * h) / 1e6:g} MHz the "
            f"AD7476A needs {min_period} (at most {clk_hz / min_period:,.0f} samples/s here)")
    return FrontEndTiming(clk_hz=clk_hz, half=half, period=period, min_period=min_period)


def adc_to_sample(raw, input_bits: int):
    """The design's input word of a 12-bit converter sample, in the gateware: its most
    significant bits (``sensor_to_samples(raw, 12, input_bits)``'s rule, without the clip a
    shifted 12-bit value never needs)."""
    shift = ADC_BITS - input_bits
    if shift >= 0:
        return raw[shift:ADC_BITS]
    return Cat(Const(0, -shift), raw[:ADC_BITS])


class PmodAD1(wiring.Component):
    """SPI front end for channel 0 of a Pmod AD1: conversions on demand, samples on a stream.

    Parameters
    ----------
    clk_hz : float
        The ``sync`` domain's frequency.
    sample_rate : float
        Conversions per second while ``en`` is high (``clk_hz / period``, ``period`` rounded
        to whole cycles; at most the converter allows at this clock, see :func:`plan_timing`).
    sclk_hz : float
        The fastest ``SCLK`` wanted (default the AD7476A's 20 MHz).
    sync_stages : int
        Flip-flops synchronising ``sdata``.

    Members
    -------
    en : In(1)
        While 1, a conversion starts every ``period`` cycles (the first at once, or ``period``
        cycles after the last one started, whichever is later). While 0 none starts (one
        under way completes, ``CS`` rises) and no sample is offered: a sample not taken when
        ``en`` falls is dropped.
    o : Out(stream.Signature(unsigned(12)))
        Channel 0's samples, in conversion order. A sample still untaken when the next
        conversion ends is kept and the newer one dropped (``dropped`` pulses).
    cs_n, sclk : Out(1)
        To the Pmod's pins 1 (``CS``) and 4 (``SCLK``); both idle high.
    sdata : In(1)
        From the Pmod's pin 2 (``D0``).
    dropped : Out(1)
        One cycle per sample dropped because ``o`` was not taken in time.
    """

    def __init__(self, *, clk_hz: float, sample_rate: float = DEFAULT_SAMPLE_RATE,
                 sclk_hz: float = AD7476A.sclk_max_hz, sync_stages: int = 2):
        self.timing = plan_timing(clk_hz, sample_rate, sclk_hz=sclk_hz)
        if not isinstance(sync_stages, int) or sync_stages < 2:
            raise ValueError(f"sync_stages must be an integer of at least 2, not {sync_stages!r}")
        self.sync_stages = sync_stages
        super().__init__({
            "en": In(1),
            "o": Out(stream.Signature(unsigned(ADC_BITS))),
            "cs_n": Out(1, init=1),
            "sclk": Out(1, init=1),
            "sdata": In(1),
            "dropped": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        h, period = self.timing.half, self.timing.period
        last_half = 2 * FRAME_BITS + 1  # CS rises with SCLK's last rising edge

        sdata = Signal()
        m.submodules.sdata_sync = FFSynchronizer(self.sdata, sdata, stages=self.sync_stages)

        since = Signal(range(period + 1), init=period)  # cycles since the last CS falling edge
        busy = Signal()
        hc = Signal(range(max(h, 2)))                   # cycle within the SCLK half period
        e = Signal(range(last_half + 1))                # half periods since CS fell
        shift = Signal(FRAME_BITS)
        sample = Signal(ADC_BITS)                       # the sample offered on ``o``
        got = Signal(range(FRAME_BITS + 1))             # bits read so far
        # the read strobe of each falling edge, delayed by the synchroniser's stages: the
        # synchronised value is then the pin's level at that edge
        read = Signal(self.sync_stages)

        start = Signal()
        m.d.comb += start.eq(self.en & ~busy & (since == period))
        with m.If(start):
            m.d.sync += [since.eq(1), busy.eq(1), self.cs_n.eq(0), self.sclk.eq(1), hc.eq(0),
                         e.eq(0)]
        with m.Elif(since != period):
            m.d.sync += since.eq(since + 1)

        fall = Signal()
        with m.If(busy):
            with m.If(hc == h - 1):
                m.d.sync += [hc.eq(0), e.eq(e + 1)]
                nxt = e + 1
                falling = (nxt[0] == 0) & (nxt >= 2) & (nxt <= 2 * FRAME_BITS)
                m.d.comb += fall.eq(falling)
                m.d.sync += self.sclk.eq(~falling)
                with m.If(nxt == last_half):
                    m.d.sync += [self.cs_n.eq(1), busy.eq(0)]
            with m.Else():
                m.d.sync += hc.eq(hc + 1)
        m.d.sync += read.eq(Cat(fall, read[:-1]))

        m.d.comb += self.o.payload.eq(sample)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(read[-1]):
            word = Cat(sdata, shift[:-1])
            m.d.sync += [shift.eq(word), got.eq(got + 1)]
            with m.If(got == FRAME_BITS - 1):  # the 16th bit: the sample is complete
                m.d.sync += got.eq(0)
                with m.If(self.o.valid & ~self.o.ready):
                    m.d.comb += self.dropped.eq(self.en)
                with m.Else():
                    m.d.sync += [sample.eq(word[:ADC_BITS]), self.o.valid.eq(self.en)]
        with m.If(~self.en):
            m.d.sync += self.o.valid.eq(0)
        return m


# -- a behavioural model of the converter, for simulations -----------------------------------


class AD7476AModel:
    """One AD7476A on one data line, as a simulation that samples at clock edges sees it.

    The testbench reports the front end's outputs after every clock edge (``observe(t, cs_n,
    sclk)``, ``t`` in seconds) and drives ``sdata`` with ``line(t_next)``, the level the FPGA
    reads at its next edge. ``CS`` falling takes the next value of ``values`` (the analog input,
    12-bit codes; 0 once they run out) and, after t3, drives the first leading zero; each
    ``SCLK`` falling edge keeps the old bit for t7, drives garbage (a pseudo-random level) until
    t4, then the next bit; the 16th falling edge and ``CS`` rising three-state the line
    (garbage). Every breach of
    the data sheet's timing is kept in ``violations`` (one line each, with its time); the
    shortest intervals seen are kept too (``min_sclk_period``, ``min_cs_high`` …) for the tests.
    ``boards/simboard/harness.cpp`` holds the same model in C++ for the Verilator board.
    """

    def __init__(self, values, *, timing: ConverterTiming = AD7476A, seed: int = 1):
        import itertools
        import random
        self.values = itertools.chain(values, itertools.repeat(0))  # then 0 for ever
        self.t = timing
        self.rng = random.Random(seed)
        self.cs_n, self.sclk = 1, 1
        self.violations: list[str] = []
        self.converted: list[int] = []
        self.cs_falls: list[float] = []
        self.frame = 0
        self.falls = 0
        self.event = ("idle", 0.0, 0, 0)  # kind, time, old bit, new bit
        self.last_fall = self.last_rise = None
        self.t_cs_rise = self.t_16th = self.t_track = None
        self.min_sclk_period = self.min_cs_high = self.min_quiet = self.min_acq = math.inf
        self.min_mark = math.inf  # the shorter SCLK phase over its period

    def _bit(self, i: int) -> int:
        return (self.frame >> (FRAME_BITS - 1 - i)) & 1

    def _violate(self, t: float, what: str) -> None:
        self.violations.append(f"{t * 1e9:.1f} ns: {what}")

    def observe(self, t: float, cs_n: int, sclk: int) -> None:
        tm = self.t
        if self.cs_n and not cs_n:  # CS falls: sample, convert, the first leading zero
            if not sclk:
                self._violate(t, "SCLK low when CS fell")
            if self.t_cs_rise is not None:
                self.min_cs_high = min(self.min_cs_high, t - self.t_cs_rise)
                if t - self.t_cs_rise < tm.t1:
                    self._violate(t, f"CS high {(t - self.t_cs_rise) * 1e9:.1f} ns < t1")
            if self.t_16th is not None:
                quiet = t - (self.t_16th + tm.t8)
                self.min_quiet = min(self.min_quiet, quiet)
                if quiet < tm.t_quiet:
                    self._violate(t, f"quiet time {quiet * 1e9:.1f} ns < t_quiet")
            if self.t_track is not None:
                self.min_acq = min(self.min_acq, t - self.t_track)
                if t - self.t_track < tm.t_acq:
                    self._violate(t, f"acquisition {(t - self.t_track) * 1e9:.1f} ns < t_acq")
            if self.cs_falls and t - self.cs_falls[-1] < 1 / tm.throughput_max_hz - 1e-12:
                self._violate(t, f"conversions {(t - self.cs_falls[-1]) * 1e9:.1f} ns apart")
            value = int(next(self.values)) & ((1 << ADC_BITS) - 1)
            self.converted.append(value)
            self.cs_falls.append(t)
            self.frame, self.falls = value, 0
            self.last_fall = self.last_rise = None
            self.t_16th = self.t_track = None
            self.event = ("cs", t, 0, self._bit(0))
        elif not self.cs_n and cs_n:  # CS rises
            if self.falls < FRAME_BITS:
                self._violate(t, f"CS rose after {self.falls} SCLK falling edges, not 16")
            self.t_cs_rise = t
            self.event = ("idle", t, 0, 0)
        if not cs_n and self.sclk and not sclk:  # an SCLK falling edge while CS is low
            if self.last_fall is None:
                if t - self.cs_falls[-1] < tm.t2:
                    self._violate(t, "CS to SCLK setup < t2")
            else:
                period = t - self.last_fall
                self.min_sclk_period = min(self.min_sclk_period, period)
                if period < 1 / tm.sclk_max_hz - 1e-12:
                    self._violate(t, f"SCLK period {period * 1e9:.1f} ns (over 20 MHz)")
                high, low = t - self.last_rise, self.last_rise - self.last_fall
                self.min_mark = min(self.min_mark, min(high, low) / period)
                if min(high, low) < tm.t_mark * period - 1e-12:
                    self._violate(t, "SCLK mark/space beyond 40/60")
            self.falls += 1
            self.last_fall = t
            if self.falls < FRAME_BITS:
                self.event = ("sclk", t, self._bit(self.falls - 1), self._bit(self.falls))
            elif self.falls == FRAME_BITS:
                self.t_16th = t
                self.event = ("last", t, self._bit(FRAME_BITS - 1), 0)
            else:
                self._violate(t, f"SCLK falling edge {self.falls} in one conversion")
        if not cs_n and not self.sclk and sclk:  # an SCLK rising edge
            self.last_rise = t
            if self.falls == 13:
                self.t_track = t  # the track-and-hold goes back to track
        self.cs_n, self.sclk = cs_n, sclk

    def line(self, t: float) -> int:
        """The level of ``SDATA`` at time ``t`` (after the last observed edge)."""
        kind, t0, old, new = self.event
        dt, tm = t - t0, self.t
        if kind == "cs":
            return new if dt >= tm.t3 else self.rng.getrandbits(1)
        if kind == "sclk":
            if dt < tm.t7:
                return old
            return new if dt >= tm.t4 else self.rng.getrandbits(1)
        if kind == "last" and dt < tm.t7:
            return old
        return self.rng.getrandbits(1)  # three-state: whatever the line floats to

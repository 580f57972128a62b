"""A board model in Python: the protocol's answers computed with the golden model, instantly.

:class:`PyBoardTransport` is a :class:`~boards.hil.Transport` that answers like the board top
(same frames, statuses and counters) without any gateware. It measures what the host runner can
sustain on its own (``adcforge bench hil-host``), so that a real link's figures can be read
against it; the simulated board (Verilator) is what the tests check the gateware with.

With ``adc`` (a function of a count returning that many raw 12-bit samples) it answers
``ACQUIRE`` as a board with a sample source does; without, ``ACQUIRE`` is an unknown command.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from adcforge.design import Design

from .hil import Transport
from .protocol import (ADC_BITS, MAX_ACQUIRE, MAX_PAYLOAD, RESPONSE, STATUS_FIELDS, Command,
                       FrameParser, Status, design_id, output_bytes, pack_acquired, pack_frame,
                       pack_words, sample_bytes, unpack_words)


class PyBoardTransport(Transport):
    """Answer frames written to it as the board top would (see module docstring)."""

    def __init__(self, design: Design, byte_rate: float | None = None, adc=None):
        from adcforge.golden import ref_adc_pipeline, ref_comparator_ladder_unsorted
        self._ref = ref_adc_pipeline
        self._ladder = ref_comparator_ladder_unsorted
        self.design = design
        self.byte_rate = byte_rate
        self.adc = adc
        self.thresholds = list(design.thresholds)
        self.parser = FrameParser(max_payload=MAX_PAYLOAD)
        self.out = bytearray()
        self.counters = dict.fromkeys(STATUS_FIELDS, 0)
        self.counters["design_id"] = design_id(design)

    def write(self, data: bytes) -> None:
        for f in self.parser.feed(data):
            self.out += self._answer(f.cmd, f.seq, f.payload)

    def _answer(self, cmd, seq, payload) -> bytes:
        d, sb = self.design, sample_bytes(self.design)
        if cmd == Command.STATUS.value:
            self.counters["frames_ok"] += 1
            body = pack_words([self.counters[k] for k in STATUS_FIELDS], 4)
            return pack_frame(cmd | RESPONSE, seq, bytes([Status.OK.value]) + body)
        if cmd == Command.LOAD_THRESHOLDS.value:
            self.thresholds = unpack_words(payload, sb, bits=d.input_bits)
            self.counters["frames_ok"] += 1
            return pack_frame(cmd | RESPONSE, seq, bytes([Status.OK.value]))
        if cmd in (Command.CODES.value, Command.MAC.value):
            x = np.array(unpack_words(payload, sb, bits=d.input_bits), dtype=np.int64)
            if cmd == Command.CODES.value:
                body = pack_words(self._ladder(x, self.thresholds), 1)
            else:
                spi = d.samples_per_inference
                if d.mac is None or len(x) % spi:
                    return pack_frame(cmd | RESPONSE, seq, bytes([Status.BAD_LENGTH.value]))
                # the ones-count of a ladder in any order is that of the sorted ladder
                loaded = dataclasses.replace(d, thresholds=tuple(sorted(self.thresholds)))
                out = self._ref(loaded, x.reshape(-1, spi))["outputs"].ravel()
                body = pack_words(out, output_bytes(d))
            self.counters["frames_ok"] += 1
            self.counters["samples"] += len(x)
            return pack_frame(cmd | RESPONSE, seq, bytes([Status.OK.value]) + body)
        if cmd == Command.ACQUIRE.value and self.adc is not None:
            n = int.from_bytes(payload[:2], "little") if len(payload) == 2 else 0
            if not 1 <= n <= MAX_ACQUIRE:
                self.counters["bad_lengths"] += 1
                return pack_frame(cmd | RESPONSE, seq, bytes([Status.BAD_LENGTH.value]))
            from adcforge.design import sensor_to_samples
            raw = np.asarray(self.adc(n), dtype=np.int64) & ((1 << ADC_BITS) - 1)
            x = sensor_to_samples(raw, ADC_BITS, d.input_bits)
            self.counters["frames_ok"] += 1
            self.counters["samples"] += n
            return pack_frame(cmd | RESPONSE, seq, bytes([Status.OK.value])
                              + pack_acquired(raw, self._ladder(x, self.thresholds)))
        self.counters["unknown_commands"] += 1
        return pack_frame(cmd | RESPONSE, seq, bytes([Status.UNKNOWN_COMMAND.value]))

    def read(self, timeout: float) -> bytes:
        data, self.out = bytes(self.out), bytearray()
        return data

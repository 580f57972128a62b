"""Co-simulation targets: a DUT, its harness, how to pack stimulus and unpack results, and the
golden model that the results must equal bit for bit.

A target is built once per parameter set into its own directory (keyed by a hash of the
generated Verilog) and can then run many batches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from amaranth.back import verilog

from adcforge.design import Design, product_frac_bits
from adcforge.golden import (ref_adc_pipeline, ref_comparator_ladder, ref_decode_lut,
                        ref_post_multiplier)

from .harness import HarnessSpec, harness_verilog


def to_signed(raw: np.ndarray, width: int) -> np.ndarray:
    """Interpret ``width``-bit two's-complement fields."""
    raw = np.asarray(raw, dtype=np.int64)
    return np.where(raw >= 1 << (width - 1), raw - (1 << width), raw)


@dataclass
class Target:
    """One design under test in its harness."""

    name: str
    spec: HarnessSpec
    dut_verilog: str
    out_ports: list[tuple[str, int]] = field(default_factory=list)

    @property
    def harness(self) -> str:
        return harness_verilog(self.spec)

    @property
    def key(self) -> str:
        h = hashlib.sha256((self.dut_verilog + self.harness).encode()).hexdigest()
        return f"{self.name}-{h[:12]}"


class PipelineTarget:
    """`AdcPipeline` of a design; output ``codes`` (code and decoded values) or MAC ``outputs``.

    Stimulus: samples, packed ``lanes`` to a stream word (lane 0 in the low bits: the earliest
    sample). With a MAC layer the ``mode`` static selects the output (the harness's ``out_sel``
    follows it). Words wider than 63 bits travel as Python integers.
    """

    def __init__(self, design: Design, *, runtime_thresholds: bool = False, mac_lanes=None,
                 lanes: int = 1, codes_path: str = "stall"):
        self.design = design
        self.runtime_thresholds = runtime_thresholds
        self.mac_lanes = mac_lanes
        self.lanes = lanes
        self.codes_path = codes_path
        self.code_width = design.bits + design.decode.width * design.channels
        if self.code_width > 64:
            raise ValueError(f"co-simulation unpacks codes and values in 64 bits; this design "
                             f"needs {self.code_width}")
        statics = {}
        out_ports = [("codes", self.code_width * lanes)]
        if design.mac is not None:
            statics["mode"] = 1
            out_width = design.mac.output_bits * (1 if lanes == 1 else design.mac.outputs)
            out_ports.append(("outputs", out_width))
        if runtime_thresholds:
            statics.update({"thr__addr": max(design.bits, 1), "thr__data": design.input_bits,
                            "thr__we": 1, "thr__commit": 1})
        suffix = (("_rt" if runtime_thresholds else "") + (f"_m{mac_lanes}" if mac_lanes else "")
                  + (f"_n{lanes}" if lanes > 1 else "")
                  + ("" if codes_path == "stall" else f"_{codes_path}"))
        self.name = f"{design.name}{suffix}"
        self.spec = HarnessSpec(dut_module="dut_top", in_port="i",
                                in_width=design.input_bits * lanes,
                                out_ports=out_ports, statics=statics)

    def target(self) -> Target:
        """Generate the Verilog (takes a second or two)."""
        from hdl.pipeline import AdcPipeline

        dut = AdcPipeline(self.design, runtime_thresholds=self.runtime_thresholds,
                          mac_lanes=self.mac_lanes, lanes=self.lanes,
                          codes_path=self.codes_path)
        text = verilog.convert(dut, name="dut_top", emit_src=False)
        return Target(name=self.name, spec=self.spec, dut_verilog=text)

    # Stimulus and results ----------------------------------------------------------------------

    def pack(self, samples) -> np.ndarray:
        """Pack samples (a multiple of ``lanes``, in stream order) into stream words."""
        samples = np.asarray(samples, dtype=np.int64).ravel()
        if self.lanes == 1:
            return samples
        if len(samples) % self.lanes:
            raise ValueError(f"{len(samples)} samples do not fill beats of {self.lanes} lanes")
        return join_fields(samples.reshape(-1, self.lanes), self.design.input_bits)

    def unpack_codes(self, raw) -> tuple[np.ndarray, np.ndarray]:
        """Codes and decoded values of each sample (``lanes`` per word) in stream order."""
        d = self.design
        raw = split_fields(raw, self.code_width, self.lanes).ravel().astype(np.uint64)
        codes = (raw & np.uint64((1 << d.bits) - 1)).astype(np.int64)
        w = d.decode.width
        values = np.stack([((raw >> np.uint64(d.bits + c * w)) & np.uint64((1 << w) - 1))
                           .astype(np.int64) for c in range(d.channels)], axis=-1)
        return codes, to_signed(values, w)

    def reference(self, samples):
        """Golden codes, values and (samples shaped per inference) MAC outputs."""
        return ref_adc_pipeline(self.design, samples)

    def reference_codes(self, samples):
        """Golden codes and decoded values of samples of any shape (no MAC)."""
        codes = ref_comparator_ladder(samples, self.design.thresholds)
        return {"codes": codes, "values": ref_decode_lut(codes, self.design.decode.table)}

    def unpack_outputs(self, raw: np.ndarray) -> np.ndarray:
        """MAC results in order (one per word, or with lanes one inference's per word)."""
        ob = self.design.mac.output_bits
        per = 1 if self.lanes == 1 else self.design.mac.outputs
        return to_signed(split_fields(raw, ob, per).ravel().astype(np.int64), ob)


def join_fields(rows: np.ndarray, width: int) -> np.ndarray:
    """Pack each row's ``width``-bit fields into one word (element 0 in the low bits); words of
    more than 63 bits are Python integers (an object array)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.shape[1] * width <= 63:
        shifts = np.arange(rows.shape[1], dtype=np.int64) * width
        return (rows << shifts).sum(axis=1)
    out = np.zeros(len(rows), dtype=object)
    for k in range(rows.shape[1]):
        out = out + (rows[:, k].astype(object) << (k * width))
    return out


def split_fields(raw, width: int, count: int) -> np.ndarray:
    """Split each word into ``count`` ``width``-bit fields (element 0 from the low bits):
    shape (words, count), uint64."""
    arr = np.asarray(raw)
    if arr.dtype != object:  # words of at most 64 bits: numpy shifts
        arr = arr.astype(np.uint64).reshape(-1, 1)
        if count == 1:
            return arr
        shifts = (np.arange(count, dtype=np.uint64) * np.uint64(width))[None, :]
        return (arr >> shifts) & np.uint64((1 << width) - 1)
    words = [int(v) for v in arr.ravel()]
    mask = (1 << width) - 1
    fields = [[(w >> (k * width)) & mask for k in range(count)] for w in words]
    return np.array(fields, dtype=np.uint64).reshape(-1, count)


class PostMultiplierTarget:
    """`POSTMultiplier`: stimulus is (activation, sign, exponent) triples."""

    def __init__(self, width: int, exponent_bits: int, guard_bits: int):
        self.width, self.exponent_bits, self.guard_bits = width, exponent_bits, guard_bits
        self.q = product_frac_bits(exponent_bits, guard_bits)
        self.out_width = width + self.q + 1
        self.name = f"post_w{width}_e{exponent_bits}_g{guard_bits}"
        self.spec = HarnessSpec(dut_module="dut_top", in_port="i",
                                in_width=width + 2 + exponent_bits,
                                out_ports=[("o", self.out_width)])

    def target(self) -> Target:
        from hdl.post import POSTMultiplier

        dut = POSTMultiplier(self.width, self.exponent_bits, self.guard_bits)
        text = verilog.convert(dut, name="dut_top", emit_src=False)
        return Target(name=self.name, spec=self.spec, dut_verilog=text)

    def pack(self, a, sign, exponent) -> np.ndarray:
        a = np.asarray(a, dtype=np.int64) & ((1 << self.width) - 1)
        s = np.asarray(sign, dtype=np.int64) & 3
        n = np.asarray(exponent, dtype=np.int64)
        return a | (s << self.width) | (n << (self.width + 2))

    def expected(self, a, sign, exponent) -> np.ndarray:
        return ref_post_multiplier(a, sign, exponent, self.width, self.q)

    def unpack(self, raw) -> np.ndarray:
        return to_signed(np.asarray(raw, dtype=np.int64), self.out_width)

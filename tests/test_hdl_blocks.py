"""Each hardware block in Amaranth's simulator against its golden model (fast, no Verilator)."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from adcforge.design import example_designs, load_design
from hdl.decode import DecodeLUT, ref_decode_lut
from hdl.ladder import ComparatorLadder, ref_comparator_ladder, ref_comparator_ladder_unsorted
from hdl.pipeline import AdcPipeline, ref_adc_pipeline
from hdl.post import POSTMac, POSTMultiplier, ref_post_mac, ref_post_multiplier


def stream_through(dut, inp, out, items, n_out, *, setup=None, valid_p=0.9, ready_p=0.7,
                   seed=1):
    """Drive ``items`` into stream ``inp`` with random idle cycles, take ``n_out`` beats from
    ``out`` with random back-pressure; return the payloads received."""
    got = []

    async def testbench(ctx):
        rng = random.Random(seed)
        if setup:
            setup(ctx)
        pending = list(items)
        valid = False
        for _ in range(50 * (len(items) + n_out) + 100):
            if len(got) == n_out:
                break
            if not valid and pending and rng.random() < valid_p:
                valid = True
            ctx.set(inp.valid, valid)
            if valid:
                ctx.set(inp.payload, pending[0])
            ctx.set(out.ready, rng.random() < ready_p)
            await ctx.delay(1e-9)
            took = valid and ctx.get(inp.ready)
            if ctx.get(out.valid) and ctx.get(out.ready):
                got.append(ctx.get(out.payload))
            await ctx.tick()
            if took:
                pending.pop(0)
                valid = False

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len(got) == n_out, "the stream stalled"
    return got


@pytest.mark.parametrize("kwargs", [
    pytest.param({}, id="constant thresholds"),
    pytest.param({"runtime": True}, id="runtime thresholds"),
    pytest.param({"levels_per_stage": 3}, id="3 levels per stage"),
    pytest.param({"chunk_bits": 3}, id="3-bit chunks"),
])
@pytest.mark.parametrize("name", ["adc1_in8", "adc4_in12"])
def test_comparator_ladder(name, kwargs):
    d = load_design(example_designs()[name])
    dut = ComparatorLadder(d.input_bits, d.thresholds, **kwargs)
    xs = list(range(0, 2**d.input_bits, 3 if d.input_bits > 8 else 1))
    got = stream_through(dut, dut.i, dut.o, xs, len(xs))
    assert got == ref_comparator_ladder(xs, d.thresholds).tolist()


@pytest.mark.parametrize("order", ["reversed", "shuffled with repeats"])
def test_runtime_ladder_counts_thresholds_in_any_order(order):
    """The ones-count encoder's claim: a runtime ladder loaded with thresholds in any order
    (repeats included) gives #{t : x >= t} for every input."""
    rng = random.Random(7)
    d = load_design(example_designs()["adc4_in12"])
    if order == "reversed":
        loaded = [t + 100 for t in d.thresholds][::-1]
    else:
        loaded = [rng.randrange(1, 2**12) for _ in range(10)]
        loaded += loaded[:5]
        rng.shuffle(loaded)
    assert loaded != sorted(loaded)
    dut = ComparatorLadder(d.input_bits, d.thresholds, runtime=True)
    xs = list(range(0, 2**12, 5)) + [0, 4095] + loaded

    got = []

    async def testbench(ctx):
        for k, t in enumerate(loaded):
            ctx.set(dut.thr.we, 1)
            ctx.set(dut.thr.addr, k)
            ctx.set(dut.thr.data, t)
            await ctx.tick()
        ctx.set(dut.thr.we, 0)
        ctx.set(dut.thr.commit, 1)
        await ctx.tick()
        ctx.set(dut.thr.commit, 0)
        ctx.set(dut.o.ready, 1)
        pending = list(xs)
        for _ in range(len(xs) + 50):
            ctx.set(dut.i.valid, bool(pending))
            if pending:
                ctx.set(dut.i.payload, pending[0])
            await ctx.delay(1e-9)
            took = pending and ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()
            if took:
                pending.pop(0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert got == ref_comparator_ladder_unsorted(xs, loaded).tolist()
    assert got != ref_comparator_ladder_unsorted(xs, d.thresholds).tolist()


def test_comparator_ladder_8bit_random_thresholds():
    rng = np.random.default_rng(5)
    t = sorted(rng.choice(np.arange(1, 2**10), size=255, replace=False).tolist())
    dut = ComparatorLadder(10, t)
    xs = rng.integers(0, 2**10, size=400).tolist() + [0, 1023] + t[:5]
    assert stream_through(dut, dut.i, dut.o, xs, len(xs)) == ref_comparator_ladder(xs, t).tolist()


@pytest.mark.parametrize("args,message", [
    ((17, [5]), r"input_bits must be an integer in \[1, 16\], not 17"),
    ((8, [1, 2]), r"thresholds: got 2; expected 2\*\*b - 1 entries for b in 1..8"),
    ((8, [1, 3, 2]), r"threshold 2: got 2; thresholds must be strictly increasing: previous is 3"),
    ((8, [256]), r"threshold 0: got 256; allowed range is \[1, 255\]"),
    ((4, [0]), r"threshold 0: got 0; allowed range is \[1, 15\]"),
    ((4, [1.5]), r"threshold 0: got 1.5; expected an integer in \[1, 15\]"),
    ((2, [1, 2, 3, 3, 3, 3, 3]), r"a 2-bit input holds at most 3 distinct thresholds"),
])
def test_comparator_ladder_refuses_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        ComparatorLadder(*args)


def test_decode_lut():
    d = load_design(example_designs()["adc8_in16_mac"])
    dut = DecodeLUT(d.decode.table, d.decode.width)
    codes = list(range(256)) + [255, 0, 7]
    got = stream_through(dut, dut.i, dut.o, codes, len(codes))
    assert [g.code for g in got] == codes
    assert [[int(v) for v in g["values"]] for g in got] == ref_decode_lut(codes, d.decode.table).tolist()


@pytest.mark.parametrize("width,ebits,guard", [(4, 1, 0), (6, 3, 2), (5, 4, 1)])
def test_post_multiplier_every_case(width, ebits, guard):
    dut = POSTMultiplier(width, ebits, guard)
    cases = [{"a": a, "sign": s, "exponent": n} for a in range(-(2 ** (width - 1)), 2 ** (width - 1))
             for s in (-1, 0, 1) for n in range(2**ebits) if not (s == 0 and n)]
    got = stream_through(dut, dut.i, dut.o, cases, len(cases), valid_p=1.0, ready_p=0.8)
    exp = ref_post_multiplier([c["a"] for c in cases], [c["sign"] for c in cases],
                              [c["exponent"] for c in cases], width, dut.q)
    assert got == exp.tolist()


@pytest.mark.parametrize("mac_lanes", [None, 1, 3])
def test_post_mac(mac_lanes):
    rng = np.random.default_rng(mac_lanes or 0)
    sign = rng.integers(-1, 2, size=(4, 6))
    exponent = np.where(sign == 0, 0, rng.integers(0, 8, size=(4, 6)))
    bias = np.array([-500, 0, 77, 1000])
    dut = POSTMac(sign=sign, exponent=exponent, bias=bias, width=8, exponent_bits=3,
                  guard_bits=2, acc_bits=20, output_bits=10, output_shift=2, mac_lanes=mac_lanes)
    acts = rng.integers(-128, 128, size=(7, 6))
    acts[0] = -128  # the worst case
    got = stream_through(dut, dut.i, dut.o, acts.ravel().tolist(), 7 * 4)
    exp = ref_post_mac(acts, sign, exponent, bias, 8, dut.q, 10, 2)
    assert got == exp.ravel().tolist()


def test_post_mac_refuses_bad_mac_lanes():
    with pytest.raises(ValueError, match=r"mac_lanes must be an integer in \[1, 2\], not 3"):
        POSTMac(sign=np.ones((2, 2)), exponent=np.zeros((2, 2)), bias=np.zeros(2), width=8,
                exponent_bits=3, guard_bits=2, acc_bits=20, output_bits=10, output_shift=0,
                mac_lanes=3)


def test_adc_pipeline_both_modes():
    d = load_design(example_designs()["adc8_in16_mac"])
    rng = np.random.default_rng(9)
    x = rng.integers(0, 2**16, size=(3, d.samples_per_inference))
    ref = ref_adc_pipeline(d, x)
    dut = AdcPipeline(d, mac_lanes=2)
    got = stream_through(dut, dut.i, dut.outputs, x.ravel().tolist(), ref["outputs"].size,
                         setup=lambda ctx: ctx.set(dut.mode, 1))
    assert got == ref["outputs"].ravel().tolist()
    dut = AdcPipeline(d)
    got = stream_through(dut, dut.i, dut.codes, x.ravel().tolist(), x.size)
    assert [g.code for g in got] == ref["codes"].ravel().tolist()


def test_skid_buffer_keeps_order_under_back_pressure():
    from hdl.pipe import SkidBuffer

    dut = SkidBuffer(12)
    items = list(range(0, 4000, 7))
    for ready_p in (0.2, 0.7, 1.0):
        assert stream_through(dut, dut.i, dut.o, items, len(items), ready_p=ready_p,
                              valid_p=1.0) == items


@pytest.mark.parametrize("missing", ["make", "c++", "ar", "perl"])
def test_a_missing_system_tool_is_one_line_naming_its_package(missing):
    import shutil

    from adcforge.errors import ToolchainError
    from hdl.toolchain import check_system_tools

    def which(tool):
        return None if tool == missing else shutil.which(tool) or f"/usr/bin/{tool}"

    with pytest.raises(ToolchainError, match=f"needs `{re_escape(missing)}`.*Debian/Ubuntu") as e:
        check_system_tools(which)
    assert "\n" not in str(e.value)


def re_escape(text):
    import re
    return re.escape(text)

"""Each hardware block in Amaranth's simulator against its golden model (fast, no Verilator)."""

import random
import re

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

    run_testbench(dut, testbench)
    assert len(got) == n_out, "the stream stalled"
    return got


async def full_rate_step(ctx, inp, out, pending, got):
    """One clock of a source that offers ``pending[0]`` whenever it has one and a sink whose
    ``ready`` the caller holds: appends what ``out`` delivers to ``got``, pops what ``inp``
    took."""
    ctx.set(inp.valid, bool(pending))
    if pending:
        ctx.set(inp.payload, pending[0])
    await ctx.delay(1e-9)
    took = pending and ctx.get(inp.ready)
    if ctx.get(out.valid):
        got.append(ctx.get(out.payload))
    await ctx.tick()
    if took:
        pending.pop(0)


def run_testbench(dut, testbench):
    """Run ``testbench`` on ``dut`` with a 1 MHz clock in Amaranth's simulator."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


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
            await full_rate_step(ctx, dut.i, dut.o, pending, got)

    run_testbench(dut, testbench)
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


def test_adc_pipeline_refuses_a_bad_codes_path():
    d = load_design(example_designs()["adc4_in12"])
    with pytest.raises(ValueError,
                       match=r"^codes_path must be one of stall, ready, fifo, not 'x'$"):
        AdcPipeline(d, codes_path="x")
    with pytest.raises(ValueError, match=r"^stall must be True, False or 'ready', not 1$"):
        ComparatorLadder(12, d.thresholds, stall=1)


def test_skid_buffer_keeps_order_under_back_pressure():
    from hdl.pipe import SkidBuffer

    dut = SkidBuffer(12)
    items = list(range(0, 4000, 7))
    for ready_p in (0.2, 0.7, 1.0):
        assert stream_through(dut, dut.i, dut.o, items, len(items), ready_p=ready_p,
                              valid_p=1.0) == items


@pytest.mark.parametrize("lanes", [1, 2, 3, 4])
def test_lane_gather_and_scatter_keep_stream_order(lanes):
    """LaneGather puts consecutive samples on lanes (element 0 the earliest), LaneScatter takes
    them off in the same order, under random idle cycles and back-pressure; chained, they are
    the identity."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring

    from hdl.pipe import LaneGather, LaneScatter

    items = list(range(5, 5 + 24 * lanes))
    for ready_p in (0.3, 1.0):
        g = LaneGather(12, lanes)
        beats = stream_through(g, g.i, g.o, items, len(items) // lanes, ready_p=ready_p)
        assert [int(b[k]) for b in beats for k in range(lanes)] == items
        sc = LaneScatter(12, lanes)
        beat_values = [items[k:k + lanes] for k in range(0, len(items), lanes)]
        assert stream_through(sc, sc.i, sc.o, beat_values, len(items),
                              ready_p=ready_p) == items

    class Both(wiring.Component):
        def __init__(self):
            self.g, self.s = LaneGather(12, lanes), LaneScatter(12, lanes)
            super().__init__({"i": wiring.In(self.g.i.signature.flip()),
                              "o": wiring.Out(self.s.o.signature)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.g, m.submodules.s = self.g, self.s
            wiring.connect(m, self.g.o, self.s.i)
            wiring.connect(m, wiring.flipped(self.i), self.g.i)
            wiring.connect(m, self.s.o, wiring.flipped(self.o))
            return m

    both = Both()
    assert stream_through(both, both.i, both.o, items, len(items), ready_p=0.6) == items
    with pytest.raises(ValueError, match=r"^lanes must be a positive integer, not 0$"):
        LaneGather(12, 0)


@pytest.mark.parametrize("missing", ["make", "c++", "ar", "perl"])
def test_a_missing_system_tool_is_one_line_naming_its_package(missing):
    import shutil

    from adcforge.errors import ToolchainError
    from hdl.toolchain import check_system_tools

    def which(tool):
        return None if tool == missing else shutil.which(tool) or f"/usr/bin/{tool}"

    with pytest.raises(ToolchainError, match=f"needs `{re.escape(missing)}`.*Debian/Ubuntu") as e:
        check_system_tools(which)
    assert "\n" not in str(e.value)


# -- sample lanes ----------------------------------------------------------------------------------

def _beats(xs, lanes):
    """Cut a sample stream into beats of ``lanes`` samples (a plain sample for one lane)."""
    xs = list(xs)
    return xs if lanes == 1 else [xs[k:k + lanes] for k in range(0, len(xs), lanes)]


def _flat(got, lanes, field=None):
    """The per-sample values of ``lanes``-wide beats, in stream order."""
    out = []
    for g in got:
        items = [g] if lanes == 1 else [g[k] for k in range(lanes)]
        out += [int(getattr(v, field) if field else v) for v in items]
    return out


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("runtime", [False, True], ids=["constant", "runtime"])
def test_comparator_ladder_lanes(lanes, runtime):
    d = load_design(example_designs()["adc4_in12"])
    dut = ComparatorLadder(d.input_bits, d.thresholds, runtime=runtime, lanes=lanes)
    xs = list(range(0, 2**12, 3))[:1364 // lanes * lanes]
    got = stream_through(dut, dut.i, dut.o, _beats(xs, lanes), len(xs) // lanes)
    assert _flat(got, lanes) == ref_comparator_ladder(xs, d.thresholds).tolist()


@pytest.mark.parametrize("rom_style", [None, "logic"], ids=["memory", "two-stage LUT ROM"])
@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_decode_lut_lanes(lanes, rom_style):
    d = load_design(example_designs()["adc8_in16_mac"])
    dut = DecodeLUT(d.decode.table, d.decode.width, lanes=lanes, rom_style=rom_style)
    codes = list(range(256)) + [255, 0, 7, 9]
    got = stream_through(dut, dut.i, dut.o, _beats(codes, lanes), len(codes) // lanes)
    items = got if lanes == 1 else [g[k] for g in got for k in range(lanes)]
    assert [int(g.code) for g in items] == codes
    assert [[int(v) for v in g.values] for g in items] == \
        ref_decode_lut(codes, d.decode.table).tolist()


@pytest.mark.parametrize("codes_path", ["stall", "ready", "fifo"])
@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("name", ["adc1_in8", "adc4_in12", "adc8_in16_mac"])
def test_adc_pipeline_lanes_codes(name, lanes, codes_path):
    """N samples per beat in stream order: codes and decoded values equal the golden model
    (random idle cycles and back-pressure; each codes path)."""
    d = load_design(example_designs()[name])
    rng = np.random.default_rng(lanes)
    xs = rng.integers(0, 2**d.input_bits, size=96 * lanes).tolist()
    xs[:len(d.thresholds)] = d.thresholds[:96 * lanes]  # every code boundary near the front
    ref = ref_adc_pipeline(d, np.array(xs).reshape(-1, d.samples_per_inference))
    ref = {k: ref[k].reshape(len(xs), -1).squeeze(-1) if k == "codes" else
           ref[k].reshape(len(xs), -1) for k in ("codes", "values")}
    dut = AdcPipeline(d, lanes=lanes, codes_path=codes_path)
    setup = (lambda ctx: ctx.set(dut.mode, 0)) if d.mac else None
    got = stream_through(dut, dut.i, dut.codes, _beats(xs, lanes), len(xs) // lanes,
                         setup=setup)
    items = got if lanes == 1 else [g[k] for g in got for k in range(lanes)]
    assert [int(g.code) for g in items] == ref["codes"].tolist()
    assert [[int(v) for v in g.values] for g in items] == ref["values"].tolist()


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("mac_lanes, rom_style", [
    pytest.param(None, None, id="mac lanes: outputs"),
    pytest.param(2, None, id="mac lanes: 2"),
    pytest.param(None, "logic", id="tables in LUTs (two-stage ROMs)"),
])
@pytest.mark.parametrize("codes_path", ["stall", "ready", "fifo"])
def test_adc_pipeline_lanes_mac(lanes, mac_lanes, rom_style, codes_path):
    """The POST layer takes N samples' activations per beat; with N > 1 one beat per inference
    carries all its results. Random idle cycles and back-pressure."""
    d = load_design(example_designs()["adc8_in16_mac"])
    rng = np.random.default_rng(10 + lanes)
    x = rng.integers(0, 2**16, size=(6, d.samples_per_inference))
    x[0] = d.thresholds[-1]  # the largest code everywhere
    ref = ref_adc_pipeline(d, x)
    dut = AdcPipeline(d, lanes=lanes, mac_lanes=mac_lanes, rom_style=rom_style,
                      codes_path=codes_path)
    n_out = ref["outputs"].size if lanes == 1 else len(x)
    got = stream_through(dut, dut.i, dut.outputs, _beats(x.ravel().tolist(), lanes), n_out,
                         setup=lambda ctx: ctx.set(dut.mode, 1))
    assert _flat(got, 1 if lanes == 1 else d.mac.outputs) == ref["outputs"].ravel().tolist()


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_post_layer_never_stalls_the_ladder(lanes):
    """In mode 1 the ladder and decoder advance every clock (their enables are constant) while
    the outputs are held back; the input is refused only when the credits for the FIFO after
    the MAC run out, and every result arrives, in order."""
    d = load_design(example_designs()["adc8_in16_mac"])
    dut = AdcPipeline(d, lanes=lanes)
    beats = 64
    x = np.random.default_rng(3).integers(0, 2**16, size=beats * lanes)
    ref = ref_adc_pipeline(d, x.reshape(-1, d.samples_per_inference))
    stats = {"refused": 0, "ladder_stalled": 0, "accepted": 0}
    got = []

    async def testbench(ctx):
        ctx.set(dut.mode, 1)
        pending = _beats(x.tolist(), lanes)
        for cycle in range(400):
            ctx.set(dut.i.valid, bool(pending))
            if pending:
                ctx.set(dut.i.payload, pending[0])
            ctx.set(dut.outputs.ready, not 20 <= cycle < 80)  # held back for 60 clocks
            await ctx.delay(1e-9)
            took = pending and ctx.get(dut.i.ready)
            stats["ladder_stalled"] += not ctx.get(dut.ladder.o.ready)
            stats["refused"] += bool(pending) and not took
            if ctx.get(dut.outputs.valid) and ctx.get(dut.outputs.ready):
                got.append(ctx.get(dut.outputs.payload))
            await ctx.tick()
            if took:
                pending.pop(0)
                stats["accepted"] += 1
                if stats["accepted"] == beats // 2:
                    stats["first_half_refusals"] = stats["refused"]

    run_testbench(dut, testbench)
    assert stats["ladder_stalled"] == 0
    assert stats["accepted"] == beats
    assert 0 < stats["refused"]  # the held-back outputs did throttle the input ...
    assert _flat(got, 1 if lanes == 1 else d.mac.outputs) == ref["outputs"].ravel().tolist()


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_adc_pipeline_full_rate_with_lanes(lanes):
    """With outputs always ready, a MAC design takes one beat of N samples every clock."""
    d = load_design(example_designs()["adc8_in16_mac"])
    dut = AdcPipeline(d, lanes=lanes)
    refused = []

    async def testbench(ctx):
        ctx.set(dut.mode, 1)
        ctx.set(dut.outputs.ready, 1)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, 0 if lanes == 1 else [0] * lanes)
        for _ in range(200):
            await ctx.delay(1e-9)
            refused.append(not ctx.get(dut.i.ready))
            await ctx.tick()

    run_testbench(dut, testbench)
    assert sum(refused) == 0, f"{lanes} lanes: refused {sum(refused)} of 200 beats"


@pytest.mark.parametrize("lanes", [1, 2])
def test_runtime_thresholds_switch_every_lane_at_one_beat(lanes):
    """One register bank: a commit in the middle of a stream switches all lanes of a beat."""
    d = load_design(example_designs()["adc4_in12"])
    new = [t + 37 for t in d.thresholds]
    dut = AdcPipeline(d, runtime_thresholds=True, lanes=lanes)
    xs = np.random.default_rng(4).integers(0, 2**12, size=200 * lanes).tolist()
    got = []

    async def testbench(ctx):
        ctx.set(dut.codes.ready, 1)
        pending = _beats(xs, lanes)
        for cycle in range(300):
            if 50 <= cycle < 50 + len(new):
                ctx.set(dut.thr.we, 1)
                ctx.set(dut.thr.addr, cycle - 50)
                ctx.set(dut.thr.data, new[cycle - 50])
            else:
                ctx.set(dut.thr.we, 0)
            ctx.set(dut.thr.commit, cycle == 50 + len(new))
            await full_rate_step(ctx, dut.i, dut.codes, pending, got)

    run_testbench(dut, testbench)
    codes = _flat(got, lanes, "code")
    old_ref = ref_comparator_ladder(xs, d.thresholds).reshape(-1, lanes)
    new_ref = ref_comparator_ladder(xs, new).reshape(-1, lanes)
    codes = np.array(codes).reshape(-1, lanes)
    is_old = (codes == old_ref).all(axis=1)
    is_new = (codes == new_ref).all(axis=1)
    assert (is_old | is_new).all(), "a beat mixes the old and the new thresholds"
    first_new_only = np.nonzero(is_new & ~is_old)[0][0]
    last_old_only = np.nonzero(is_old & ~is_new)[0][-1]
    assert last_old_only < first_new_only  # one switch, at a beat boundary


@pytest.mark.parametrize("lanes, message", [
    (0, r"lanes must be a positive integer, not 0"),
    (-2, r"lanes must be a positive integer, not -2"),
    (1.5, r"lanes must be a positive integer, not 1.5"),
    (True, r"lanes must be a positive integer, not True"),
    (3, r"lanes: 3 does not divide the POST layer's 8 samples per inference "
        r"\(mac.inputs 16 = 8 samples x 2 channels\); use a divisor of 8"),
])
def test_adc_pipeline_refuses_bad_lanes(lanes, message):
    d = load_design(example_designs()["adc8_in16_mac"])
    with pytest.raises(ValueError, match=message):
        AdcPipeline(d, lanes=lanes)


def test_verilog_cli_lanes_and_mac_lanes(tmp_path):
    """`adcforge verilog --lanes N` is the sample lanes, `--mac-lanes` the MAC's multiply lanes."""
    from click.testing import CliRunner

    from adcforge.cli import main_group

    r = CliRunner().invoke(main_group, ["verilog", "adc4_in12", "--lanes", "2", "-o",
                                        str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "2 samples per clock" in r.output and "ArrayLayout(unsigned(12), 2)" in r.output
    r = CliRunner().invoke(main_group, ["verilog", "adc8_in16_mac", "--lanes", "3", "-o",
                                        str(tmp_path)])
    assert r.exit_code != 0 and "does not divide" in str(r.exception)
    r = CliRunner().invoke(main_group, ["verilog", "--help"])
    assert "--mac-lanes" in r.output and "Sample lanes" in r.output


def test_verilog_cli_codes_path(tmp_path):
    """`adcforge verilog --codes-path fifo` writes the FIFO pipeline (its CreditFIFO module)
    and says so in the port summary; an unknown path is refused by name."""
    from click.testing import CliRunner

    from adcforge.cli import main_group

    r = CliRunner().invoke(main_group, ["verilog", "adc4_in12", "--codes-path", "fifo", "-o",
                                        str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "codes path fifo" in r.output and "credits" in r.output
    assert "codes_fifo" in (tmp_path / "adc4_in12.v").read_text()
    r = CliRunner().invoke(main_group, ["verilog", "adc4_in12", "--codes-path", "skid", "-o",
                                        str(tmp_path)])
    assert r.exit_code != 0 and "'skid' is not one of 'stall', 'ready', 'fifo'" in r.output


@pytest.mark.parametrize("codes_path", ["stall", "ready", "fifo"])
@pytest.mark.parametrize("runtime", [False, True], ids=["constant", "runtime thresholds"])
def test_codes_path_full_rate_and_held_back(runtime, codes_path):
    """One sample per clock flows while ``codes`` is ready, and a ``codes`` held back for 40
    clocks loses nothing; with the codes FIFO the ladder and the decoder have no enable, so the
    back-pressure ends at the FIFO's credits."""
    d = load_design(example_designs()["adc4_in12"])
    xs = list(range(0, 2**12, 16))
    dut = AdcPipeline(d, runtime_thresholds=runtime, codes_path=codes_path)
    got, refused = [], []

    async def tb(ctx):
        pending = list(xs)
        for cycle in range(len(xs) + 200):
            ctx.set(dut.codes.ready, not 100 <= cycle < 140)
            ctx.set(dut.i.valid, bool(pending))
            if pending:
                ctx.set(dut.i.payload, pending[0])
            await ctx.delay(1e-9)
            took = pending and ctx.get(dut.i.ready)
            if pending and cycle >= dut.codes_latency and cycle < 100:
                refused.append(not took)
            if ctx.get(dut.codes.valid) and ctx.get(dut.codes.ready):
                got.append(int(ctx.get(dut.codes.payload.code)))
            await ctx.tick()
            if took:
                pending.pop(0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got == ref_comparator_ladder(xs, d.thresholds).tolist()
    assert not any(refused)  # full rate while codes is ready
    stall = {"stall": True, "ready": "ready", "fifo": False}[codes_path]
    assert dut.ladder.stall == stall and dut.decode.stall == stall

"""A real sample source (issue 13, part 5): the Pmod AD1 front end against a behavioural AD7476A.

The front end alone in the Amaranth simulator (values round-trip, the data sheet's timing),
the board top answering ``ACQUIRE`` frames, the host runner against the Python board model,
the one-line refusals, and (slow: its own Verilator build) the simulated board end to end.
"""

import dataclasses
import json
import random

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from adcforge.cli import main
from adcforge.design import resolve_design, sensor_to_samples
from adcforge.errors import ToolchainError
from adcforge.golden import ref_adc_pipeline, ref_comparator_ladder
from boards.hil import Fault, HilError, HilRunner, run_hil
from boards.pmod_ad1 import AD7476A, AD7476AModel, PmodAD1, adc_to_sample, plan_timing
from boards.protocol import (MAX_ACQUIRE, STATUS_FIELDS, Command, FrameParser, Status,
                             pack_frame, pack_words, sample_bytes, unpack_acquired,
                             unpack_words)
from boards.pyboard import PyBoardTransport
from boards.top import BoardTop

CLK = 30e6  # the iCEBreaker's ADC clock
T = 1 / CLK
DESIGN = resolve_design("adc4_in12")


# -- the schedule ----------------------------------------------------------------------------


def test_timing_plan_follows_the_data_sheet():
    t = plan_timing(30e6, 500e3)
    # SCLK 15 MHz: 20 MHz would leave under t4 + pad delays between a bit and its read
    assert (t.half, t.period, t.min_period) == (1, 60, 35)
    assert t.sclk_hz == 15e6 and t.sample_rate == 500e3
    # 16 SCLKs (32 cycles), t8 + t_quiet = 86 ns (3 cycles); acquisition: 250 ns from cycle 27
    assert plan_timing(30e6, 30e6 / 35).period == 35
    assert plan_timing(50e6, 500e3).half == 2 and plan_timing(27e6, 500e3).half == 1
    with pytest.raises(ValueError, match=r"needs 35 \(at most 857,143 samples/s here\)"):
        plan_timing(30e6, 900e3)
    with pytest.raises(ValueError, match="converts at most 1,000,000 samples/s"):
        plan_timing(100e6, 2e6)
    with pytest.raises(ValueError, match="SCLK of 25 MHz: the AD7476A takes at most 20 MHz"):
        plan_timing(30e6, sclk_hz=25e6)


@pytest.mark.parametrize("input_bits", [1, 8, 12, 16])
def test_a_12_bit_sample_keeps_its_most_significant_bits(input_bits):
    """The gateware's mapping is ``sensor_to_samples``'s rule, for every 12-bit value."""
    raw, word = Signal(12), Signal(input_bits)
    m = Module()
    m.d.comb += word.eq(adc_to_sample(raw, input_bits))
    got = []

    async def bench(ctx):
        for v in range(4096):
            ctx.set(raw, v)
            got.append(ctx.get(word))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert got == list(sensor_to_samples(np.arange(4096), 12, input_bits))


# -- the front end against the converter model -----------------------------------------------


def run_front_end(dut, values, *, take=None, cycles=None, en=None):
    """Convert ``values`` through ``dut`` and the AD7476A model (``en`` high, ``o`` always
    ready); return (samples read, model). ``en``: a function of the cycle, if given."""
    model = AD7476AModel(list(values) + [0] * 4)
    got = []
    want = take if take is not None else len(values)

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.en, 1)
        n = 0
        while len(got) < want and (cycles is None or n < cycles):
            if en is not None:
                ctx.set(dut.en, en(n))
            ctx.set(dut.sdata, model.line((n + 1) * T))
            await ctx.tick()
            n += 1
            model.observe(n * T, ctx.get(dut.cs_n), ctx.get(dut.sclk))
            if ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))

    sim = Simulator(dut)
    sim.add_clock(T)
    sim.add_testbench(bench)
    sim.run()
    return got, model


def edge_values():
    """0, full scale, every single bit and its complement, then random values."""
    singles = [1 << i for i in range(12)]
    rng = random.Random(4)
    return ([0, 4095, 0xAAA, 0x555] + singles + [4095 ^ v for v in singles]
            + [rng.randrange(4096) for _ in range(48)])


def assert_datasheet_timing(model, period):
    assert model.violations == []
    assert model.min_sclk_period >= 1 / AD7476A.sclk_max_hz       # SCLK at most 20 MHz
    assert model.min_mark >= AD7476A.t_mark                       # 40/60 mark/space
    assert model.min_quiet >= AD7476A.t_quiet                     # bus relinquish → next CS
    assert model.min_cs_high >= AD7476A.t1
    assert model.min_acq >= AD7476A.t_acq
    gaps = set(np.round(np.diff(model.cs_falls) / T).astype(int))
    assert gaps == {period}                                       # evenly spaced samples


@pytest.mark.parametrize("rate", [500e3, 30e6 / 35])  # the default, and the fastest at 30 MHz
def test_front_end_reads_what_the_converter_sends(rate):
    dut = PmodAD1(clk_hz=CLK, sample_rate=rate)
    values = edge_values()
    got, model = run_front_end(dut, values)
    assert got == values and model.converted[:len(values)] == values
    assert_datasheet_timing(model, dut.timing.period)


@pytest.mark.slow
def test_every_12_bit_value_round_trips():
    dut = PmodAD1(clk_hz=CLK, sample_rate=30e6 / 35)
    values = list(range(4096))
    random.Random(3).shuffle(values)
    got, model = run_front_end(dut, values)
    assert got == values
    assert_datasheet_timing(model, dut.timing.period)


def test_the_model_catches_a_front_end_that_breaks_the_timing():
    # a conversion every 30 cycles at 30 MHz: under t_quiet and t_acq, over 1 M samples/s
    dut = PmodAD1(clk_hz=CLK)
    dut.timing = dataclasses.replace(dut.timing, period=30)
    _, model = run_front_end(dut, edge_values()[:8])
    text = " ".join(model.violations)
    assert "< t_quiet" in text and "< t_acq" in text
    # SCLK at 30 MHz (one cycle a half period at 60 MHz): too fast, bits read before t4, and
    # a conversion every 40 cycles: over 1 M samples/s
    fast = PmodAD1(clk_hz=60e6)
    fast.timing = dataclasses.replace(fast.timing, half=1, period=40)
    values = edge_values()[:16]
    model = AD7476AModel(values + [0] * 4)
    got = []

    async def bench(ctx):
        ctx.set(fast.o.ready, 1)
        ctx.set(fast.en, 1)
        for n in range(40 * 17):
            ctx.set(fast.sdata, model.line((n + 1) / 60e6))
            await ctx.tick()
            model.observe((n + 1) / 60e6, ctx.get(fast.cs_n), ctx.get(fast.sclk))
            if ctx.get(fast.o.valid):
                got.append(ctx.get(fast.o.payload))

    sim = Simulator(fast)
    sim.add_clock(1 / 60e6)
    sim.add_testbench(bench)
    sim.run()
    text = " ".join(model.violations)
    assert "over 20 MHz" in text and "apart" in text
    assert got[:len(values)] != values  # garbage read inside the data access time


def test_front_end_converts_only_while_enabled():
    dut = PmodAD1(clk_hz=CLK)
    # enabled for cycles 100..99+3*60: three conversions, then nothing
    got, model = run_front_end(dut, list(range(10, 20)), take=10, cycles=700,
                               en=lambda n: 100 <= n < 100 + 3 * 60)
    assert got == [10, 11, 12] and len(model.cs_falls) == 3
    assert model.cs_falls[0] == pytest.approx(101 * T)  # at the first edge once enabled
    assert model.violations == []


def test_front_end_refuses_a_rate_the_converter_cannot_take():
    with pytest.raises(ValueError, match="at most 857,143 samples/s"):
        PmodAD1(clk_hz=CLK, sample_rate=1e6)


# -- the board top: ACQUIRE frames -----------------------------------------------------------


def run_board(design, request, values, *, cycles, adc=True, adc_domain=False):
    """A BoardTop (with the Pmod AD1 source unless ``adc`` is False; with ``adc_domain``, the
    pipeline in its own domain at twice the clock) in the Amaranth simulator: the request over
    its UART, the model on its converter pins; return the response frames and the model."""
    from test_boards_gateware import DIV, recv_bits, send_bits
    top = BoardTop(design, divisor=DIV, timeout=1 << 16, led_cycles=8,
                   adc_source=PmodAD1(clk_hz=CLK) if adc else None,
                   adc_domain="adc" if adc_domain else "sync")
    model = AD7476AModel(list(values) + [0] * 1000)
    out = bytearray()

    async def host(ctx):
        ctx.set(top.rx, 1)
        await ctx.tick().repeat(8)
        await send_bits(ctx, top.rx, request)

    async def listener(ctx):
        await recv_bits(ctx, top.tx, out)

    async def converter(ctx):
        n = 0
        while True:
            ctx.set(top.adc_sdata, model.line((n + 1) * T))
            await ctx.tick()
            n += 1
            model.observe(n * T, ctx.get(top.adc_cs_n), ctx.get(top.adc_sclk))

    sim = Simulator(top)
    sim.add_clock(T)
    if adc_domain:
        sim.add_clock(T / 2, domain="adc", phase=T / 5)
    sim.add_testbench(host)
    sim.add_testbench(listener, background=True)
    if adc:
        sim.add_testbench(converter, background=True)
    sim.run_until(T * cycles)
    return FrameParser().feed(bytes(out)), model


def acquire(seq, n):
    return pack_frame(Command.ACQUIRE.value, seq, pack_words([n], 2))


@pytest.mark.parametrize("name", ["adc4_in12", "adc1_in8"])  # 12-bit and 8-bit input words
def test_board_answers_acquire_with_raw_samples_and_their_codes(name):
    d = resolve_design(name)
    values = [0, 4095, 1, 2048, 1234, 4000, 17, 3]
    req = (acquire(1, 5)
           + pack_frame(Command.CODES.value, 2, pack_words([0, 1000, 255], sample_bytes(d)))
           + acquire(3, 0) + acquire(4, MAX_ACQUIRE + 1)
           + pack_frame(Command.ACQUIRE.value, 5, b"\x01")        # LEN 1
           + acquire(6, 3) + pack_frame(Command.STATUS.value, 7))
    frames, model = run_board(d, req, values, cycles=len(req) * 40 + 8000)
    assert [(f.cmd, f.seq, f.status) for f in frames] == [
        (0x85, 1, Status.OK.value), (0x83, 2, Status.OK.value),
        (0x85, 3, Status.BAD_LENGTH.value), (0x85, 4, Status.BAD_LENGTH.value),
        (0x85, 5, Status.BAD_LENGTH.value), (0x85, 6, Status.OK.value),
        (0x81, 7, Status.OK.value)]
    raw, codes = unpack_acquired(frames[0].payload[1:])
    assert list(raw) == values[:5]   # the converter's samples, in order, none skipped
    x = sensor_to_samples(raw, 12, d.input_bits)
    assert list(codes) == list(ref_comparator_ladder(x, d.thresholds))
    assert list(frames[1].payload[1:]) == list(ref_comparator_ladder(np.array([0, 1000, 255]),
                                                                     d.thresholds))
    raw, codes = unpack_acquired(frames[5].payload[1:])
    assert list(raw) == values[5:8]  # a bad request converts nothing
    assert model.converted[:8] == values and len(model.converted) == 8
    words = dict(zip(STATUS_FIELDS, unpack_words(frames[6].payload[1:], 4)))
    assert (words["frames_ok"], words["bad_lengths"], words["samples"]) == (4, 3, 11)
    assert model.violations == []


@pytest.mark.parametrize("adc_domain", [False, True], ids=["one domain", "adc domain 2x"])
def test_board_with_a_source_still_runs_mac_frames(tiny_mac_design, adc_domain):
    """The source sits in the receiver's domain; the pipeline in the same one or its own."""
    d = tiny_mac_design
    samples = np.random.default_rng(9).integers(0, 256, 8)
    req = (pack_frame(Command.MAC.value, 1, pack_words(samples, 1)) + acquire(2, 4)
           + pack_frame(Command.MAC.value, 3, pack_words(samples[::-1], 1)))
    values = [100, 2000, 4095, 3000]
    frames, _ = run_board(d, req, values, cycles=len(req) * 40 + 6000, adc_domain=adc_domain)
    assert [(f.seq, f.status) for f in frames] == [(1, 0), (2, 0), (3, 0)]
    want = ref_adc_pipeline(d, samples.reshape(-1, 2))["outputs"].ravel()
    assert unpack_words(frames[0].payload[1:], 2, signed=True) == list(want)
    raw, codes = unpack_acquired(frames[1].payload[1:])
    assert list(raw) == values
    assert list(codes) == list(ref_comparator_ladder(np.array(values) >> 4, d.thresholds))
    want = ref_adc_pipeline(d, samples[::-1].reshape(-1, 2))["outputs"].ravel()
    assert unpack_words(frames[2].payload[1:], 2, signed=True) == list(want)


def test_a_board_without_a_source_answers_acquire_as_unknown():
    frames, _ = run_board(DESIGN, acquire(1, 4) + acquire(2, 1), [], cycles=1500, adc=False)
    assert [(f.seq, f.status) for f in frames] == [(1, Status.UNKNOWN_COMMAND.value),
                                                  (2, Status.UNKNOWN_COMMAND.value)]
    assert not hasattr(BoardTop(DESIGN, divisor=4), "adc_cs_n")  # no Pmod pins either


# -- the host runner -------------------------------------------------------------------------


def counter():
    state = {"k": 0}

    def adc(n):
        out = (np.arange(n) + state["k"]) % 4096
        state["k"] += n
        return out
    return adc


@pytest.mark.parametrize("name", ["adc4_in12", "adc1_in8", "adc8_in16_mac"])
def test_runner_checks_the_boards_own_samples(name):
    d = resolve_design(name)
    r = HilRunner(PyBoardTransport(d, adc=counter()), d, source="pmod-ad1").run(4096 + 100)
    assert (r["checked"], r["mismatches"], r["failed"], r["not_run"]) == (4196, 0, 0, 0)
    assert r["mode"] == "codes" and r["source"] == "pmod-ad1"   # a MAC design too: codes
    assert r["raw_distinct"] == 4096 and r["raw_first"][:3] == [0, 1, 2]
    assert sum(r["code_counts"]) == 4196
    assert r["frames_sent"] == 2 + -(-4196 // MAX_ACQUIRE)        # STATUS, LOAD, ACQUIREs


def test_runner_counts_a_wrong_code_and_survives_a_lost_answer():
    class Wrong(PyBoardTransport):
        def _answer(self, cmd, seq, payload):
            answer = super()._answer(cmd, seq, payload)
            if cmd != Command.ACQUIRE.value:
                return answer
            (frame,) = FrameParser().feed(answer)
            body = bytearray(frame.payload)
            body[3] ^= 0x01  # the first record's code
            return pack_frame(frame.cmd, frame.seq, bytes(body))

    r = HilRunner(Wrong(DESIGN, adc=counter()), DESIGN, source="pmod-ad1").run(600)
    assert r["mismatches"] == 3 and r["first_mismatches"][0]["index"] == 0
    from boards.hil import FaultyTransport
    faulty = FaultyTransport(PyBoardTransport(DESIGN, adc=counter()), [Fault("rx_corrupt", 300)])
    r = HilRunner(faulty, DESIGN, source="pmod-ad1").run(1000)
    assert (r["checked"], r["mismatches"], r["failed"]) == (1000, 0, 0) and r["resends"] >= 1


def test_runner_names_a_bitstream_without_the_source():
    with pytest.raises(HilError, match=r"^the board's bitstream has no sample source .*"
                                       r"build BOARD adc4_in12 --source pmod-ad1` then "
                                       r"`adcforge board flash`$"):
        HilRunner(PyBoardTransport(DESIGN), DESIGN, source="pmod-ad1").run(10)
    with pytest.raises(HilError, match="use --mode codes"):
        HilRunner(PyBoardTransport(DESIGN), resolve_design("adc8_in16_mac"), mode="mac",
                  source="pmod-ad1")


# -- boards: the Pmod port, and the refusals -------------------------------------------------


def test_icebreaker_pins_and_boards_without_a_pmod_port():
    from boards.platforms import BOARDS, BoardBuild, check_source, pmod_ad1_pins
    ib = BOARDS["icebreaker"]
    assert ib.pmod == (0, "PMOD1A") and pmod_ad1_pins(ib) == {"cs": "4", "d0": "2", "sclk": "45"}
    plan = ib.platform().prepare(BoardBuild(ib, resolve_design("adc1_in8"), source="pmod-ad1",
                                            runtime_thresholds=True), name="top")
    pcf = plan.files["top.pcf"]
    for pin, fpga in (("cs", 4), ("sclk", 45), ("d0", 2)):
        assert f"set_io pmod_ad1_0__{pin}__io {fpga}" in pcf
    for name in ("ulx3s", "tangnano9k"):
        with pytest.raises(ToolchainError, match=rf"^{name} \(.*\) has no Pmod port for --source "
                                                 r"pmod-ad1: .* boards with one: icebreaker$"):
            check_source(name, "pmod-ad1")


def one_error_line(capsys, argv, *, started=False):
    """Run the command line; it must exit 1 with one error line (and, unless it ``started``
    a run, whose progress goes to stderr too, nothing else on stderr)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    errors = [ln for ln in err if ln.startswith("error: ")]
    assert len(errors) == 1 and (started or len(err) == 1), err
    return errors[0]


def test_a_source_the_board_cannot_take_is_one_line_and_nothing_lost(capsys, tmp_path):
    out = tmp_path / "never"
    line = one_error_line(capsys, ["board", "build", "ulx3s", "adc4_in12", "--source",
                                   "pmod-ad1", "-o", str(out)])
    assert line.startswith("error: ulx3s (Radiona ULX3S") and "no Pmod port" in line
    assert not out.exists()  # refused before the build
    line = one_error_line(capsys, ["hil", "--board", "tangnano9k", "--port", "/dev/nonexistent",
                                   "adc4_in12", "--source", "pmod-ad1"])
    assert line.startswith("error: tangnano9k (Sipeed Tang Nano 9K") and "no Pmod port" in line
    line = one_error_line(capsys, ["hil", "--sim", "--sim-as", "ulx3s", "adc4_in12",
                                   "--source", "pmod-ad1"])
    assert "ulx3s" in line and "no Pmod port" in line
    assert "--photons sets the simulated sensor" in one_error_line(
        capsys, ["hil", "--sim", "adc4_in12", "--source", "pmod-ad1", "--photons", "10"])
    assert "go with --source pmod-ad1" in one_error_line(
        capsys, ["hil", "--sim", "adc4_in12", "--sample-rate", "100000"])
    assert "at most 529,412 samples/s" in one_error_line(
        capsys, ["board", "build", "icebreaker", "adc4_in12", "--source", "pmod-ad1",
                 "--sample-rate", "1000000", "-o", str(out)])
    assert not out.exists()


# -- the simulated board (Verilator): a converter model on the board top's pins ---------------


@pytest.mark.slow
@pytest.mark.xdist_group("simboard")
def test_simulated_board_digitises_every_12_bit_value_in_order():
    from boards.hil import SerialTransport
    from boards.simboard import PmodSim, SimulatedBoard
    n = 4096 + 300
    with SimulatedBoard(DESIGN, adc=PmodSim(signal="count")) as board:
        t = SerialTransport(board.port)
        t.byte_rate = None
        runner = HilRunner(t, DESIGN, source="pmod-ad1", response_timeout=1.0)
        r = runner.run(n)
        t.close()
    stats = board.last_stats
    raw = np.concatenate([runner.raw_by_frame[k] for k in sorted(runner.raw_by_frame)])
    assert list(raw) == [k % 4096 for k in range(n)]  # every value, in order, none lost
    assert (r["checked"], r["mismatches"], r["failed"], r["resends"]) == (n, 0, 0, 0)
    assert r["codes_seen"] == r["codes_total"] == 16
    assert stats["adc_conversions"] == n and stats["adc_violations"] == 0


@pytest.mark.slow
@pytest.mark.xdist_group("simboard")
def test_hil_cli_pmod_source_on_the_simulated_board(tmp_path, capsys):
    out = tmp_path / "hil.json"
    main(["hil", "--sim", "adc4_in12", "--source", "pmod-ad1", "--samples", "2000",
          "--json", str(out)])
    r = json.loads(out.read_text())
    assert (r["checked"], r["mismatches"], r["failed"]) == (2000, 0, 0)
    assert r["codes_seen"] == 16 and sum(r["code_counts"]) == 2000
    assert r["sim"]["adc_violations"] == 0 and r["sim"]["adc_conversions"] == 2000
    text = capsys.readouterr().out
    assert "checked 2000  mismatches 0" in text and "0 timing violations" in text


@pytest.mark.slow
@pytest.mark.xdist_group("simboard")
def test_simulated_board_pmod_source_survives_link_faults():
    # a request byte dropped (the board answers BAD_CRC or TIMEOUT, converts nothing) and an
    # answer corrupted (its samples were converted, then lost: the resend converts new ones)
    from boards.protocol import OVERHEAD_BYTES
    first = OVERHEAD_BYTES + OVERHEAD_BYTES + 15 * 2   # STATUS, LOAD_THRESHOLDS
    faults = [Fault("drop", first + 12), Fault("rx_corrupt", 2000)]
    from boards.simboard import PmodSim
    r = run_hil(DESIGN, 1500, source="pmod-ad1", adc=PmodSim(signal="count"), faults=faults)
    assert (r["checked"], r["mismatches"], r["failed"]) == (1500, 0, 0)
    assert r["resends"] >= 2 and len(r["faults_injected"]) == 2
    assert r["sim"]["adc_violations"] == 0
    assert r["sim"]["adc_conversions"] > 1500  # the lost answer's samples were converted


@pytest.mark.slow
@pytest.mark.xdist_group("simboard")
@pytest.mark.parametrize("with_source", [True, False])
def test_hil_board_path_uses_a_bitstream_with_the_source(with_source, capsys):
    """``hil --board icebreaker --port P --source pmod-ad1`` against the simulated board's pty
    (the real board's code path): a top with the source is checked end to end; one without
    it (a UART bitstream) is named in one line."""
    from boards.simboard import PmodSim, SimulatedBoard
    argv = ["hil", "--board", "icebreaker", "--port", None, "adc4_in12", "--source", "pmod-ad1",
            "--samples", "600"]
    with SimulatedBoard(DESIGN, adc=PmodSim() if with_source else None) as board:
        argv[4] = board.port
        if with_source:
            main(argv)
            out = capsys.readouterr().out
            assert "checked 600  mismatches 0" in out and "failed 0" in out
        else:
            line = one_error_line(capsys, argv, started=True)
            assert line.startswith("error: the board's bitstream has no sample source "
                                   "(ACQUIRE answered UNKNOWN_COMMAND)")
            assert "`adcforge board build icebreaker adc4_in12 --source pmod-ad1`" in line

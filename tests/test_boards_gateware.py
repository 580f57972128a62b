"""Amaranth-simulator tests of the UART and of the board top's frame handling."""

import random

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from adcforge.design import resolve_design
from boards.protocol import (STATUS_FIELDS, Command, FrameParser, Status, crc16, design_id,
                             pack_frame, pack_words, unpack_words)
from boards.top import BoardTop
from boards.uart import UARTRx, UARTTx
from adcforge.golden import ref_adc_pipeline, ref_comparator_ladder

DIV = 4  # clock cycles per bit: the fastest the UART allows, to keep simulations short


async def send_bits(ctx, pin, data: bytes, div=DIV, stop_bit=1, gap=0):
    for byte in data:
        for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [stop_bit]:
            ctx.set(pin, bit)
            await ctx.tick().repeat(div)
        ctx.set(pin, 1)
        if gap:
            await ctx.tick().repeat(gap)


async def recv_bits(ctx, pin, out: bytearray, div=DIV):
    """Decode 8N1 from ``pin`` forever, appending bytes to ``out``."""
    while True:
        while ctx.get(pin):
            await ctx.tick()
        await ctx.tick().repeat(div // 2)
        byte = 0
        for i in range(8):
            await ctx.tick().repeat(div)
            byte |= ctx.get(pin) << i
        await ctx.tick().repeat(div)
        out.append(byte)


def test_crc16_gateware_matches_host():
    """The gateware's CRC (``CRC16.create()``) over random frames equals the host's."""
    from boards.protocol import CRC16
    rng = random.Random(1)
    cases = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(20)]
    cases += [b"123456789", b"\x00", b"\xff" * 7]
    crc = CRC16.create()
    got = []

    async def bench(ctx):
        for data in cases:
            ctx.set(crc.start, 1)
            await ctx.tick()
            ctx.set(crc.start, 0)
            for b in data:
                ctx.set(crc.data, b)
                ctx.set(crc.valid, 1)
                await ctx.tick()
            ctx.set(crc.valid, 0)
            got.append(ctx.get(crc.crc))

    sim = Simulator(crc)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == [crc16(data) for data in cases]
    assert got[-3] == 0x29B1


def test_uart_loopback():
    m = Module()
    m.submodules.tx = tx = UARTTx(DIV)
    m.submodules.rx = rx = UARTRx(DIV)
    m.d.comb += rx.rx.eq(tx.tx)
    data = bytes(random.Random(2).randrange(256) for _ in range(40)) + b"\x00\xff\x55"
    got = bytearray()

    async def writer(ctx):
        for b in data:
            ctx.set(tx.i.payload, b)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def reader(ctx):
        ctx.set(rx.o.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(rx.o.valid, rx.o.payload):
            if valid:
                got.append(payload)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(writer)
    sim.add_process(reader)
    sim.run_until(1e-6 * (len(data) * 10 * DIV + 200))
    assert bytes(got) == data


def test_uart_rx_framing_error_drops_byte():
    rx = UARTRx(DIV)
    seen, errors = bytearray(), []

    async def bench(ctx):
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(10)
        await send_bits(ctx, rx.rx, b"\x41", stop_bit=0)  # broken stop bit
        await ctx.tick().repeat(3 * DIV)                   # line back to idle
        await send_bits(ctx, rx.rx, b"\x42")
        await ctx.tick().repeat(4 * DIV)

    async def monitor(ctx):
        ctx.set(rx.o.ready, 1)
        async for _, _, valid, payload, fe in ctx.tick().sample(rx.o.valid, rx.o.payload,
                                                             rx.framing_error):
            if valid:
                seen.append(payload)
            if fe:
                errors.append(1)

    sim = Simulator(rx)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.add_process(monitor)
    sim.run_until(1e-6 * 40 * DIV)
    assert bytes(seen) == b"\x42" and len(errors) == 1


def test_uart_divisor_is_checked():
    with pytest.raises(ValueError, match="divisor must be an integer of at least 4"):
        UARTRx(3)


def run_board(design, request, *, expect_frames: int, cycles: int, gap: int = 0,
              timeout: int = 1 << 16, adc_ratio: int | None = None, pause: int = 0,
              **top_kwargs):
    """Send ``request`` (bytes, or a list of bytes sent ``pause`` cycles apart) to a simulated
    BoardTop; return the response frames it sent.

    ``adc_ratio``: the pipeline in its own ``adc`` domain, clocked that many times faster."""
    if adc_ratio is not None:
        top_kwargs["adc_domain"] = "adc"
    top = BoardTop(design, divisor=DIV, timeout=timeout, led_cycles=8, **top_kwargs)
    out = bytearray()

    async def host(ctx):
        ctx.set(top.rx, 1)
        await ctx.tick().repeat(8)
        for k, part in enumerate(request if isinstance(request, list) else [request]):
            if k:
                await ctx.tick().repeat(pause)
            await send_bits(ctx, top.rx, part, gap=gap)

    async def listener(ctx):
        await recv_bits(ctx, top.tx, out)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    if adc_ratio is not None:
        sim.add_clock(1e-6 / adc_ratio, domain="adc", phase=0.3e-6 / adc_ratio)
    sim.add_testbench(host)
    sim.add_testbench(listener, background=True)
    sim.run_until(1e-6 * cycles)
    parser = FrameParser()
    frames = parser.feed(bytes(out))
    assert len(frames) == expect_frames, (frames, out.hex())
    return frames


DESIGN = resolve_design("adc4_in12")


#: the pipeline in the top's one domain, or in its own ``adc`` domain at twice the clock
ADC_RATIOS = pytest.mark.parametrize("adc_ratio", [None, 2], ids=["one domain", "adc domain 2x"])


def codes_request(seq, samples):
    return pack_frame(Command.CODES.value, seq, pack_words(samples, 2))


@ADC_RATIOS
def test_board_codes_match_golden_and_sequence_echoed(adc_ratio):
    rng = np.random.default_rng(3)
    samples = rng.integers(0, 4096, 12)
    req = codes_request(7, samples) + codes_request(8, samples[::-1])
    (a, b) = run_board(DESIGN, req, expect_frames=2, cycles=len(req) * 10 * DIV + 1500,
                       adc_ratio=adc_ratio)
    want = ref_adc_pipeline(DESIGN, samples)["codes"]
    assert (a.cmd, a.seq, a.status) == (Command.CODES.value | 0x80, 7, Status.OK.value)
    assert list(a.payload[1:]) == list(want)
    assert (b.seq, list(b.payload[1:])) == (8, list(want[::-1]))


@ADC_RATIOS
def test_board_bad_crc_unknown_command_and_recovery(adc_ratio):
    good = codes_request(1, [0, 4095])
    bad = bytearray(codes_request(2, [5, 6]))
    bad[-1] ^= 0xFF
    unknown = pack_frame(0x55, 3, b"xyz")
    req = b"\x00\xa5\x13garbage" + bytes(bad) + unknown + good
    frames = run_board(DESIGN, req, expect_frames=3, cycles=len(req) * 10 * DIV + 1500,
                       adc_ratio=adc_ratio)
    assert [(f.seq, f.status) for f in frames] == [
        (2, Status.BAD_CRC.value), (3, Status.UNKNOWN_COMMAND.value), (1, Status.OK.value)]
    assert list(frames[2].payload[1:]) == [0, 15]


def test_board_bad_length_and_timeout():
    odd = pack_frame(Command.CODES.value, 4, b"\x01\x02\x03")  # 1.5 samples
    cut = codes_request(5, [100, 200, 300])[:-4]               # stops in the middle
    frames = run_board(DESIGN, odd + cut, expect_frames=2, timeout=400,
                       cycles=(len(odd) + len(cut)) * 10 * DIV + 2000)
    assert [(f.seq, f.status) for f in frames] == [(4, Status.BAD_LENGTH.value),
                                                   (5, Status.TIMEOUT.value)]


@ADC_RATIOS
def test_board_load_thresholds_then_status(adc_ratio):
    new = [i * 256 + 1 for i in range(1, 16)]
    samples = [0, 256, 257, 300, 4095, 2000]
    req = (pack_frame(Command.LOAD_THRESHOLDS.value, 1, pack_words(new, 2))
           + codes_request(2, samples) + pack_frame(Command.STATUS.value, 3))
    load, codes, status = run_board(DESIGN, req, expect_frames=3,
                                    cycles=len(req) * 10 * DIV + 2500, adc_ratio=adc_ratio)
    assert load.status == Status.OK.value
    assert list(codes.payload[1:]) == [sum(x >= t for t in new) for x in samples]
    words = dict(zip(STATUS_FIELDS, unpack_words(status.payload[1:], 4)))
    assert words["frames_ok"] == 3 and words["samples"] == len(samples)
    assert words["design_id"] == design_id(DESIGN)


@ADC_RATIOS
def test_board_mac_frames_and_a_cut_inference(tiny_mac_design, adc_ratio):
    d = tiny_mac_design
    rng = np.random.default_rng(9)
    samples = rng.integers(0, 256, 8)  # 4 inferences
    req = (pack_frame(Command.MAC.value, 1, pack_words(samples, 1))
           + pack_frame(Command.MAC.value, 2, pack_words(samples[:3], 1))  # 1.5 inferences
           + pack_frame(Command.CODES.value, 3, pack_words(samples, 1))
           + pack_frame(Command.MAC.value, 4, pack_words(samples[::-1], 1)))
    a, b, c, e = run_board(d, req, expect_frames=4, cycles=len(req) * 10 * DIV + 4000,
                           adc_ratio=adc_ratio)
    want = ref_adc_pipeline(d, samples.reshape(-1, 2))["outputs"].ravel()
    assert (a.seq, a.status) == (1, Status.OK.value)
    assert unpack_words(a.payload[1:], 2, signed=True) == list(want)
    assert (b.seq, b.status) == (2, Status.BAD_LENGTH.value)  # padded, rolled back
    assert list(c.payload[1:]) == list(ref_comparator_ladder(samples, d.thresholds))
    want_rev = ref_adc_pipeline(d, samples[::-1].reshape(-1, 2))["outputs"].ravel()
    assert unpack_words(e.payload[1:], 2, signed=True) == list(want_rev)  # the MAC started clean


@ADC_RATIOS
def test_board_constant_thresholds_answer_unsupported(adc_ratio):
    req = (pack_frame(Command.LOAD_THRESHOLDS.value, 1, pack_words(range(1, 16), 2))
           + codes_request(2, [0, 16, 4095]))
    a, b = run_board(DESIGN, req, expect_frames=2, cycles=len(req) * 10 * DIV + 1500,
                     runtime_thresholds=False, adc_ratio=adc_ratio)
    assert (a.seq, a.status) == (1, Status.UNSUPPORTED.value)
    assert list(b.payload[1:]) == [0, 1, 15]  # the design's own thresholds still apply


# -- a board top with sample lanes -----------------------------------------------------------

#: a pipeline of 2 or 4 sample lanes, in the top's one domain or in its own at twice the clock
BOARD_LANES = pytest.mark.parametrize("lanes,adc_ratio", [(2, None), (2, 2), (4, None), (4, 2)],
                                      ids=["2 lanes", "2 lanes adc 2x", "4 lanes",
                                           "4 lanes adc 2x"])


@BOARD_LANES
def test_board_lanes_answer_every_frame_length(lanes, adc_ratio):
    """CODES frames of any length are answered with their own codes (a last beat completed
    with zero samples, whose codes the ring drops); the STATUS counts the real samples."""
    rng = np.random.default_rng(4)
    lengths = (1, 3, 5, lanes, 12, 7)
    chunks = [rng.integers(0, 4096, n) for n in lengths]
    req = b"".join(codes_request(k, c) for k, c in enumerate(chunks))
    req += pack_frame(Command.STATUS.value, 99)
    frames = run_board(DESIGN, req, expect_frames=len(chunks) + 1,
                       cycles=len(req) * 10 * DIV + 3000, lanes=lanes, adc_ratio=adc_ratio)
    for f, c in zip(frames, chunks):
        assert f.status == Status.OK.value
        assert list(f.payload[1:]) == list(ref_adc_pipeline(DESIGN, c)["codes"])
    words = dict(zip(STATUS_FIELDS, unpack_words(frames[-1].payload[1:], 4)))
    assert words["samples"] == sum(lengths)


@BOARD_LANES
def test_board_lanes_recover_from_a_broken_frame_inside_a_beat(lanes, adc_ratio):
    """A frame that times out or fails its CRC after a part of a lane beat leaves the next
    frame on lane 0: its codes, and new thresholds loaded after it, are right."""
    bad = bytearray(codes_request(2, [5, 600, 7]))
    bad[-1] ^= 0xFF
    new = [i * 256 + 1 for i in range(1, 16)]
    samples = [0, 256, 257, 300, 4095]
    first = bytes(bad) + codes_request(3, [100, 2000, 3000]) + codes_request(4, [1, 2, 3])[:-4]
    then = (pack_frame(Command.LOAD_THRESHOLDS.value, 5, pack_words(new, 2))
            + codes_request(6, samples))
    frames = run_board(DESIGN, [first, then], pause=1500, expect_frames=5, timeout=400,
                       cycles=(len(first) + len(then)) * 10 * DIV + 6000, lanes=lanes,
                       adc_ratio=adc_ratio)
    assert [(f.seq, f.status) for f in frames] == [
        (2, Status.BAD_CRC.value), (3, Status.OK.value), (4, Status.TIMEOUT.value),
        (5, Status.OK.value), (6, Status.OK.value)]
    assert list(frames[1].payload[1:]) == list(ref_adc_pipeline(DESIGN, [100, 2000, 3000])["codes"])
    assert list(frames[-1].payload[1:]) == [sum(x >= t for t in new) for x in samples]


@pytest.mark.parametrize("adc_ratio", [None, 2], ids=["one domain", "adc domain 2x"])
def test_board_lanes_mac_frames(tiny_mac_design, adc_ratio):
    """Two lanes (the tiny design's samples per inference): MAC frames, a cut inference
    (padded, rolled back), a CODES frame of odd length and MAC again."""
    d = tiny_mac_design
    rng = np.random.default_rng(9)
    samples = rng.integers(0, 256, 8)
    req = (pack_frame(Command.MAC.value, 1, pack_words(samples, 1))
           + pack_frame(Command.MAC.value, 2, pack_words(samples[:3], 1))
           + pack_frame(Command.CODES.value, 3, pack_words(samples[:7], 1))
           + pack_frame(Command.MAC.value, 4, pack_words(samples[::-1], 1)))
    a, b, c, e = run_board(d, req, expect_frames=4, cycles=len(req) * 10 * DIV + 5000,
                           adc_ratio=adc_ratio, lanes=2)
    assert (a.status, b.status, c.status, e.status) == (
        Status.OK.value, Status.BAD_LENGTH.value, Status.OK.value, Status.OK.value)
    want = ref_adc_pipeline(d, samples.reshape(-1, 2))["outputs"].ravel()
    assert unpack_words(a.payload[1:], 2, signed=True) == list(want)
    assert list(c.payload[1:]) == list(ref_comparator_ladder(samples[:7], d.thresholds))
    want_rev = ref_adc_pipeline(d, samples[::-1].reshape(-1, 2))["outputs"].ravel()
    assert unpack_words(e.payload[1:], 2, signed=True) == list(want_rev)


def test_board_lanes_bad_input(tiny_mac_design):
    from boards.pmod_ad1 import PmodAD1

    with pytest.raises(ValueError, match=r"^lanes must be an integer of at least 1, not 0$"):
        BoardTop(DESIGN, divisor=DIV, lanes=0)
    with pytest.raises(ValueError, match="lanes > 1 and a sample source do not go together"):
        BoardTop(DESIGN, divisor=DIV, lanes=2, adc_source=PmodAD1(clk_hz=30e6))
    with pytest.raises(ValueError, match="lanes"):  # 4 lanes do not divide 2 samples
        BoardTop(tiny_mac_design, divisor=DIV, lanes=4)

"""Amaranth-simulator tests of the board top's components, each against a reference model.

The whole top (:class:`boards.top.BoardTop`, the components joined) is tested in
``test_boards_gateware.py``; here each part alone: the receiver against ``ref_frame_receiver``,
the ring against a list of committed words, the transmitter against the host's
:func:`boards.protocol.pack_frame`, the counters against a count of the events.
"""

import itertools
import random
import struct

import numpy as np
import pytest
from amaranth.sim import Simulator

from adcforge.design import resolve_design
from boards.protocol import (MAX_PAYLOAD, MAX_SAMPLES, RESPONSE, STATUS_FIELDS, SYNC, Command,
                             FrameParser, Status, crc16, design_id, pack_frame, pack_words,
                             unpack_words)
from boards.top import (AsyncStreamFIFO, CoreCommand, DomainCrossing, EventLeds, FrameReceiver,
                        FrameTransmitter, ResultRing, StatusCounters, StreamFIFO, max_results)
from hdl.cdc import CrossingFIFO

DESIGN = resolve_design("adc4_in12")  # 12-bit samples (2 bytes), 15 thresholds


def run(dut, *benches, processes=(), cycles=None):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for b in benches:
        sim.add_testbench(b)
    for p in processes:
        sim.add_process(p)
    if cycles:
        sim.run_until(1e-6 * cycles)
    else:
        sim.run()


# -- StreamFIFO --------------------------------------------------------------------------------


def test_stream_fifo_keeps_order_under_back_pressure():
    dut = StreamFIFO(8, 4)
    data = [random.Random(1).randrange(256) for _ in range(60)]
    got = []

    async def writer(ctx):
        for b in data:
            ctx.set(dut.i.payload, b)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def reader(ctx):
        for ready in itertools.cycle([1, 0, 1, 1, 0, 0]):
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(payload)
            if len(got) == len(data):
                return

    run(dut, writer, reader)
    assert got == data


# -- AsyncStreamFIFO, DomainCrossing: the pipeline's clock domain ----------------------------


def two_clocks(dut, ratio=2.0):
    """A simulator with ``sync`` at 1 MHz and ``adc`` ``ratio`` times faster, out of phase."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_clock(1e-6 / ratio, domain="adc", phase=0.37e-6 / ratio)
    return sim


@pytest.mark.parametrize("ratio", [2.0, 0.7], ids=["reader 2x faster", "reader slower"])
def test_async_stream_fifo_keeps_order_across_clocks(ratio):
    dut = AsyncStreamFIFO(8, 8, w_domain="sync", r_domain="adc")
    rng = random.Random(2)
    data = [rng.randrange(256) for _ in range(80)]
    got = []

    async def writer(ctx):
        for b, idle in zip(data, itertools.cycle([0, 0, 1, 0, 3])):
            ctx.set(dut.i.payload, b)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            await ctx.tick().repeat(idle) if idle else None
        ctx.set(dut.i.valid, 0)

    async def reader(ctx):
        for ready in itertools.cycle([1, 0, 1, 1, 0, 0, 0]):
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick("adc").sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(payload)
            if len(got) == len(data):
                return

    sim = two_clocks(dut, ratio)
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run_until(1e-6 * 2000)
    assert got == data


@pytest.mark.parametrize("ratio", [2.0, 0.7], ids=["reader 2x faster", "reader slower"])
def test_crossing_fifo_fills_to_its_depth_and_reads_every_other_cycle(ratio):
    """The unchecked FIFO: writes back to back while its registered level is below
    ``depth - 1`` fill all ``depth`` entries and lose none; ``r_rdy`` is 0 in the cycle after
    each read; the pointers wrap many times."""
    depth = 8
    dut = CrossingFIFO(8, depth, w_domain="sync", r_domain="adc")
    data = [(7 * k + 3) % 256 for k in range(5 * 2 * depth + 3)]
    got, levels = [], []

    async def writer(ctx):  # a write in every cycle the level allows
        k = 0
        while k < len(data):
            write = ctx.get(dut.w_level) < depth - 1
            ctx.set(dut.w_data, data[k])
            ctx.set(dut.w_en, write)
            await ctx.tick()
            k += write
        ctx.set(dut.w_en, 0)

    async def reader(ctx):
        await ctx.tick("adc").repeat(60)  # the FIFO fills first
        ctx.set(dut.r_en, 1)
        after_read = False
        while len(got) < len(data):
            _, _, rdy, payload = await ctx.tick("adc").sample(dut.r_rdy, dut.r_data)
            assert not (after_read and rdy)
            if rdy:
                got.append(payload)
            after_read = bool(rdy)

    async def level(ctx):
        async for _, _, lvl in ctx.tick().sample(dut.w_level):
            levels.append(lvl)

    sim = two_clocks(dut, ratio)
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.add_testbench(level, background=True)
    sim.run_until(1e-6 * 3000)
    assert got == data
    assert max(levels) == depth


def test_async_stream_fifo_checks_depth():
    with pytest.raises(ValueError, match="depth must be a power of two of at least 4, not 6"):
        AsyncStreamFIFO(8, 6, w_domain="sync", r_domain="adc")


def test_domain_crossing_keeps_samples_and_threshold_writes_in_order(tiny_mac_design):
    """Samples, threshold writes and a commit enter on ``sync`` and leave on ``adc`` in the
    order they came; results go back; ``mode`` arrives."""
    d = tiny_mac_design
    dut = DomainCrossing(d, domain="adc", sample_shape=8, result_shape=10,
                         runtime_thresholds=True)
    events = [("s", 5), ("s", 200), ("w", 1, 77), ("w", 2, 99), ("c",), ("s", 0), ("s", 255)]
    seen = []
    results = list(range(1, 7))  # two inferences of 3 outputs
    back = []

    async def sender(ctx):
        ctx.set(dut.mode, 1)
        for ev in events:
            if ev[0] == "s":
                ctx.set(dut.samples.payload, ev[1])
                ctx.set(dut.samples.valid, 1)
                await ctx.tick().until(dut.samples.ready)
                ctx.set(dut.samples.valid, 0)
            elif ev[0] == "w":
                ctx.set(dut.thr.addr, ev[1])
                ctx.set(dut.thr.data, ev[2])
                ctx.set(dut.thr.we, 1)
                await ctx.tick()
                ctx.set(dut.thr.we, 0)
            else:
                ctx.set(dut.thr.commit, 1)
                await ctx.tick()
                ctx.set(dut.thr.commit, 0)
            await ctx.tick().repeat(3)

    async def core(ctx):  # an inference's 3 outputs after its second sample
        ctx.set(dut.core_i.ready, 1)
        todo = list(results)
        while len(seen) < len(events) or todo:
            _, _, v, p, we, addr, data, commit = await ctx.tick("adc").sample(
                dut.core_i.valid, dut.core_i.payload, dut.core_thr.we, dut.core_thr.addr,
                dut.core_thr.data, dut.core_thr.commit)
            if v:
                seen.append(("s", p))
                assert ctx.get(dut.core_mode) == 1
            if we:
                seen.append(("w", addr, data))
            if commit:
                seen.append(("c",))
            if v and sum(e[0] == "s" for e in seen) % 2 == 0:
                for r in todo[:3]:
                    ctx.set(dut.core_results.payload, r)
                    ctx.set(dut.core_results.valid, 1)
                    await ctx.tick("adc")
                ctx.set(dut.core_results.valid, 0)
                todo = todo[3:]

    async def ring(ctx):
        for ready in itertools.cycle([1, 1, 0]):
            ctx.set(dut.results.ready, ready)
            _, _, v, p = await ctx.tick().sample(dut.results.valid, dut.results.payload)
            if v and ready:
                back.append(p)

    sim = two_clocks(dut)
    sim.add_testbench(sender)
    sim.add_testbench(core)
    sim.add_testbench(ring, background=True)
    sim.run_until(1e-6 * 300)
    assert seen == events
    assert back == results


def test_domain_crossing_holds_samples_back_while_the_ring_is_full():
    """The pipeline is never stalled: samples wait while the results FIFO could not take
    their results, and none is lost when the ring reads again."""
    dut = DomainCrossing(DESIGN, domain="adc", sample_shape=12, result_shape=4,
                         runtime_thresholds=False)
    n = 3 * dut.out_depth
    back = []

    async def sender(ctx):
        for k in range(n):
            ctx.set(dut.samples.payload, k)
            ctx.set(dut.samples.valid, 1)
            await ctx.tick().until(dut.samples.ready)
        ctx.set(dut.samples.valid, 0)

    async def core(ctx):  # a pipeline of latency 3 that cannot stall
        ctx.set(dut.core_i.ready, 1)
        line = [None] * 3
        while True:
            _, _, v, p = await ctx.tick("adc").sample(dut.core_i.valid, dut.core_i.payload)
            line = [p % 16 if v else None] + line[:-1]
            ctx.set(dut.core_results.valid, line[-1] is not None)
            ctx.set(dut.core_results.payload, line[-1] or 0)

    async def ring(ctx):
        await ctx.tick().repeat(300)  # full: nothing read for a while
        ctx.set(dut.results.ready, 1)
        while len(back) < n:
            _, _, v, p = await ctx.tick().sample(dut.results.valid, dut.results.payload)
            if v:
                back.append(p)

    sim = two_clocks(dut)
    sim.add_testbench(sender)
    sim.add_testbench(core, background=True)
    sim.add_testbench(ring)
    sim.run_until(1e-6 * 2000)
    assert back == [k % 16 for k in range(n)]


def test_stream_fifo_checks_depth():
    with pytest.raises(ValueError, match="depth must be an integer of at least 2, not 1"):
        StreamFIFO(8, 1)


# -- FrameReceiver -----------------------------------------------------------------------------


def ref_frame_receiver(design, frame: bytes, *, runtime_thresholds=True):
    """Return ``(status, samples)`` the receiver must give for one whole frame: the statuses'
    rules of the protocol, ``samples`` the words it streams into the pipeline."""
    cmd, seq, length = struct.unpack_from("<BBH", frame, 2)
    if length > MAX_PAYLOAD:  # answered at once, the rest of the frame is not awaited
        return Status.BAD_LENGTH.value, []
    payload, (crc,) = frame[6:6 + length], struct.unpack_from("<H", frame, 6 + length)
    sb = (design.input_bits + 7) // 8
    samples_cmds = {Command.CODES.value} | ({Command.MAC.value} if design.mac else set())
    status = Status.OK.value
    if cmd == Command.STATUS.value:
        ok = length == 0
    elif cmd == Command.LOAD_THRESHOLDS.value:
        ok = length == len(design.thresholds) * sb
        if not runtime_thresholds:
            status = Status.UNSUPPORTED.value
    elif cmd in samples_cmds:
        ok = 0 < length <= MAX_SAMPLES * sb and length % sb == 0
    else:
        ok, status = True, Status.UNKNOWN_COMMAND.value
    if not ok:
        status = Status.BAD_LENGTH.value
    streamed = (unpack_words(payload, sb, bits=design.input_bits)
                if status == Status.OK.value and cmd in samples_cmds else [])
    if crc != crc16(frame[2:6 + length]):
        status = Status.BAD_CRC.value
    return status, streamed


def corrupt(frame: bytes) -> bytes:
    f = bytearray(frame)
    f[-1] ^= 0x40
    return bytes(f)


RECEIVER_CASES = [
    pytest.param(pack_frame(Command.CODES.value, 1, pack_words([0, 4095, 7], 2)), id="codes"),
    pytest.param(corrupt(pack_frame(Command.CODES.value, 2, pack_words([5, 6], 2))),
                 id="bad CRC"),
    pytest.param(pack_frame(0x55, 3, b"xyz"), id="unknown command"),
    pytest.param(pack_frame(Command.CODES.value, 4, b"\x01\x02\x03"), id="1.5 samples"),
    pytest.param(pack_frame(Command.STATUS.value, 5, b"\x00"), id="STATUS with a payload"),
    pytest.param(SYNC + struct.pack("<BBH", Command.CODES.value, 6, MAX_PAYLOAD + 2),
                 id="length over 1024"),
    pytest.param(pack_frame(Command.STATUS.value, 7), id="status"),
    pytest.param(pack_frame(Command.LOAD_THRESHOLDS.value, 8, pack_words(range(1, 16), 2)),
                 id="load thresholds"),
]


def drive_receiver(design, stream_bytes, *, timeout=1 << 12, runtime_thresholds=True,
                   cycles=None):
    """Feed bytes to a FrameReceiver (one a cycle), play the ring (``written`` counts the
    samples taken since ``start``, a register); return what came out of it."""
    dut = FrameReceiver(design, timeout=timeout, runtime_thresholds=runtime_thresholds)
    out = {"samples": [], "resp": [], "events": [], "ring": [], "thr": [], "thr_commit": 0}

    async def host(ctx):
        for b in stream_bytes:
            ctx.set(dut.i.payload, b)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        ctx.set(dut.samples.ready, 1)
        ctx.set(dut.resp.ready, 1)
        written = 0
        thr = [dut.thr.we, dut.thr.addr, dut.thr.data, dut.thr.commit] if runtime_thresholds \
            else []
        async for _, _, sv, sp, start, commit, rollback, rv, rp, done, st, n, *t in \
                ctx.tick().sample(dut.samples.valid, dut.samples.payload, dut.ring.start,
                                  dut.ring.commit, dut.ring.rollback, dut.resp.valid,
                                  dut.resp.payload, dut.events.done, dut.events.status,
                                  dut.events.samples, *thr):
            if sv:
                out["samples"].append(sp)
                written += 1
            if start:
                written = 0
            if commit or rollback:
                out["ring"].append("commit" if commit else "rollback")
            if rv:
                out["resp"].append((rp["cmd"], rp["seq"], rp["status"], rp["count"]))
            if done:
                out["events"].append((st, n))
            if t and t[0]:
                out["thr"].append((t[1], t[2]))
            if t and t[3]:
                out["thr_commit"] += 1
            ctx.set(dut.ring.written, written)

    run(dut, host, processes=[sink], cycles=cycles or 20 * len(stream_bytes) + 200)
    return out


@pytest.mark.parametrize("frame", RECEIVER_CASES)
def test_frame_receiver_matches_reference(frame):
    status, streamed = ref_frame_receiver(DESIGN, frame)
    cmd, seq = frame[2], frame[3]
    # garbage before it (skipped while hunting), a good frame after it (the receiver recovers)
    after = pack_frame(Command.CODES.value, 99, pack_words([1, 2], 2))
    out = drive_receiver(DESIGN, b"\x00\xa5\x13" + frame + after)
    count = len(streamed) if status == Status.OK.value else 0
    assert out["resp"] == [(cmd | RESPONSE, seq, status, count),
                           (Command.CODES.value | RESPONSE, 99, Status.OK.value, 2)]
    assert [st for st, _ in out["events"]] == [status, Status.OK.value]
    if status == Status.OK.value:  # the samples a good frame carried, for the STATUS count
        assert out["events"][0][1] == len(streamed)
    assert out["samples"][:len(streamed)] == streamed and out["samples"][-2:] == [1, 2]
    assert out["ring"] == ["commit" if status == Status.OK.value else "rollback", "commit"]
    if cmd == Command.LOAD_THRESHOLDS.value:
        assert out["thr"] == [(i, t) for i, t in enumerate(range(1, 16))]
        assert out["thr_commit"] == 1


def test_frame_receiver_bad_crc_still_streams_then_rolls_back():
    frame = corrupt(pack_frame(Command.CODES.value, 2, pack_words([5, 6, 7], 2)))
    out = drive_receiver(DESIGN, frame)
    assert out["samples"] == [5, 6, 7]  # no frame buffer: samples stream as they arrive
    assert out["ring"] == ["rollback"] and out["resp"] == [(0x83, 2, Status.BAD_CRC.value, 0)]


def test_frame_receiver_times_out_a_frame_that_stops():
    cut = pack_frame(Command.CODES.value, 5, pack_words([100, 200, 300], 2))[:-4]
    out = drive_receiver(DESIGN, cut, timeout=64, cycles=400)
    assert out["resp"] == [(0x83, 5, Status.TIMEOUT.value, 0)] and out["ring"] == ["rollback"]


def test_frame_receiver_constant_thresholds_answer_unsupported():
    frame = pack_frame(Command.LOAD_THRESHOLDS.value, 1, pack_words(range(1, 16), 2))
    out = drive_receiver(DESIGN, frame, runtime_thresholds=False)
    assert ref_frame_receiver(DESIGN, frame, runtime_thresholds=False)[0] == \
        Status.UNSUPPORTED.value
    assert out["resp"] == [(0x82, 1, Status.UNSUPPORTED.value, 0)]
    assert not hasattr(FrameReceiver(DESIGN, timeout=64, runtime_thresholds=False), "thr")


def test_frame_receiver_checks_its_arguments():
    with pytest.raises(TypeError, match="design must be a Design, not dict"):
        FrameReceiver({}, timeout=64)
    with pytest.raises(ValueError, match="timeout must be an integer of at least 1, not 0"):
        FrameReceiver(DESIGN, timeout=0)


# -- ResultRing --------------------------------------------------------------------------------


def test_result_ring_commits_and_rolls_back_frames():
    frames = [("commit", [1, 2, 3, 4, 5]), ("rollback", [6, 7, 8]), ("commit", [9, 10]),
              ("commit", list(range(11, 30))), ("rollback", [30]), ("commit", [31])]
    want = [w for what, words in frames if what == "commit" for w in words]
    dut = ResultRing(width=8, depth=64, max_results=32)
    got, counts = [], []

    async def writer(ctx):
        for what, words in frames:
            ctx.set(dut.ctl.start, 1)
            await ctx.tick()
            ctx.set(dut.ctl.start, 0)
            for w in words:
                ctx.set(dut.i.payload, w)
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            await ctx.tick()
            counts.append(ctx.get(dut.ctl.written))
            ctx.set(dut.ctl.commit if what == "commit" else dut.ctl.rollback, 1)
            await ctx.tick()
            ctx.set(dut.ctl.commit, 0)
            ctx.set(dut.ctl.rollback, 0)

    async def reader(ctx):
        for ready in itertools.cycle([1, 1, 0]):
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(payload)
            if len(got) == len(want):
                return

    run(dut, writer, reader)
    assert got == want
    assert counts == [len(words) for _, words in frames]


def test_result_ring_never_overwrites_unread_words():
    depth = 16
    dut = ResultRing(width=8, depth=depth, max_results=8)
    accepted, got = [], []

    async def bench(ctx):
        for w in range(40):  # nobody reads: the ring must stop taking words before it wraps
            ctx.set(dut.i.payload, w)
            ctx.set(dut.i.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            if ready:
                accepted.append(w)
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.ctl.commit, 1)
        await ctx.tick()
        ctx.set(dut.ctl.commit, 0)
        ctx.set(dut.o.ready, 1)
        for _ in range(3 * depth):
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got.append(payload)

    run(dut, bench)
    assert depth - 4 <= len(accepted) <= depth
    assert got == accepted


def test_result_ring_checks_depth():
    with pytest.raises(ValueError, match="depth must be a power of two of at least 8, not 12"):
        ResultRing(width=8, depth=12, max_results=4)


# -- FrameTransmitter --------------------------------------------------------------------------


def ref_frame_transmitter(design, cmd, seq, status, results, words):
    """The bytes of one response, as the host packs them (:func:`pack_frame`)."""
    if status != Status.OK.value:
        body = b""
    elif cmd == Command.STATUS.value | RESPONSE:
        body = pack_words(words, 4)
    elif cmd == Command.MAC.value | RESPONSE:
        ob = (design.mac.output_bits + 7) // 8
        body = pack_words(results, ob)
    else:
        body = bytes(results)
    return pack_frame(cmd, seq, bytes([status]) + body)


def transmit(design, responses, words, *, ready=(1,)):
    """Drive a FrameTransmitter with descriptors and their results; return the bytes sent."""
    dut = FrameTransmitter(design)
    out = bytearray()
    results = [r for *_, rs in responses for r in rs]

    async def descriptors(ctx):
        for i, w in enumerate(words):
            ctx.set(dut.words[i], w)
        for cmd, seq, status, rs in responses:
            ctx.set(dut.resp.payload, {"cmd": cmd, "seq": seq, "status": status,
                                       "count": len(rs)})
            ctx.set(dut.resp.valid, 1)
            await ctx.tick().until(dut.resp.ready)
        ctx.set(dut.resp.valid, 0)

    async def result_source(ctx):
        mask = (1 << len(dut.results.payload)) - 1
        for r in results:
            ctx.set(dut.results.payload, r & mask)
            ctx.set(dut.results.valid, 1)
            await ctx.tick().until(dut.results.ready)
            ctx.set(dut.results.valid, 0)
            await ctx.tick()  # the ring offers a word a cycle after the last was taken

    async def sink(ctx):
        for r in itertools.cycle(ready):
            ctx.set(dut.o.ready, r)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and r:
                out.append(payload)

    n_bytes = sum(len(ref_frame_transmitter(design, c, s, st, rs, words))
                  for c, s, st, rs in responses)
    run(dut, descriptors, result_source, processes=[sink], cycles=8 * n_bytes + 100)
    return bytes(out)


def test_frame_transmitter_matches_the_host_packer():
    words = [3, 1, 0, 2, 0, 0, 1234, 5, design_id(DESIGN)]
    responses = [(Command.CODES.value | RESPONSE, 7, Status.OK.value, [0, 15, 3, 9]),
                 (Command.CODES.value | RESPONSE, 8, Status.BAD_CRC.value, []),
                 (Command.STATUS.value | RESPONSE, 9, Status.OK.value, []),
                 (Command.LOAD_THRESHOLDS.value | RESPONSE, 10, Status.OK.value, []),
                 (0x55 | RESPONSE, 11, Status.UNKNOWN_COMMAND.value, [])]
    want = b"".join(ref_frame_transmitter(DESIGN, c, s, st, rs, words)
                    for c, s, st, rs in responses)
    assert transmit(DESIGN, responses, words, ready=(1, 0, 0, 1)) == want
    assert len(FrameParser().feed(want)) == len(responses)


def test_frame_transmitter_sign_extends_mac_outputs(tiny_mac_design):
    d = tiny_mac_design
    outs = [-512, 511, -1, 0, 37, -200]
    responses = [(Command.MAC.value | RESPONSE, 1, Status.OK.value, outs),
                 (Command.CODES.value | RESPONSE, 2, Status.OK.value, [0, 3, 2])]
    want = b"".join(ref_frame_transmitter(d, c, s, st, rs, [0] * 9) for c, s, st, rs in responses)
    assert transmit(d, responses, [0] * 9) == want


# -- StatusCounters and EventLeds --------------------------------------------------------------


def test_status_counters_count_every_event():
    rng = random.Random(3)
    statuses = [rng.choice(list(Status)) for _ in range(80)]
    uart = [(rng.random() < 0.2, rng.random() < 0.1) for _ in statuses]
    dut = StatusCounters(DESIGN)
    want = dict.fromkeys(STATUS_FIELDS, 0)
    want["design_id"] = design_id(DESIGN)
    got = {}

    async def bench(ctx):
        for k, (st, (ovf, fe)) in enumerate(zip(statuses, uart)):
            n = k % 17
            ctx.set(dut.events.done, 1)
            ctx.set(dut.events.status, st.value)
            ctx.set(dut.events.samples, n)
            ctx.set(dut.overflow, ovf)
            ctx.set(dut.framing_error, fe)
            await ctx.tick()
            if st == Status.OK:
                want["frames_ok"] += 1
                want["samples"] += n
            elif st in StatusCounters.ERRORS:
                want[StatusCounters.ERRORS[st]] += 1
            want["overflows"] += ovf
            want["framing_errors"] += fe
        ctx.set(dut.events.done, 0)
        ctx.set(dut.overflow, 0)
        ctx.set(dut.framing_error, 0)
        await ctx.tick()
        for i, name in enumerate(STATUS_FIELDS):
            got[name] = ctx.get(dut.words[i])

    run(dut, bench)
    assert got == want


def test_event_leds_light_and_go_dark():
    dut = EventLeds(led_cycles=64)
    seen = []

    async def bench(ctx):
        ctx.set(dut.events.done, 1)
        ctx.set(dut.events.status, Status.OK.value)
        await ctx.tick()
        ctx.set(dut.events.done, 0)
        seen.append((ctx.get(dut.led_activity), ctx.get(dut.led_error)))
        await ctx.tick().repeat(200)
        seen.append((ctx.get(dut.led_activity), ctx.get(dut.led_error)))
        ctx.set(dut.events.done, 1)
        ctx.set(dut.events.status, Status.TIMEOUT.value)
        await ctx.tick()
        ctx.set(dut.events.done, 0)
        seen.append((ctx.get(dut.led_activity), ctx.get(dut.led_error)))

    run(dut, bench)
    assert seen == [(1, 0), (0, 0), (0, 1)]


def test_max_results_of_a_frame(tiny_mac_design):
    assert max_results(DESIGN) == MAX_SAMPLES
    assert max_results(tiny_mac_design) == MAX_SAMPLES * 3
    assert np.iinfo(np.uint16).max > max_results(resolve_design("adc8_in16_mac"))

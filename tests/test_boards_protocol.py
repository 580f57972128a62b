"""The host side of the protocol: CRC, packing, and the frame parser's resynchronisation."""

import random

import numpy as np
import pytest

from boards.protocol import (ACQUIRE_RECORD_BYTES, MAX_PAYLOAD, PROTOCOL_VERSION, SYNC, Command,
                             FrameParser, Status, crc16, pack_acquired, pack_frame, pack_words,
                             unpack_acquired, unpack_words)


def test_crc16_check_value():
    assert crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE's catalogue check value
    assert crc16(b"") == 0xFFFF


def test_frame_layout():
    f = pack_frame(Command.CODES.value, 7, b"\x01\x02")
    assert f[:2] == SYNC and f[2:6] == bytes([0x03, 7, 2, 0]) and f[6:8] == b"\x01\x02"
    assert int.from_bytes(f[8:], "little") == crc16(f[2:8])
    with pytest.raises(ValueError, match="at most 1024"):
        pack_frame(1, 0, bytes(MAX_PAYLOAD + 1))


def test_one_enum_for_gateware_and_host():
    # version 2 added ACQUIRE (a board with a sample source); version 1's four are unchanged
    assert [c.value for c in Command] == [1, 2, 3, 4, 5] and Command.ACQUIRE.value == 5
    assert PROTOCOL_VERSION == 2
    assert Status.OK.value == 0 and len(set(s.value for s in Status)) == len(Status)


@pytest.mark.parametrize("nbytes, signed, bits", [(1, False, 8), (2, False, 12), (2, True, 12),
                                                  (3, True, 20), (4, True, 32)])
def test_words_round_trip(nbytes, signed, bits):
    rng = np.random.default_rng(nbytes)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2**bits)
    values = [int(v) for v in rng.integers(lo, hi, 50)] + [lo, hi - 1]
    assert unpack_words(pack_words(values, nbytes), nbytes, signed=signed, bits=bits) == values


def test_acquire_records_round_trip():
    raw = [0, 4095, 1, 2048, 0xABC]
    codes = [0, 15, 3, 255, 7]
    body = pack_acquired(raw, codes)
    assert len(body) == ACQUIRE_RECORD_BYTES * len(raw) and body[3:6] == b"\xff\x0f\x0f"
    got_raw, got_codes = unpack_acquired(body)
    assert list(got_raw) == raw and list(got_codes) == codes


def test_parser_resynchronises_after_garbage_and_bad_crc():
    rng = random.Random(4)
    frames = [pack_frame(3, k, bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
              for k in range(20)]
    stream = bytearray()
    for k, f in enumerate(frames):
        if k % 3 == 0:
            stream += bytes(rng.randrange(256) for _ in range(7)) + b"\xa5"  # garbage
        f = bytearray(f)
        if k % 5 == 4:
            f[-3] ^= 0x10  # corrupted: must be dropped, not stop the parser
        stream += f
    parser = FrameParser()
    got = []
    for i in range(0, len(stream), 13):  # arbitrary chunking
        got += parser.feed(bytes(stream[i:i + 13]))
    want = [k for k in range(20) if k % 5 != 4]
    assert [f.seq for f in got] == want
    assert parser.bad_crc >= 4


def test_crc16_is_the_amaranth_catalogue_entry():
    from amaranth.lib.crc import catalog

    from boards.protocol import CRC16
    assert CRC16.algorithm.__dict__ == catalog.CRC16_IBM_3740(8).algorithm.__dict__
    rng = random.Random(8)
    for _ in range(50):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(60)))
        assert crc16(data) == CRC16.compute(data)

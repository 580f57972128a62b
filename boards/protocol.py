"""The board protocol: one command enum for the gateware state machine and the host packer.

Every frame, in both directions::

    0xA5 0x5A | CMD (1) | SEQ (1) | LEN (2, little endian) | PAYLOAD (LEN bytes) | CRC (2, LE)

``CRC`` is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final
XOR; reveng's CRC-16/IBM-3740) over ``CMD .. PAYLOAD``: :data:`CRC16`, from ``amaranth.lib.crc``'s
catalogue, which the gateware instantiates (``CRC16.create()``) and the host computes. ``LEN`` is at most :data:`MAX_PAYLOAD`. A response carries the
request's ``CMD | 0x80`` and ``SEQ``; its payload starts with a :class:`Status` byte. The board
answers every frame whose header it received: ``OK`` with data, or an error with no data
(``BAD_CRC``, ``UNKNOWN_COMMAND``, ``BAD_LENGTH``, ``OVERFLOW``, ``TIMEOUT``); bytes outside a frame
are skipped while it hunts for ``0xA5 0x5A``.

Commands (request payload → response payload after the status byte):

``STATUS``           none → the :data:`STATUS_FIELDS`, each a 32-bit LE word.
``LOAD_THRESHOLDS``  ``2**b - 1`` thresholds, ``sample_bytes`` each → none. They land in the
                     ladder's shadow bank as they arrive and become active (between samples)
                     only when the CRC is good. A build with constant thresholds answers
                     ``UNSUPPORTED``.
``CODES``            ``n`` samples (``n <= MAX_SAMPLES``), ``sample_bytes`` each → ``n`` codes,
                     one byte each.
``MAC``              ``k * samples_per_inference`` samples → ``k * mac.outputs`` outputs,
                     ``output_bytes`` each, two's complement.
``ACQUIRE``          ``n`` (2 bytes, ``1 <= n <= MAX_ACQUIRE``) → ``n`` records of
                     :data:`ACQUIRE_RECORD_BYTES`: the board's own sample source (a Pmod AD1,
                     :mod:`boards.pmod_ad1`) converts ``n`` samples, evenly spaced, after the
                     request's CRC is checked; each is digitised by the pipeline (codes) and
                     answered as its raw 12-bit converter word (2 bytes) and its code (1 byte).
                     Only a build with a sample source has it; any other answers
                     ``UNKNOWN_COMMAND``.

Multi-byte words are little endian; a sample is the low ``input_bits`` of its word.

Versions (:data:`PROTOCOL_VERSION`): 1 — ``STATUS``, ``LOAD_THRESHOLDS``, ``CODES``, ``MAC``;
2 — adds ``ACQUIRE`` (builds with ``--source pmod-ad1``). Version 1's frames are unchanged, and
a version-1 board answers ``ACQUIRE`` as any unknown command, which the host reports as a
bitstream without a sample source.
"""

from __future__ import annotations

import binascii
import enum as py_enum
import struct

import numpy as np

from amaranth.lib import enum
from amaranth.lib.crc import catalog as crc_catalog

SYNC = b"\xa5\x5a"
HEADER_BYTES = 6  # sync (2), cmd, seq, len (2)
OVERHEAD_BYTES = HEADER_BYTES + 2  # + crc
MAX_PAYLOAD = 1024
MAX_SAMPLES = 512
RESPONSE = 0x80
PROTOCOL_VERSION = 2
#: samples one ``ACQUIRE`` asks for at most (its answer: 1 + 3 × 256 = 769 bytes)
MAX_ACQUIRE = 256
#: bytes per ``ACQUIRE`` answer record: the raw 12-bit sample (2 bytes, LE), its code (1 byte)
ACQUIRE_RECORD_BYTES = 3
#: the converter's sample width (the Pmod AD1's AD7476A)
ADC_BITS = 12


class Command(enum.Enum, shape=8):
    """A request's command byte (a response sets bit 7)."""

    STATUS = 0x01
    LOAD_THRESHOLDS = 0x02
    CODES = 0x03
    MAC = 0x04
    ACQUIRE = 0x05


class Status(enum.Enum, shape=8):
    """The first payload byte of every response."""

    OK = 0x00
    BAD_CRC = 0x01
    UNKNOWN_COMMAND = 0x02
    BAD_LENGTH = 0x03
    OVERFLOW = 0x04
    TIMEOUT = 0x05
    UNSUPPORTED = 0x06


#: The STATUS response's 32-bit words, in order.
STATUS_FIELDS = ("frames_ok", "crc_errors", "unknown_commands", "bad_lengths", "overflows",
                 "timeouts", "samples", "framing_errors", "design_id")


#: The protocol's CRC over bytes: ``amaranth.lib.crc.catalog.CRC16_CCITT_FALSE`` (the same
#: object as ``CRC16_IBM_3740``) at 8-bit words. The gateware builds ``CRC16.create()``.
CRC16 = crc_catalog.CRC16_CCITT_FALSE(data_width=8)

# ``binascii.crc_hqx`` is this CRC (polynomial 0x1021, most significant bit first, no reflection,
# no final XOR) for any initial value, in C: about 400 times faster than ``CRC16.compute`` (3 ms
# for a 1 KiB frame, slower than a 3 Mbaud link), so the host uses it; checked here against the
# catalogue's parameters and check value, and in the tests against ``CRC16.compute``.
_ALG = CRC16.algorithm
assert (_ALG.crc_width, _ALG.polynomial, _ALG.reflect_input, _ALG.reflect_output,
        _ALG.xor_output) == (16, 0x1021, False, False, 0), _ALG
assert binascii.crc_hqx(b"123456789", _ALG.initial_crc) == CRC16.compute(b"123456789")


def crc16(data: bytes, crc: int = CRC16.algorithm.initial_crc) -> int:
    """Return the protocol's CRC (:data:`CRC16`) of ``data`` (``crc16(b"123456789") == 0x29B1``);
    ``crc`` continues from another register value."""
    return binascii.crc_hqx(bytes(data), crc)


def design_id(design) -> int:
    """Return a 32-bit identifier of what the board's gateware was built from.

    CRC-16 of the design's name in the high half, CRC-16 of its reset thresholds (``sample_bytes``
    LE each) in the low half; the board reports it in ``STATUS`` so that the host can refuse a
    board that carries another design.
    """
    sb = sample_bytes(design)
    thr = b"".join(int(t).to_bytes(sb, "little") for t in design.thresholds)
    return (crc16(design.name.encode()) << 16) | crc16(thr)


def sample_bytes(design) -> int:
    """Bytes per sample word on the link: ``ceil(input_bits / 8)``."""
    return (design.input_bits + 7) // 8


def output_bytes(design) -> int:
    """Bytes per MAC output word on the link: ``ceil(mac.output_bits / 8)`` (1 without a MAC)."""
    return 1 if design.mac is None else (design.mac.output_bits + 7) // 8


def unpack_acquired(body: bytes):
    """Return ``(raw, codes)`` of an ``ACQUIRE`` answer's records (the payload after the status
    byte), as int64 arrays; ``raw`` keeps all 16 bits of its word (a board sends 12)."""
    n = len(body) // ACQUIRE_RECORD_BYTES
    rec = np.frombuffer(bytes(body[:n * ACQUIRE_RECORD_BYTES]), dtype=np.uint8).reshape(n, 3)
    raw = rec[:, 0].astype(np.int64) | (rec[:, 1].astype(np.int64) << 8)
    return raw, rec[:, 2].astype(np.int64)


def pack_acquired(raw, codes) -> bytes:
    """Return ``ACQUIRE`` answer records (the inverse of :func:`unpack_acquired`)."""
    raw, codes = np.asarray(raw, dtype=np.int64), np.asarray(codes, dtype=np.int64)
    rec = np.stack([raw & 0xFF, (raw >> 8) & 0xFF, codes & 0xFF], axis=1).astype(np.uint8)
    return rec.tobytes()


def pack_frame(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """Return one frame's bytes."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes; at most {MAX_PAYLOAD}")
    body = struct.pack("<BBH", int(cmd) & 0xFF, seq & 0xFF, len(payload)) + payload
    return SYNC + body + struct.pack("<H", crc16(body))


def pack_words(values, nbytes: int) -> bytes:
    """Return ``values`` as little-endian ``nbytes``-byte words (two's complement if negative)."""
    if nbytes in (1, 2, 4):
        arr = np.asarray(values, dtype=np.int64) & ((1 << (8 * nbytes)) - 1)
        return arr.astype(f"<u{nbytes}").tobytes()
    mask = (1 << (8 * nbytes)) - 1
    return b"".join((int(v) & mask).to_bytes(nbytes, "little") for v in values)


def unpack_words(data: bytes, nbytes: int, *, signed: bool = False, bits: int | None = None):
    """Return the little-endian ``nbytes``-byte words of ``data`` (sign-extended from ``bits``)."""
    bits = bits or 8 * nbytes
    if nbytes in (1, 2, 4):
        n = len(data) // nbytes
        v = np.frombuffer(bytes(data[:n * nbytes]), dtype=f"<u{nbytes}").astype(np.int64)
        v &= (1 << bits) - 1
        if signed:
            v = np.where(v >> (bits - 1) != 0, v - (1 << bits), v)
        return v.tolist()
    out = []
    for i in range(0, len(data) - len(data) % nbytes, nbytes):
        v = int.from_bytes(data[i:i + nbytes], "little") & ((1 << bits) - 1)
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


class Frame(tuple):
    """A received frame: ``(cmd, seq, payload)``."""

    __slots__ = ()

    def __new__(cls, cmd: int, seq: int, payload: bytes):
        return super().__new__(cls, (cmd, seq, payload))

    cmd = property(lambda self: self[0])
    seq = property(lambda self: self[1])
    payload = property(lambda self: self[2])

    @property
    def status(self) -> int | None:
        return self.payload[0] if self.payload else None


class FrameParser:
    """Turn a byte stream into frames: hunts for the sync word, checks length and CRC.

    ``feed(data)`` returns the complete, CRC-good frames; bytes skipped while hunting and frames
    with a bad CRC are counted in ``skipped`` and ``bad_crc``.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD + 64):
        self.buf = bytearray()
        self.max_payload = max_payload
        self.skipped = 0
        self.bad_crc = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        frames = []
        while True:
            i = self.buf.find(SYNC)
            if i < 0:
                keep = 1 if self.buf[-1:] == SYNC[:1] else 0
                self.skipped += len(self.buf) - keep
                del self.buf[:len(self.buf) - keep]
                return frames
            if i:
                self.skipped += i
                del self.buf[:i]
            if len(self.buf) < HEADER_BYTES:
                return frames
            cmd, seq, length = struct.unpack_from("<BBH", self.buf, 2)
            if length > self.max_payload:
                self.skipped += 1
                del self.buf[:1]
                continue
            end = HEADER_BYTES + length + 2
            if len(self.buf) < end:
                return frames
            body = bytes(self.buf[2:HEADER_BYTES + length])
            (crc,) = struct.unpack_from("<H", self.buf, HEADER_BYTES + length)
            if crc16(body) != crc:
                self.bad_crc += 1
                del self.buf[:1]  # resynchronise on the next sync word
                continue
            frames.append(Frame(cmd, seq, body[4:]))
            del self.buf[:end]


class HostError(py_enum.Enum):
    """Why the host gave up on a frame (the report's ``failed`` reasons)."""

    TIMEOUT = "timeout"
    ERROR_RESPONSE = "error response"

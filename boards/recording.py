"""Recorded hardware-in-the-loop traffic, and its replay.

``adcforge hil ... --record FILE`` wraps the runner's transport in :class:`RecordingTransport`:
every write and every non-empty read, with its time, goes into FILE, together with the run's
samples, the runner's settings and its verdicts. ``adcforge hil --replay FILE DESIGN`` runs the
host side again (:func:`replay`) against :class:`ReplayTransport`, which answers with the
recorded bytes on a clock that follows the recording, and checks that

* the host sends the recorded bytes, write for write (the same frames, the same resends);
* it reaches the recorded verdicts (checked, mismatches, failed, not run, resends, ...);
* every recorded answer equals the golden model (the replayed run has no mismatch).

Format ``adcforge-hil-recording`` version 1, one JSON object (``docs/boards.md``)::

    {"format": "adcforge-hil-recording", "version": 1,
     "design": NAME, "design_id": "0x...", "mode": "codes" | "mac",
     "transport": "...", "board": NAME | null, "byte_rate": BYTES_PER_S | null,
     "runner": {"window", "max_tries", "frame_samples", "response_timeout", "silence_s"},
     "sample_bytes": B, "samples": BASE64 (B-byte little-endian words), "labels": [...] | null,
     "events": [[T_S, "w" | "r", BASE64] | [T_S, "gone", WHY], ...],
     "verdicts": {KEY: VALUE for KEY in VERDICT_KEYS}}

``T_S`` is seconds since the recording started; ``w`` is what the host wrote, ``r`` what a
read returned (the host's view: after any injected faults), ``gone`` the board vanishing.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

from adcforge.design import Design

from .hil import BoardGone, HilError, HilRunner, Transport
from .protocol import FrameParser, design_id, pack_words, sample_bytes, unpack_words

FORMAT = "adcforge-hil-recording"
VERSION = 1

#: the report's keys that a replay must reproduce
VERDICT_KEYS = ("samples", "checked", "mismatches", "mismatched_outputs", "retried", "failed",
                "not_run", "frames_sent", "resends", "timeouts", "lost_frames",
                "error_responses", "stray_responses", "resets_detected", "bytes_sent",
                "bytes_received", "aborted")

#: seconds of the replay's clock by which the host may be later than the recording with a write
LATE_S = 30.0


class ReplayDiverged(HilError):
    """The replayed host did not do what the recorded host did."""


def _b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


class RecordingTransport(Transport):
    """Pass everything to ``inner`` and keep every write and non-empty read with its time."""

    def __init__(self, inner: Transport):
        self.inner = inner
        self.byte_rate = inner.byte_rate
        self.t0 = inner.clock()
        self.events: list[list] = []

    def clock(self) -> float:
        return self.inner.clock()

    def _t(self) -> float:
        return round(self.clock() - self.t0, 6)

    def write(self, data: bytes) -> None:
        self.events.append([self._t(), "w", _b64(data)])
        self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        try:
            data = self.inner.read(timeout)
        except BoardGone as exc:
            self.events.append([self._t(), "gone", str(exc)])
            raise
        if data:
            self.events.append([self._t(), "r", _b64(data)])
        return data

    def close(self) -> None:
        self.inner.close()


def save_recording(path, recorder: RecordingTransport, runner: HilRunner, samples, report: dict,
                   *, labels=None, board: str | None = None) -> Path:
    """Write the recording of one run (see the module docstring for the format)."""
    d = runner.design
    sb = sample_bytes(d)
    doc = {
        "format": FORMAT, "version": VERSION, "design": d.name,
        "design_id": f"{design_id(d):#010x}", "mode": runner.mode,
        "transport": report.get("transport"), "board": board, "byte_rate": recorder.byte_rate,
        "runner": {"window": runner.initial_window, "max_tries": runner.max_tries,
                   "frame_samples": runner.frame_samples,
                   "response_timeout": runner.response_timeout, "silence_s": runner.silence_s},
        "sample_bytes": sb,
        "samples": _b64(pack_words(np.asarray(samples, dtype=np.int64).ravel(), sb)),
        "labels": None if labels is None else [int(v) for v in labels],
        "events": recorder.events,
        "verdicts": {k: report.get(k) for k in VERDICT_KEYS},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    return path


def load_recording(path, design: Design) -> dict:
    """Read a recording made with ``design``; one-line errors for anything else."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise HilError(f"no recording {path}") from None
    except (OSError, ValueError) as exc:
        raise HilError(f"{path} is not an adcforge HIL recording (not JSON: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HilError(f"{path} is not an adcforge HIL recording (format "
                       f"{doc.get('format') if isinstance(doc, dict) else None!r}, expected "
                       f"{FORMAT!r})")
    if doc.get("version") != VERSION:
        raise HilError(f"{path} is {FORMAT} version {doc.get('version')!r}; this adcforge "
                       f"replays version {VERSION}")
    want = f"{design_id(design):#010x}"
    if doc.get("design") != design.name or doc.get("design_id") != want:
        raise HilError(f"{path} was recorded with design {doc.get('design')!r} (id "
                       f"{doc.get('design_id')}), not {design.name!r} (id {want})")
    missing = [k for k in ("mode", "runner", "samples", "sample_bytes", "events", "verdicts")
               if k not in doc]
    if missing:
        raise HilError(f"{path}: the recording lacks {', '.join(missing)}")
    return doc


class ReplayTransport(Transport):
    """Answer with a recording's reads on a clock that follows its times; check every write.

    A read returns the next recorded read (the clock moves to its time) unless the recorded
    host wrote first: then nothing comes and the clock advances by the read's timeout, until
    the replayed host writes (``LATE_S`` late at most).
    """

    def __init__(self, events: list, byte_rate: float | None):
        self.events = events
        self.byte_rate = byte_rate
        self.pos = 0
        self.now = 0.0
        self.writes = 0

    def clock(self) -> float:
        return self.now

    def _next(self):
        return self.events[self.pos] if self.pos < len(self.events) else None

    def _where(self) -> str:
        return f"at {self.now:.3f} s, write {self.writes + 1}"

    def write(self, data: bytes) -> None:
        ev = self._next()
        if ev is None or ev[1] != "w":
            raise ReplayDiverged(f"the host sent a frame the recording does not have "
                                 f"({self._where()}: {_describe(data)})")
        want = base64.b64decode(ev[2])
        if want != bytes(data):
            raise ReplayDiverged(f"the host sent {_describe(data)} where the recording has "
                                 f"{_describe(want)} ({self._where()})")
        self.now = max(self.now, ev[0])
        self.pos += 1
        self.writes += 1

    def read(self, timeout: float) -> bytes:
        ev = self._next()
        if ev is not None and ev[1] == "r":
            self.now = max(self.now, ev[0])
            self.pos += 1
            return base64.b64decode(ev[2])
        if ev is not None and ev[1] == "gone":
            self.now = max(self.now, ev[0])
            self.pos += 1
            raise BoardGone(ev[2])
        self.now += timeout
        if ev is not None and self.now > ev[0] + LATE_S:
            raise ReplayDiverged(f"the host did not send what the recorded host sent at "
                                 f"{ev[0]:.3f} s ({_describe(base64.b64decode(ev[2]))})")
        return b""


def _describe(data: bytes) -> str:
    frames = FrameParser().feed(bytes(data))
    if not frames:
        return f"{len(data)} bytes"
    return ", ".join(f"frame cmd {f.cmd:#04x} seq {f.seq} ({len(f.payload)} payload bytes, CRC "
                     f"{int.from_bytes(bytes(data)[-2:], 'little'):#06x})" for f in frames)


def replay(path, design: Design) -> dict:
    """Replay the recording at ``path`` (made with ``design``); return the replayed report with
    ``replay`` (what was compared) added. Raises :class:`ReplayDiverged` where the host does
    something else than the recorded host did."""
    doc = load_recording(path, design)
    sb = doc["sample_bytes"]
    samples = np.array(unpack_words(base64.b64decode(doc["samples"]), sb), dtype=np.int64)
    transport = ReplayTransport(doc["events"], doc.get("byte_rate"))
    r = doc["runner"]
    runner = HilRunner(transport, design, mode=doc["mode"], window=r["window"],
                       max_tries=r["max_tries"], frame_samples=r["frame_samples"],
                       response_timeout=r["response_timeout"], silence_s=r["silence_s"])
    report = runner.run(samples)
    if transport.pos != len(transport.events):
        left = len(transport.events) - transport.pos
        raise ReplayDiverged(f"the host finished with {left} recorded events not replayed "
                             f"(the next at {transport.events[transport.pos][0]:.3f} s)")
    recorded = doc["verdicts"]
    differ = [k for k in VERDICT_KEYS if report.get(k) != recorded.get(k)]
    if differ:
        k = differ[0]
        raise ReplayDiverged(f"the replayed host reached other verdicts: {k} "
                             f"{report.get(k)!r}, recorded {recorded.get(k)!r}"
                             + (f" (and {len(differ) - 1} more)" if len(differ) > 1 else ""))
    from .hil import accuracy_fields
    report.update(accuracy_fields(design, runner, doc.get("labels")))
    report["replay"] = {"recording": str(path), "writes": transport.writes,
                        "events": len(transport.events), "board": doc.get("board"),
                        "transport": doc.get("transport"),
                        "verdicts_equal": list(VERDICT_KEYS)}
    return report

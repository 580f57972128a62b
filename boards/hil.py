"""Hardware in the loop: stream samples to a board, check every answer against the golden model.

The runner speaks :mod:`boards.protocol` over a :class:`Transport`: :class:`SerialTransport`
(pyserial) for a real board and for the simulated board (a Verilator model behind a pty, see
:mod:`boards.simboard`), so both run the same serial code path. :class:`FaultyTransport` wraps a
transport and injects link faults (dropped, corrupted and garbage bytes, a frame cut short, a
board reset) for the tests.

Flow control is a window of frames in flight; the board answers in order, so a response to a
later frame proves that every earlier frame without an answer was lost, and those are resent at
once. A frame is also resent when its answer is an error or does not come in time; after
``max_tries`` sends its samples are counted as failed. ``retried`` counts the samples that
needed more than one send.

A board that vanishes (its serial port closes or errs: a pulled cable, a hard reset, the
simulated board's process ended) or falls silent (no answer for ``silence_s``) ends the run:
:attr:`HilRunner.aborted` says so in one line (after how many checked samples, at which
frame), and the samples without a verdict are counted as ``not_run``. Every sample ends as
``checked``, ``failed`` or ``not_run``; the report is complete either way.

Every count of the report is in one unit, samples (``unit: samples``): in MAC mode a wrong
output makes every sample of its inference a mismatch, and ``mismatched_outputs`` counts the
outputs themselves.

With ``source="pmod-ad1"`` the samples are the board's own (a Pmod AD1, :mod:`boards.pmod_ad1`):
the runner sends ``ACQUIRE`` frames instead of ``CODES`` frames, and each answer carries the raw
12-bit samples the board converted with their codes; the runner maps every raw sample to the
design's input word (:func:`adcforge.design.sensor_to_samples`, the gateware's rule) and checks
its code against the golden model. A resent ``ACQUIRE`` converts new samples: a frame's samples
are known when its answer arrives.
"""

from __future__ import annotations

import collections
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from adcforge.design import Design, sensor_to_samples
from adcforge.errors import AdcforgeError
from adcforge.golden import code_coverage

from .protocol import (ACQUIRE_RECORD_BYTES, ADC_BITS, MAX_ACQUIRE, MAX_SAMPLES, OVERHEAD_BYTES,
                       RESPONSE, STATUS_FIELDS, Command, FrameParser, Status, design_id,
                       output_bytes, pack_frame, pack_words, sample_bytes, unpack_acquired,
                       unpack_words)


#: result words the board top buffers (``BoardTop(buffer_depth=...)``)
RESULT_BUFFER = 2048
#: where the samples come from: the host's (``CODES``/``MAC`` frames) or the board's Pmod AD1
SOURCES = ("uart", "pmod-ad1")
#: ``ACQUIRE`` frames in flight at most: their requests (10 bytes each) wait in the board's
#: 32-byte receive FIFO while it converts
ACQUIRE_WINDOW = 3


class HilError(AdcforgeError):
    """The board cannot be used for hardware in the loop (wrong design, no answer, no port)."""


def check_port(port: str | None) -> None:
    """Refuse a real board without its serial port, in one line."""
    if not port:
        raise HilError("--board needs --port (the board's serial port, e.g. /dev/ttyUSB1)")


class BoardGone(HilError):
    """The link to the board ended mid-run: its serial port closed or stopped taking bytes."""


# -- transports ------------------------------------------------------------------------------


class Transport:
    """A byte pipe to a board. ``byte_rate``: the link's bytes/s when known (baud / 10)."""

    byte_rate: float | None = None

    def clock(self) -> float:
        """Return the time in seconds that the runner's deadlines count in (monotonic)."""
        return time.monotonic()

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def read(self, timeout: float) -> bytes:
        """Return what has arrived, waiting up to ``timeout`` s for the first byte."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class SerialTransport(Transport):
    """A serial port through pyserial (a board's USB UART, or the simulated board's pty)."""

    def __init__(self, port: str, baud: int = 3_000_000):
        import serial
        try:
            self.ser = serial.Serial(port, baud, timeout=0, write_timeout=10)
        except serial.SerialException as exc:
            text = str(exc)
            if "Permission denied" in text or "Errno 13" in text:
                raise HilError(f"no permission to open {port}: add yourself to the group that "
                               f"owns it (`sudo usermod -aG dialout $USER`, then log in again)") \
                    from None
            if "No such file" in text or "Errno 2" in text:
                raise HilError(f"no serial port {port}: is the board plugged in? (the "
                               f"iCEBreaker's UART is the FT2232H's second port, usually "
                               f"/dev/ttyUSB1)") from None
            raise HilError(f"cannot open {port}: {text}") from None
        self.byte_rate = baud / 10
        self.port = port

    def write(self, data: bytes) -> None:
        import serial
        try:
            self.ser.write(data)
        except serial.SerialTimeoutException:
            raise BoardGone(f"the board stopped taking bytes on {self.port}") from None
        except (serial.SerialException, OSError, TypeError):
            # TypeError: pyserial's write on a port whose file descriptor is gone
            raise BoardGone(f"the serial port {self.port} closed") from None

    def read(self, timeout: float) -> bytes:
        import serial
        try:
            self.ser.timeout = timeout
            first = self.ser.read(1)
            if not first:
                return b""
            waiting = self.ser.in_waiting
            return first + (self.ser.read(waiting) if waiting else b"")
        except (serial.SerialException, OSError, TypeError):
            raise BoardGone(f"the serial port {self.port} closed") from None

    def close(self) -> None:
        try:
            self.ser.close()
        except (OSError, Exception):  # a port that vanished cannot be closed cleanly
            pass


@dataclass
class Fault:
    """One fault at a byte offset of the outgoing stream (``kind`` in :data:`FAULT_KINDS`)."""

    kind: str
    at: int


FAULT_KINDS = ("drop", "corrupt", "garbage", "cut", "reset", "vanish", "rx_corrupt",
               "rx_drop")


class FaultyTransport(Transport):
    """Inject faults into another transport.

    Outgoing: ``drop`` (one byte lost), ``corrupt`` (one byte's bits flipped), ``garbage`` (16
    random bytes inserted), ``cut`` (the rest of that write lost: the board sees a frame stop,
    the host sees no answer — a timeout), ``reset`` (``on_reset`` is called: the board is reset
    while the byte is in flight), ``vanish`` (``on_vanish`` is called: the board disappears, as
    when its cable is pulled; the rest of that write is lost). Incoming (the board's answers,
    offsets in received bytes): ``rx_corrupt``, ``rx_drop``.
    """

    def __init__(self, inner: Transport, faults: list[Fault], *, on_reset: Callable | None = None,
                 on_vanish: Callable | None = None, seed: int = 0):
        for f in faults:
            if f.kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {f.kind!r}; known: {', '.join(FAULT_KINDS)}")
        self.inner = inner
        self.byte_rate = inner.byte_rate
        self.out_faults = sorted((f for f in faults if not f.kind.startswith("rx_")),
                                 key=lambda f: f.at)
        self.in_faults = sorted((f for f in faults if f.kind.startswith("rx_")), key=lambda f: f.at)
        self.on_reset = on_reset
        self.on_vanish = on_vanish
        self.clock = inner.clock
        self.sent = 0
        self.received = 0
        self.injected: list[str] = []
        self.rng = random.Random(seed)

    def write(self, data: bytes) -> None:
        out = bytearray()
        for i, b in enumerate(data):
            pos = self.sent + i
            cut = False
            while self.out_faults and self.out_faults[0].at <= pos:
                f = self.out_faults.pop(0)
                self.injected.append(f"{f.kind}@{f.at}")
                if f.kind == "drop":
                    b = None
                elif f.kind == "corrupt" and b is not None:
                    b ^= 0x5A
                elif f.kind == "garbage":
                    out += bytes(self.rng.randrange(256) for _ in range(16))
                elif f.kind == "cut":
                    cut = True
                elif f.kind == "reset" and self.on_reset:
                    self.inner.write(bytes(out))
                    out.clear()
                    time.sleep(0.05)  # let the board take the bytes so far: a reset mid-frame
                    self.on_reset()
                elif f.kind == "vanish" and self.on_vanish:
                    self.inner.write(bytes(out))
                    out.clear()
                    self.on_vanish()
                    cut = True
            if cut:
                break
            if b is not None:
                out.append(b)
        self.sent += len(data)
        self.inner.write(bytes(out))

    def read(self, timeout: float) -> bytes:
        data = bytearray(self.inner.read(timeout))
        start = self.received
        self.received += len(data)
        drop = []
        while self.in_faults and self.in_faults[0].at < self.received:
            f = self.in_faults.pop(0)
            i = max(0, f.at - start)
            self.injected.append(f"{f.kind}@{f.at}")
            if f.kind == "rx_corrupt":
                data[i] ^= 0xA5
            else:
                drop.append(i)
        for i in sorted(drop, reverse=True):
            del data[i]
        return bytes(data)

    def close(self) -> None:
        self.inner.close()


# -- the runner ------------------------------------------------------------------------------


def inflight_jobs(inflight) -> list:
    """Return the jobs of a window of frames in flight (``seq -> (job, deadline)``)."""
    return [job for job, _ in inflight.values()]


@dataclass
class Job:
    """One frame's worth of work."""

    index: int
    cmd: int
    payload: bytes
    samples: np.ndarray | None = None
    expected: np.ndarray | None = None
    tries: int = 0
    done: bool = False
    kind: str = "data"  # data | load | status | acquire (samples: placeholders until answered)


@dataclass
class HilStats:
    samples: int = 0
    checked: int = 0
    mismatches: int = 0
    mismatched_outputs: int = 0
    retried: int = 0
    failed: int = 0
    not_run: int = 0
    frames_sent: int = 0
    frames_ok: int = 0
    resends: int = 0
    timeouts: int = 0
    lost: int = 0
    error_responses: dict = field(default_factory=dict)
    stray_responses: int = 0
    resets_detected: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    useful_bytes: int = 0
    first_mismatches: list = field(default_factory=list)


class HilRunner:
    """Stream samples through a board over ``transport`` and check them (see module docstring).

    ``mode``: ``"codes"`` (samples → codes) or ``"mac"`` (samples → MAC outputs).
    ``source``: ``"uart"`` (the host streams samples) or ``"pmod-ad1"`` (the board converts
    them: ``ACQUIRE`` frames of up to ``MAX_ACQUIRE`` samples, codes only; :meth:`run` then
    takes the number of samples).
    """

    def __init__(self, transport: Transport, design: Design, *, mode: str | None = None,
                 window: int = 4, max_tries: int = 6, frame_samples: int = MAX_SAMPLES,
                 response_timeout: float = 0.5, progress: Callable | None = None,
                 silence_s: float = 15.0, source: str = "uart"):
        self.t = transport
        self.clock = transport.clock  # a replayed run's is the recording's
        self.design = design
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        self.source = source
        self.board_name: str | None = None  # for messages: the board, when known
        self.mode = mode or ("mac" if design.mac is not None and source == "uart" else "codes")
        if self.mode not in ("codes", "mac"):
            raise ValueError(f"mode must be 'codes' or 'mac', not {self.mode!r}")
        if self.mode == "mac" and design.mac is None:
            raise HilError(f"design {design.name} has no MAC layer: use --mode codes")
        if self.mode == "mac" and source != "uart":
            raise HilError(f"--source {source} checks codes (the board digitises its own "
                           f"samples with the ladder): use --mode codes")
        self.window = window
        self.initial_window = window
        self.max_tries = max_tries
        spi = design.samples_per_inference if self.mode == "mac" else 1
        limit = MAX_SAMPLES if source == "uart" else MAX_ACQUIRE
        self.frame_samples = max(spi, (min(frame_samples, limit) // spi) * spi)
        self.response_timeout = response_timeout
        self.progress = progress
        self.sb = sample_bytes(design)
        self.stats = HilStats()
        self.results: dict[int, np.ndarray] = {}  # data frame index -> the board's answers
        self.parser = FrameParser()
        self.seq = 0
        self.status_words: dict | None = None
        self.runtime_thresholds: bool | None = None
        self.silence_s = silence_s
        self.aborted: str | None = None
        self.probe_rate: float | None = None
        self.abort_frame: int | None = None
        self.data_frames = 0

    # -- frames ----------------------------------------------------------------------------

    def _send(self, job: Job, inflight: "collections.OrderedDict") -> None:
        self.seq = (self.seq + 1) & 0xFF
        while self.seq in inflight:
            self.seq = (self.seq + 1) & 0xFF
        frame = pack_frame(job.cmd, self.seq, job.payload)
        job.tries += 1
        if job.tries == 2 and job.samples is not None:
            self.stats.retried += len(job.samples)
        if job.tries > 1:
            self.stats.resends += 1
        queued = sum(len(j.payload) + OVERHEAD_BYTES for j, _ in inflight.values())
        rate = self.t.byte_rate or self._measured_rate()
        deadline = (self.clock() + self.response_timeout
                    + 3 * (queued + len(frame) + self._response_bytes(job)) / rate)
        inflight[self.seq] = (job, deadline)
        self.t.write(frame)
        self.stats.frames_sent += 1
        self.stats.bytes_sent += len(frame)

    def _window(self) -> int:
        """Frames in flight: at most ``window``, and no more results outstanding than three
        quarters of the board's result buffer (``RESULT_BUFFER`` words), whose answers may
        drain no faster than requests arrive (8-bit samples: one byte in, one byte out)."""
        per_frame = self.frame_samples
        if self.mode == "mac":
            per_frame = per_frame // self.design.samples_per_inference * self.design.mac.outputs
        window = min(self.window, ACQUIRE_WINDOW) if self.source != "uart" else self.window
        return max(1, min(window, (RESULT_BUFFER * 3 // 4) // max(per_frame, 1)))

    def _measured_rate(self) -> float:
        """Bytes/s the link carries (for a link of unknown speed: the simulated board, whose
        speed is the Verilator model's): at first the handshake's round trip, then the larger
        of the bytes answered and the bytes received per second so far, at least 100 B/s;
        answers are awaited for three times the expected time."""
        elapsed = self.clock() - getattr(self, "_t0", self.clock())
        moved = max(self.stats.useful_bytes, self.stats.bytes_received)
        if elapsed < 0.5 or moved == 0:
            return self.probe_rate or 5_000.0
        return max(100.0, moved / elapsed)

    def _response_bytes(self, job: Job) -> int:
        if job.kind == "acquire":
            return OVERHEAD_BYTES + 1 + ACQUIRE_RECORD_BYTES * len(job.samples)
        if job.expected is None:
            return OVERHEAD_BYTES + 1 + 4 * len(STATUS_FIELDS)
        return OVERHEAD_BYTES + 1 + len(job.expected) * (output_bytes(self.design)
                                                         if self.mode == "mac" else 1)

    def _data_jobs(self, samples: np.ndarray) -> list[Job]:
        from adcforge.golden import ref_adc_pipeline, ref_comparator_ladder
        jobs = []
        n = self.frame_samples
        cmd = Command.MAC.value if self.mode == "mac" else Command.CODES.value
        for k, start in enumerate(range(0, len(samples), n)):
            chunk = samples[start:start + n]
            if self.mode == "codes":
                expected = ref_comparator_ladder(chunk, self.design.thresholds)
            else:
                spi = self.design.samples_per_inference
                expected = ref_adc_pipeline(self.design, chunk.reshape(-1, spi))["outputs"].ravel()
            jobs.append(Job(k, cmd, pack_words(chunk, self.sb), chunk, expected))
        self.expected_by_frame = {job.index: job.expected for job in jobs}
        self.data_frames = len(jobs)
        return jobs

    def _acquire_jobs(self, n: int) -> list[Job]:
        """``ACQUIRE`` frames for ``n`` samples; a job's samples are placeholders (-1) until
        its answer brings the board's."""
        jobs = []
        for k, start in enumerate(range(0, n, self.frame_samples)):
            count = min(self.frame_samples, n - start)
            jobs.append(Job(k, Command.ACQUIRE.value, pack_words([count], 2),
                            np.full(count, -1, dtype=np.int64), kind="acquire"))
        self.expected_by_frame = {}
        self.raw_by_frame: dict[int, np.ndarray] = {}
        self.data_frames = len(jobs)
        return jobs

    def _load_job(self, thresholds) -> Job:
        return Job(-1, Command.LOAD_THRESHOLDS.value, pack_words(thresholds, self.sb),
                   kind="load")

    def _status_job(self) -> Job:
        return Job(-1, Command.STATUS.value, b"", kind="status")

    # -- the loop --------------------------------------------------------------------------

    def handshake(self, timeout: float = 3.0) -> dict:
        """Ask the board for its status; check it carries this design; return the counters."""
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            t = self.clock()
            self._run_jobs([self._status_job()], give_up=deadline)
            if self.status_words is not None:
                # the round trip's bytes per second: the first frames' deadlines use it
                status_bytes = 2 * OVERHEAD_BYTES + 1 + 4 * len(STATUS_FIELDS)
                self.probe_rate = status_bytes / max(self.clock() - t, 1e-3)
                break
        if self.status_words is None:
            raise HilError("the board does not answer STATUS: check the port, the baud rate and "
                           "that the board carries an adcforge bitstream (`adcforge board flash`)")
        want = design_id(self.design)
        if self.status_words["design_id"] != want:
            raise HilError(f"the board carries another design (id {self.status_words['design_id']:#010x}, "
                           f"expected {want:#010x} for {self.design.name}): build and flash this "
                           f"design first")
        return self.status_words

    def run(self, samples, *, load_thresholds: bool = True) -> dict:
        """Stream ``samples`` (1-D ints in ``[0, 2**input_bits)``), check them; return a report.
        With the board's own source (``source="pmod-ad1"``) ``samples`` is how many to take."""
        if self.source == "uart":
            samples = np.asarray(samples, dtype=np.int64).ravel()
            if self.mode == "mac":
                spi = self.design.samples_per_inference
                samples = samples[:len(samples) - len(samples) % spi]
            n = len(samples)
        else:
            n = int(samples)
            if n < 1:
                raise HilError(f"--samples must be at least 1, not {n}")
        self.stats.samples = n
        t0 = self.clock()
        jobs = []
        if load_thresholds:  # exercises the runtime ladder; the values are the design's own
            jobs.append(self._load_job(self.design.thresholds))
        jobs += self._data_jobs(samples) if self.source == "uart" else self._acquire_jobs(n)
        self._t0 = self.clock()
        try:
            self.handshake()
        except BoardGone as exc:  # gone before the first sample: every sample is not run
            self._abort("board disconnected", str(exc), jobs, {})
        else:
            self._t0 = self.clock()
            self._run_jobs(jobs)
        elapsed = self.clock() - self._t0
        s = self.stats
        report = {
            "design": self.design.name, "mode": self.mode, "unit": "samples",
            "samples": s.samples, "checked": s.checked, "mismatches": s.mismatches,
            "mismatched_outputs": s.mismatched_outputs if self.mode == "mac" else None,
            "retried": s.retried,
            "failed": s.failed, "not_run": s.not_run, "elapsed_s": round(elapsed, 3),
            "samples_per_s": round(s.checked / elapsed, 1) if elapsed > 0 else None,
            "frames_sent": s.frames_sent, "resends": s.resends, "timeouts": s.timeouts,
            "lost_frames": s.lost, "error_responses": dict(s.error_responses),
            "stray_responses": s.stray_responses, "resets_detected": s.resets_detected,
            "bytes_sent": s.bytes_sent, "bytes_received": s.bytes_received,
            "useful_bytes": s.useful_bytes,
            # the line that carries the samples: to the board, or (the board's own) from it
            "line_efficiency": (round(s.useful_bytes / line, 4)
                                if (line := s.bytes_sent if self.source == "uart"
                                    else s.bytes_received) else None),
            "first_mismatches": s.first_mismatches[:10],
            "runtime_thresholds": self.runtime_thresholds,
            "aborted": self.aborted, "aborted_at_frame": self.abort_frame,
            "data_frames": self.data_frames,
            "total_s": round(self.clock() - t0, 3),
        }
        if self.t.byte_rate and elapsed > 0:
            report["link_utilisation"] = round(s.useful_bytes / elapsed / self.t.byte_rate, 4)
        answered = [j.samples for j in jobs if j.samples is not None and j.index in self.results]
        report.update(code_coverage(self.design, np.concatenate(answered) if answered else []))
        if self.source != "uart":
            report["source"] = self.source
            raw = [self.raw_by_frame[k] for k in sorted(self.raw_by_frame)]
            raw = np.concatenate(raw) if raw else np.zeros(0, dtype=np.int64)
            report.update({
                "adc_bits": ADC_BITS, "raw_min": int(raw.min()) if len(raw) else None,
                "raw_max": int(raw.max()) if len(raw) else None,
                "raw_distinct": int(len(np.unique(raw))),
                "raw_first": raw[:16].tolist()})
        assert s.checked + s.failed + s.not_run == s.samples, \
            "every sample is checked, failed or not run"
        return report

    def _run_jobs(self, jobs: list[Job], give_up: float | None = None) -> None:
        """Send ``jobs`` and handle their answers; a vanished board ends the run (``_abort``),
        except during the handshake (``give_up`` set), where :class:`BoardGone` is raised."""
        pending = collections.deque(jobs)
        inflight: collections.OrderedDict = collections.OrderedDict()
        try:
            self._loop(pending, inflight, give_up)
        except BoardGone as exc:
            if give_up is not None:
                raise
            self._abort("board disconnected", str(exc), pending, inflight)
        if self.progress:
            self.progress(self.stats, self.clock() - getattr(self, "_t0", self.clock()),
                          self.t.byte_rate)

    def _abort(self, what: str, why: str, pending, inflight) -> None:
        """End the run: every sample without a verdict is ``not_run``; say so in one line."""
        left = [j for j in list(inflight_jobs(inflight)) + list(pending) if not j.done]
        data = sorted({j.index: j for j in left if j.samples is not None}.values(),
                      key=lambda j: j.index)
        for job in left:
            job.done = True
        self.stats.not_run += sum(len(j.samples) for j in data)
        n = self.frame_samples
        if data:
            k = data[0].index
            self.abort_frame = k
            at = (f"at frame {k} of {self.data_frames} (samples {k * n:,}–"
                  f"{k * n + len(data[0].samples) - 1:,})")
        else:
            at = "after the last frame"
        self.aborted = (f"{what} after {self.stats.checked:,} checked samples, {at}: "
                        f"{self.stats.not_run:,} of {self.stats.samples:,} samples not run ({why})")

    def _loop(self, pending, inflight, give_up) -> None:
        last_progress = 0.0
        self._last_answer = self.clock()
        while pending or inflight:
            if give_up is not None and self.clock() > give_up:
                return
            if self.clock() - self._last_answer > self.silence_s:
                # the board stopped answering altogether: what is left is not run, and says why
                self._abort("board silent", f"no answer for {self.silence_s:g} s", pending,
                            inflight)
                return
            while pending and len(inflight) < self._window():
                job = pending.popleft()
                if not job.done:
                    self._send(job, inflight)
            data = self.t.read(0.01)
            if data:
                self.stats.bytes_received += len(data)
                for frame in self.parser.feed(data):
                    self._last_answer = self.clock()
                    self._handle(frame, inflight, pending)
            now = self.clock()
            expired = [q for q, (_, deadline) in inflight.items() if now > deadline]
            if expired:
                self.stats.timeouts += len(expired)
                for q in expired:
                    job, _ = inflight.pop(q)
                    self._retry(job, pending)
                # the board may have been reset: check (and a status probe resynchronises)
                if not any(j.kind == "status" for j in pending):
                    pending.appendleft(self._status_job())
            if self.progress and now - last_progress > 0.2:
                last_progress = now
                self.progress(self.stats, now - getattr(self, "_t0", now), self.t.byte_rate)

    def _retry(self, job: Job, pending) -> None:
        if job.done:
            return
        if job.tries >= self.max_tries:
            job.done = True
            if job.samples is not None:
                self.stats.failed += len(job.samples)
            return
        pending.appendleft(job)

    def _handle(self, frame, inflight, pending) -> None:
        entry = inflight.get(frame.seq)
        if entry is None or frame.cmd != (entry[0].cmd | RESPONSE):
            self.stats.stray_responses += 1
            return
        job, _ = entry
        # the board answers in order: frames sent before this one without an answer are lost
        for q in list(inflight):
            if q == frame.seq:
                break
            lost, _ = inflight.pop(q)
            self.stats.lost += 1
            self._retry(lost, pending)
        del inflight[frame.seq]
        status = frame.status
        if job.kind == "load" and status == Status.UNSUPPORTED.value:
            job.done = True  # a build with constant thresholds: they are the design's anyway
            self.runtime_thresholds = False
            return
        if job.kind == "load" and status == Status.OK.value:
            self.runtime_thresholds = True
        if job.kind == "acquire" and status == Status.UNKNOWN_COMMAND.value:
            raise HilError(
                "the board's bitstream has no sample source (ACQUIRE answered "
                "UNKNOWN_COMMAND): build and flash it with the source, `adcforge board build "
                f"{self.board_name or 'BOARD'} {self.design.name} --source {self.source}` then "
                f"`adcforge board flash`")
        if status != Status.OK.value:
            try:
                name = Status(status).name
            except ValueError:
                name = f"status {status}"
            self.stats.error_responses[name] = self.stats.error_responses.get(name, 0) + 1
            if status == Status.OVERFLOW.value:  # the board could not keep up: fewer in flight
                self.window = max(1, self.window - 1)
            self._retry(job, pending)
            return
        body = frame.payload[1:]
        if job.kind == "status":
            words = dict(zip(STATUS_FIELDS, unpack_words(body, 4)))
            if (self.status_words is not None
                    and words["frames_ok"] < self.status_words["frames_ok"]):
                self.stats.resets_detected += 1
            self.status_words = words
            job.done = True
            return
        if job.kind == "load":
            job.done = True
            return
        if job.kind == "acquire":
            self._take_acquired(job, body, pending)
            return
        if self.mode == "mac":
            got = np.array(unpack_words(body, output_bytes(self.design), signed=True,
                                        bits=8 * output_bytes(self.design)), dtype=np.int64)
        else:
            got = np.frombuffer(body, dtype=np.uint8).astype(np.int64)
        if len(got) != len(job.expected):
            self.stats.error_responses["short answer"] = \
                self.stats.error_responses.get("short answer", 0) + 1
            self._retry(job, pending)
            return
        self._check(job, got, len(job.payload))

    def _take_acquired(self, job: Job, body: bytes, pending) -> None:
        """An ``ACQUIRE`` answer: the board's raw samples and codes; the samples become the
        job's, their golden codes its expected answers."""
        from adcforge.golden import ref_comparator_ladder
        raw, got = unpack_acquired(body)
        if (len(body) != ACQUIRE_RECORD_BYTES * len(job.samples)
                or np.any(raw >> ADC_BITS)):
            why = "short answer" if len(raw) != len(job.samples) else "bad sample record"
            self.stats.error_responses[why] = self.stats.error_responses.get(why, 0) + 1
            self._retry(job, pending)
            return
        job.samples = sensor_to_samples(raw, ADC_BITS, self.design.input_bits).astype(np.int64)
        job.expected = ref_comparator_ladder(job.samples, self.design.thresholds)
        self.expected_by_frame[job.index] = job.expected
        self.raw_by_frame[job.index] = raw
        self._check(job, got, len(body))

    def _check(self, job: Job, got: np.ndarray, useful: int) -> None:
        """Count a data frame's answer against its expected results."""
        job.done = True
        self.results[job.index] = got
        self.stats.frames_ok += 1
        self.stats.checked += len(job.samples)
        self.stats.useful_bytes += useful
        bad = np.flatnonzero(got != job.expected)
        if len(bad):
            if self.mode == "mac":  # counted in samples: every sample of a wrong inference
                m, spi = self.design.mac.outputs, self.design.samples_per_inference
                self.stats.mismatches += len(np.unique(bad // m)) * spi
                self.stats.mismatched_outputs += len(bad)
            else:
                self.stats.mismatches += len(bad)
            for i in bad[:10 - len(self.stats.first_mismatches)]:
                self.stats.first_mismatches.append(
                    {"frame": job.index, "index": int(i), "expected": int(job.expected[i]),
                     "got": int(got[i])})


# -- one call for the command line and the tests ---------------------------------------------


def accuracy_fields(design: Design, runner: "HilRunner | None" = None, labels=None) -> dict:
    """Return ``hw_accuracy``/``sw_accuracy`` of a classifier design, or nulls with the reason.

    With ``labels`` (one per inference of the samples streamed, from :func:`sim.samples.task_frames`), the
    board's MAC outputs are scored by ``argmax`` (ties to the lowest index, as `learn` does),
    and so are the golden model's for the same samples (``sw_accuracy``). Frames that failed
    are left out of both.
    """
    from sim.samples import why_no_task

    reason = why_no_task(design)
    if labels is None or runner is None or runner.mode != "mac" or reason is not None:
        note = reason or "the samples streamed were not a labelled test set"
        return {"hw_accuracy": None, "sw_accuracy": None, "accuracy_note": note}
    spi, m = design.samples_per_inference, design.mac.outputs
    hw, sw, lab = [], [], []
    per_frame = runner.frame_samples // spi
    for k, got in sorted(runner.results.items()):
        if k < 0:
            continue
        rows = got.reshape(-1, m)
        hw.append(np.argmax(rows, axis=1))
        lab.append(np.asarray(labels)[k * per_frame:k * per_frame + len(rows)])
        sw.append(np.argmax(runner.expected_by_frame[k].reshape(-1, m), axis=1))
    if not hw:
        return {"hw_accuracy": None, "sw_accuracy": None, "accuracy_note": "no frame answered"}
    hw, sw, lab = np.concatenate(hw), np.concatenate(sw), np.concatenate(lab)
    return {"hw_accuracy": round(float((hw == lab).mean()), 4),
            "sw_accuracy": round(float((sw == lab).mean()), 4),
            "accuracy_inferences": int(len(lab)),
            "accuracy_note": f"argmax of the POST outputs over {len(lab)} test images"}


def run_hil(design: Design, samples, *, sim: bool = True, port: str | None = None,
            baud: int = 3_000_000, mode: str | None = None, faults: list[Fault] | None = None,
            window: int = 4, max_tries: int = 6, progress=None, log=None, labels=None,
            record=None, sim_divisor: int | None = None, board: str | None = None,
            source: str = "uart", adc=None, lanes: int = 1) -> dict:
    """Run the loop against the simulated board (``sim``) or the board at ``port``; with
    ``labels`` (one per inference) also score the board's answers as a classifier; with
    ``record`` (a path) write the run's traffic there (:mod:`boards.recording`).
    ``sim_divisor``: the simulated board's clock cycles per bit (a board's own, to simulate
    its UART; default :data:`boards.simboard.SIM_DIVISOR`).

    ``source="pmod-ad1"``: the board converts the samples (``samples`` is how many); the
    simulated board then has the Pmod AD1 front end and a converter model, ``adc`` (a
    :class:`boards.simboard.PmodSim`: clock, sample rate, signal; default its defaults).
    ``lanes``: the simulated board's pipeline has that many sample lanes (a real board's are
    its build's; its answers do not depend on them)."""
    from .recording import RecordingTransport, save_recording

    if source not in SOURCES:
        raise HilError(f"unknown sample source {source!r}; known: {', '.join(SOURCES)}")
    if source != "uart" and record:
        raise HilError("--record keeps the host's samples for --replay; with --source "
                       f"{source} the samples are the board's: drop --record")

    def wrap(transport, on_reset=None, on_vanish=None):
        if faults:
            transport = FaultyTransport(transport, faults, on_reset=on_reset,
                                        on_vanish=on_vanish)
        return RecordingTransport(transport) if record else transport

    if sim:
        from .simboard import SIM_DIVISOR, PmodSim, SimulatedBoard
        if source != "uart":
            adc = adc or PmodSim()
        board_sim = SimulatedBoard(design, log=log, divisor=sim_divisor or SIM_DIVISOR,
                                   adc=adc if source != "uart" else None, lanes=lanes)
        board_sim.start()
        try:
            serial_t = SerialTransport(board_sim.port, baud)
            serial_t.byte_rate = None  # a pty has no baud: utilisation comes from sim cycles
            transport = wrap(serial_t, board_sim.reset, board_sim.kill)
            runner = HilRunner(transport, design, mode=mode, window=window, max_tries=max_tries,
                               response_timeout=1.0, progress=progress, source=source)
            report = runner.run(samples)
            transport.close()
        finally:
            stats = board_sim.stop()
        if stats.get("cycles"):
            report["link_utilisation"] = round(
                report["useful_bytes"] * 10 * stats["divisor"] / stats["cycles"], 4)
            report["sim"] = stats
        report["transport"] = (f"simulated board (Verilator, pty, {board_sim.divisor} cycles per "
                               f"bit{f', as {board}' if board else ''}"
                               f"{f', {lanes} sample lanes' if lanes > 1 else ''})")
        report["lanes"] = lanes
        if source != "uart":
            from .pmod_ad1 import plan_timing
            timing = plan_timing(adc.clk_hz, adc.sample_rate)
            report["adc"] = (f"simulated Pmod AD1 channel 0 (AD7476A model, {adc.signal} input): "
                             f"{timing.describe()}")
    else:
        check_port(port)
        transport = wrap(SerialTransport(port, baud))
        try:
            runner = HilRunner(transport, design, mode=mode, window=window,
                               max_tries=max_tries, progress=progress, source=source)
            runner.board_name = board
            report = runner.run(samples)
        finally:
            transport.close()
        report["transport"] = f"serial {port} at {baud} baud"
        report["baud"] = baud
    if faults:
        inner = transport.inner if record else transport
        report["faults_injected"] = getattr(inner, "injected", [])
    report.update(accuracy_fields(design, runner, labels))
    if record:
        report["recording"] = str(save_recording(record, transport, runner, samples, report,
                                                 labels=labels, board=board))
    return report

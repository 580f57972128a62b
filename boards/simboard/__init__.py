"""The simulated board: the board top's RTL, UART included, in Verilator behind a pseudo-terminal.

:class:`SimulatedBoard` builds (once, cached by content hash) a Verilator model of
:class:`boards.top.BoardTop` with a small C++ harness (``harness.cpp``) that bridges the design's
``rx``/``tx`` pins to a pty at ``divisor`` clock cycles per bit. The host opens the pty with
pyserial like any serial port, so the hardware-in-the-loop runner's serial code path is the one
a real board uses. ``reset()`` resets the design (a board reset in the middle of a run).

With ``adc`` (:class:`PmodSim`: the Pmod AD1 source's clock, sample rate and the analog signal)
the board top has the Pmod AD1 front end (:class:`boards.pmod_ad1.PmodAD1`) and the harness,
built with ``-DPMOD_AD1``, drives its data line from a behavioural AD7476A (the data sheet's
timing, counted in the board clock's nanoseconds) and counts every timing violation.

The pipeline runs in its own ``adc`` domain at twice the board clock (as on the iCEBreaker:
``BoardTop(adc_domain="adc")``, the harness built with ``-DADC_DOMAIN``); ``adc_domain=False``
builds the one-domain top.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from dataclasses import dataclass

from amaranth.back import verilog

from adcforge.design import Design
from adcforge.errors import ToolchainError

from ..pmod_ad1 import DEFAULT_SAMPLE_RATE
from ..toolchain import verilator_env

HARNESS = Path(__file__).resolve().parent / "harness.cpp"
#: cycles per bit in the simulated board (the UART's minimum: keeps simulation fast)
SIM_DIVISOR = 4
#: cycles without a byte after which the simulated board abandons a frame
SIM_TIMEOUT = 1 << 14


#: the simulated converter's input signals (harness.cpp)
SIGNALS = ("sine", "count")
#: what each bit of the harness's violation mask means (harness.cpp's V_* order)
VIOLATION_NAMES = ("SCLK over 20 MHz", "SCLK beyond 40/60", "CS to SCLK setup under t2",
                   "a conversion of other than 16 SCLKs", "CS high under t1",
                   "quiet time under t_quiet", "acquisition under t_acq",
                   "over 1 M samples/s", "SCLK low when CS fell")


@dataclass(frozen=True)
class PmodSim:
    """The simulated board's Pmod AD1: the board clock it pretends to run at (the front end's
    schedule and the model's nanoseconds come from it), the sample rate, the analog signal."""

    clk_hz: float = 30e6
    sample_rate: float = DEFAULT_SAMPLE_RATE
    signal: str = "sine"

    def __post_init__(self):
        if self.signal not in SIGNALS:
            raise ToolchainError(f"unknown simulated signal {self.signal!r}; known: "
                                 f"{', '.join(SIGNALS)}")


def cache_root() -> Path:
    """Return the directory for built simulated boards (``$ADCFORGE_CACHE`` or ~/.cache)."""
    base = os.environ.get("ADCFORGE_CACHE") or Path.home() / ".cache" / "adcforge"
    return Path(base) / "simboard"


def build_simboard(design: Design, *, divisor: int = SIM_DIVISOR, timeout: int = SIM_TIMEOUT,
                   log=None, adc: PmodSim | None = None, adc_domain: bool = True,
                   lanes: int = 1) -> Path:
    """Return the path of the simulated-board executable for ``design`` (built if needed);
    with ``adc``, the board top with the Pmod AD1 source and the harness's converter model;
    with ``adc_domain``, the pipeline in its own domain at twice the board clock; ``lanes``:
    the pipeline's sample lanes (``BoardTop(lanes=N)``)."""
    from ..top import BoardTop
    source = None
    if adc is not None:
        from ..pmod_ad1 import PmodAD1
        try:
            source = PmodAD1(clk_hz=adc.clk_hz, sample_rate=adc.sample_rate)
        except ValueError as exc:
            raise ToolchainError(f"--sample-rate: {exc}") from None
    try:
        top = BoardTop(design, divisor=divisor, timeout=timeout, led_cycles=1 << 10,
                       adc_source=source, adc_domain="adc" if adc_domain else "sync",
                       lanes=lanes)
    except ValueError as exc:
        raise ToolchainError(f"the simulated board for {design.name}: {exc}") from None
    text = verilog.convert(top, name="board_top", emit_src=False)
    defines = ["-CFLAGS", "-DPMOD_AD1"] if adc is not None else []
    if adc_domain:
        defines += ["-CFLAGS", "-DADC_DOMAIN"]
    key = hashlib.sha256(text.encode() + HARNESS.read_bytes()
                         + " ".join(defines).encode()).hexdigest()[:16]
    out = cache_root() / (f"{design.name}{'-pmod' if adc is not None else ''}"
                          f"{f'-l{lanes}' if lanes > 1 else ''}-{key}")
    exe = out / "obj_dir" / "simboard"
    if exe.exists():
        return exe
    # build in a private directory and rename it into place: concurrent builds (pytest-xdist
    # workers) never see each other's half-built files
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "board_top.v").write_text(text)
    env = verilator_env()
    if log:
        log(f"building the simulated board for {design.name} with Verilator (once; 1-3 min on 2 cores)...")
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Wno-fatal", "-Wno-lint",
           "-Wno-style", "--x-assign", "fast", "--x-initial", "fast", "-O3",
           "--top-module", "board_top", "board_top.v", str(HARNESS), "-o", "simboard",
           "-CFLAGS", "-O2", *defines,
           # the wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty: the precompiled
           # header then reaches the compiler as a bare file name and the build fails
           "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2 OPT_SLOW=-O1"]
    proc = subprocess.run(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    (tmp / "verilator.log").write_text(proc.stdout)
    if proc.returncode != 0 or not (tmp / "obj_dir" / "simboard").exists():
        errors = [ln for ln in proc.stdout.splitlines() if "rror" in ln] or \
            proc.stdout.splitlines()[-1:]
        raise ToolchainError(f"Verilator could not build the simulated board: "
                             f"{errors[0] if errors else 'no output'}; log: {tmp / 'verilator.log'}")
    try:
        os.replace(tmp, out)
    except OSError:  # another process finished first: use its build
        shutil.rmtree(tmp, ignore_errors=True)
    return exe


class SimulatedBoard:
    """A running simulated board; use as a context manager. ``port`` is its pty path."""

    def __init__(self, design: Design, *, divisor: int = SIM_DIVISOR, timeout: int = SIM_TIMEOUT,
                 log=None, adc: PmodSim | None = None, adc_domain: bool = True, lanes: int = 1):
        self.design = design
        self.divisor = divisor
        self.adc = adc
        self.lanes = lanes
        self.exe = build_simboard(design, divisor=divisor, timeout=timeout, log=log, adc=adc,
                                  adc_domain=adc_domain, lanes=lanes)
        self.stats_path = self.exe.parent / f"stats-{os.getpid()}-{id(self)}.txt"
        self.proc = None
        self.port = None

    def start(self) -> "SimulatedBoard":
        args = [str(self.exe), str(self.divisor), str(self.stats_path)]
        if self.adc is not None:
            args += [repr(1e9 / self.adc.clk_hz), self.adc.signal]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("/dev/"):
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise ToolchainError(f"the simulated board did not start: {line or err or 'no output'}")
        self.port = line
        return self

    def reset(self) -> None:
        """Reset the design, as pressing a board's reset button would."""
        self.proc.send_signal(signal.SIGUSR1)

    def kill(self) -> None:
        """End the board's process at once (SIGKILL), as pulling its USB cable would: its pty
        closes under the host."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stats(self) -> dict:
        """Return the harness counters: cycles, rx_bytes, tx_bytes, resets (after ``stop``);
        with the Pmod AD1 also adc_conversions, adc_violations and which checks they broke."""
        try:
            words = list(map(int, self.stats_path.read_text().split()))
            cycles, rx, tx, resets = words[:4]
        except (OSError, ValueError):
            return {}
        stats = {"cycles": cycles, "rx_bytes": rx, "tx_bytes": tx, "resets": resets,
                 "divisor": self.divisor}
        if self.adc is not None and len(words) >= 7:
            stats.update({
                "adc_conversions": words[4], "adc_violations": words[5],
                "adc_violated": [name for i, name in enumerate(VIOLATION_NAMES)
                                 if words[6] >> i & 1],
                "adc_clock_hz": self.adc.clk_hz, "adc_signal": self.adc.signal})
        return stats

    def stop(self) -> dict:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        stats = self.stats()
        try:
            self.stats_path.unlink()
        except OSError:
            pass
        return stats

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.last_stats = self.stop()
        return False

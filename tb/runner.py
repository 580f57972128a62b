"""Build a co-simulation target with Verilator (once, cached) and run cocotb tests on it.

Builds live in ``build/cosim/<target>-<hash>/`` (the hash covers the generated Verilog), so a
second run of the same design reuses the simulator; a lock file keeps parallel test workers from
building the same target twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from pathlib import Path

from adcforge.errors import ToolchainError
from hdl.toolchain import verilator_env

from .harness import harness_ports
from .targets import Target

BUILD_ROOT = Path(os.environ.get("ADCFORGE_BUILD", "build")) / "cosim"
# Verilator's arguments; they are part of the build directory's name, so that a change rebuilds.
BUILD_ARGS = ["--no-public-flat-rw", "-Wno-fatal", "-Wno-WIDTH", "--x-assign", "fast",
              "--x-initial", "fast", "-CFLAGS", "-O2"]


def build(target: Target, build_root: Path | None = None, *, log=None) -> tuple[Path, float]:
    """Build ``target``; return its directory and the build time in seconds (0 when cached)."""
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    flags = hashlib.sha256(" ".join(BUILD_ARGS).encode()).hexdigest()[:4]
    build_dir = Path(build_root or BUILD_ROOT).resolve() / f"{target.key}-{flags}"
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = build_dir / "built.json"
        if stamp.exists():
            return build_dir, 0.0
        (build_dir / "dut_top.v").write_text(target.dut_verilog)
        (build_dir / "tb_top.v").write_text(target.harness)
        # Only the harness's ports are visible to cocotb: a public signal is one that cocotb
        # may write at any time, so Verilator re-evaluates the logic it feeds at every edge
        # (making every signal public, the runner's default, also multiplies build time).
        # The copies share one compiled module (``tb_lane``, the DUT inlined into it).
        (build_dir / "public.vlt").write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "tb_top" -var "{name}"\n'
            for name in harness_ports(target.spec))
            + f'no_inline -module "tb_lane"\ninline -module "{target.spec.dut_module}"\n')
        verilator_env()
        if log:
            log(f"building {target.name} with Verilator ...")
        start = time.perf_counter()
        for attempt in (1, 2):  # a parallel make can trip over Verilator's precompiled header
            runner = get_runner("verilator")
            try:
                runner.build(sources=[build_dir / "dut_top.v", build_dir / "tb_top.v",
                                      VerilatorControlFile(build_dir / "public.vlt")],
                             hdl_toplevel="tb_top", build_dir=build_dir, always=True,
                             build_args=BUILD_ARGS,
                             log_file=build_dir / "build.log")
                break
            except (SystemExit, Exception) as exc:  # the runner exits on a failed build
                if attempt == 2:
                    raise ToolchainError(f"Verilator build of {target.name} failed ({exc}); "
                                         f"see {build_dir / 'build.log'}") from None
        seconds = time.perf_counter() - start
        stamp.write_text(json.dumps({"target": target.name, "build_s": seconds}))
        return build_dir, seconds


def run(build_dir: Path, config: dict, *, testcase: str | None = None,
        run_name: str = "run") -> dict:
    """Run the cocotb tests of ``tb.cocotb_stream`` with ``config``; return their JSON report."""
    from cocotb_tools.runner import get_results, get_runner

    verilator_env()
    build_dir = Path(build_dir).resolve()
    test_dir = build_dir / run_name
    test_dir.mkdir(parents=True, exist_ok=True)
    report = test_dir / "report.json"
    if report.exists():
        report.unlink()
    config = dict(config, report=str(report), work=str(test_dir))
    (test_dir / "config.json").write_text(json.dumps(config))
    runner = get_runner("verilator")
    results = test_dir / "results.xml"
    try:
        runner.test(test_module="tb.cocotb_stream", hdl_toplevel="tb_top",
                    hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=test_dir,
                    testcase=testcase,
                    extra_env={"ADCFORGE_TB_CONFIG": str(test_dir / "config.json")},
                    results_xml=str(results), log_file=test_dir / "sim.log")
    except (SystemExit, Exception):  # under pytest the runner raises on failed tests
        pass
    out = json.loads(report.read_text()) if report.exists() else {}
    try:
        total, failed = get_results(results)
    except Exception:  # no results file: the simulator died
        total, failed = 0, 1
    out["cocotb_tests"], out["cocotb_failed"] = total, failed
    if not report.exists():
        out["error"] = f"no report; see {test_dir / 'sim.log'}"
    return out

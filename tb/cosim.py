"""`adcforge cosim`: build a design's pipeline with Verilator and check it against the golden
model, exhaustively over the input range and on random streams, bit for bit."""

from __future__ import annotations

import time
from pathlib import Path

from adcforge.design import Design

from . import runner
from .targets import PipelineTarget


def default_batches(design: Design, samples: int, seed: int = 1, sensor: bool = False) -> list:
    """The standard plan: exhaustive sweep (with idle and back-pressure), random stream at full
    rate, and with a MAC layer random inferences plus worst-case activation patterns."""
    batches = [
        {"name": "exhaustive", "stim": "exhaustive", "valid_p": 0.8, "ready_p": 0.7,
         "seed": seed},
        {"name": "random", "stim": "random", "n": samples, "valid_p": 1.0, "ready_p": 1.0,
         "seed": seed + 1},
    ]
    if sensor:
        batches.append({"name": "sensor", "stim": "sensor", "n": min(samples, 65536),
                        "valid_p": 0.9, "ready_p": 0.9, "seed": seed + 2})
    if design.mac is not None:
        n_inf = max(1, min(samples // design.samples_per_inference, 100000 // design.mac.outputs))
        batches += [
            {"name": "mac-random", "stim": "random", "mode": "outputs", "n": n_inf,
             "valid_p": 0.9, "ready_p": 0.8, "seed": seed + 3},
            {"name": "mac-extremes", "stim": "extremes", "mode": "outputs", "n": 64,
             "valid_p": 1.0, "ready_p": 0.5, "seed": seed + 4},
        ]
    return batches


def cosim(design: Design, *, samples: int = 100000, seed: int = 1, runtime: bool = False,
          mac_lanes=None, lanes: int = 1, sensor: bool = False, extra_tests: bool = True,
          codes_path: str = "stall", log=print) -> dict:
    """Build (cached) and run the co-simulation of ``design``; return the report dict with
    ``checked``, ``mismatches``, ``samples_per_s``, ``build_s`` and per-batch figures."""
    if samples < 1 or samples > 1 << 17:
        raise ValueError("samples must be in [1, 131072] per batch")
    pt = PipelineTarget(design, runtime_thresholds=runtime, mac_lanes=mac_lanes, lanes=lanes,
                        codes_path=codes_path)
    target = pt.target()
    build_dir, build_s = runner.build(target, log=log)
    config = {"target": {"kind": "pipeline", "design": str(Path(design.source).resolve()),
                         "runtime": runtime, "mac_lanes": mac_lanes,
                         "lanes": lanes, "codes_path": codes_path},
              "batches": default_batches(design, samples, seed, sensor), "seed": seed}
    start = time.perf_counter()
    report = runner.run(build_dir, config, testcase=None if extra_tests else "bulk")
    report["wall_s"] = time.perf_counter() - start
    report["build_s"] = build_s
    report["design"] = design.name
    report["lanes"] = lanes
    report["codes_path"] = codes_path
    report["build_dir"] = str(build_dir)
    return report

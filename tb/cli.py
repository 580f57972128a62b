"""Commands of the testbenches: `adcforge cosim`."""

import json
from pathlib import Path

import click

from adcforge.design import resolve_design
from adcforge.errors import AdcforgeError
from hdl.cli import design_arg


def register(main, bench):
    @main.command("cosim")
    @design_arg
    @click.option("--samples", type=click.IntRange(1, 131072), default=100000, show_default=True,
                  help="Random samples streamed at full rate (besides the exhaustive sweep).")
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option("--runtime-thresholds", is_flag=True, help="Check the runtime-threshold build "
                  "(adds a threshold reload in the middle of a stream).")
    @click.option("--sensor", is_flag=True, help="Also stream simulated sensor frames.")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write the report as JSON.")
    def cosim_cmd(design, samples, seed, runtime_thresholds, sensor, json_path):
        """Co-simulate DESIGN on Verilator (cocotb) against the golden model, bit for bit.

        Streams every input value (with random idle cycles and back-pressure), a random
        stream, and for a MAC layer random and worst-case inferences; also resets the pipeline
        in the middle of a stream. Exits non-zero on any mismatch."""
        from .cosim import cosim

        d = resolve_design(design)
        report = cosim(d, samples=samples, seed=seed, runtime=runtime_thresholds, sensor=sensor,
                       log=lambda s: click.echo(s, err=True))
        for b in report.get("batches", []):
            click.echo(f"  {b['name']:<14} {b['checked']:>8} checked  {b['mismatches']:>4} "
                       f"mismatches  {b['cycles']:>8} cycles  {b['seconds']:.2f} s")
        for e in report.get("first_mismatches", []):
            click.echo(f"  MISMATCH {e['batch']} sample {e['index']}: input {e['input']} "
                       f"expected {e['expected']} got {e['got']}")
        build = f"build {report['build_s']:.1f} s" if report["build_s"] else "build cached"
        click.echo(f"{d.name}: {report.get('checked', 0)} checked, "
                   f"{report.get('mismatches', 'n/a')} mismatches, "
                   f"{report.get('samples_per_s', 0):,.0f} samples/s ({build})")
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(report, indent=1))
        ok = (report.get("mismatches", 1) == 0 and report.get("cocotb_failed", 1) == 0
              and "error" not in report)
        if not ok:
            raise AdcforgeError(f"co-simulation of {d.name} failed: "
                                f"{report.get('mismatches', '?')} mismatches, "
                                f"{report.get('cocotb_failed', '?')} failed cocotb tests; "
                                f"log in {report['build_dir']}")

"""Commands of the hardware spine: `adcforge verilog`, `adcforge cosim`, `adcforge bench golden`."""

import json
import time
from pathlib import Path

import click
import numpy as np

from adcforge.design import example_designs, resolve_design
from adcforge.errors import AdcforgeError


def _design_arg(f):
    return click.argument("design", metavar="DESIGN")(f)


def port_summary(design, component) -> list[str]:
    """Describe a component's ports, one line each."""
    lines = []
    for path, member in component.signature.members.flatten():
        if member.is_port:
            name = "__".join(str(p) for p in path)
            lines.append(f"  {member.flow.name:<4} {name:<24} {member.shape}")
    return lines


def write_verilog(design, out_dir: Path, *, runtime_thresholds=False, lanes=None) -> Path:
    """Write ``<out_dir>/<name>.v`` and ``<name>.ports.txt``; return the Verilog path."""
    from amaranth.back import verilog

    from hdl.pipeline import AdcPipeline

    top = AdcPipeline(design, runtime_thresholds=runtime_thresholds, lanes=lanes)
    text = verilog.convert(top, name=design.name, emit_src=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{design.name}.v"
    path.write_text(text)
    summary = [f"module {design.name}: {design.bits}-bit ADC on a {design.input_bits}-bit "
               f"sample, decode {design.channels} x s{design.decode.width}"
               + (f", POST MAC {design.mac.inputs}->{design.mac.outputs}" if design.mac else ""),
               f"  ladder latency {top.ladder.latency} clocks, decode 1 clock"]
    summary += port_summary(design, top)
    (out_dir / f"{design.name}.ports.txt").write_text("\n".join(summary) + "\n")
    return path


def register(main, bench):
    @main.command("verilog")
    @_design_arg
    @click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                  default=Path("build"), show_default=True, help="Output directory.")
    @click.option("--runtime-thresholds", is_flag=True,
                  help="Make thresholds writeable at run time (a write port, no rebuild).")
    @click.option("--lanes", type=int, default=None,
                  help="Parallel multiply lanes of the MAC core (default: one per output).")
    def verilog_cmd(design, out_dir, runtime_thresholds, lanes):
        """Write the Verilog of DESIGN's whole ADC pipeline, and a port summary.

        DESIGN is a design file or the name of a bundled example
        (adcforge verilog --list shows them)."""
        d = resolve_design(design)
        try:
            path = write_verilog(d, out_dir, runtime_thresholds=runtime_thresholds, lanes=lanes)
        except ValueError as exc:
            raise AdcforgeError(str(exc)) from None
        click.echo(path.with_suffix(".ports.txt").read_text(), nl=False)
        click.echo(f"wrote {path}")

    @main.command("cosim")
    @_design_arg
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
        from tb.cosim import cosim

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

    @main.command("designs")
    def designs_cmd():
        """List the bundled example design files."""
        for name, path in example_designs().items():
            d = resolve_design(path)
            mac = f", MAC {d.mac.inputs}->{d.mac.outputs}" if d.mac else ""
            click.echo(f"{name:<16} {d.bits}-bit on {d.input_bits}-bit input{mac}   {path}")

    @bench.command("golden")
    @click.option("--samples", type=int, default=10_000_000, show_default=True)
    def bench_golden(samples):
        """Golden-model throughput: ladder samples/s (12-bit input, 4-bit code) on one core."""
        import os

        from hdl.golden import ref_adc_pipeline, ref_comparator_ladder

        d = resolve_design("adc4_in12")
        rng = np.random.default_rng(0)
        x = rng.integers(0, 2**12, size=samples, dtype=np.uint16)
        ref_comparator_ladder(x[:1000], d.thresholds)
        best = min(_timed(lambda: ref_comparator_ladder(x, d.thresholds)) for _ in range(3))
        click.echo(f"ladder (12-bit in, 4-bit code): {samples / best / 1e6:.1f} M samples/s "
                   f"({os.cpu_count()} cores visible, numpy single-threaded)")
        m = resolve_design("adc8_in16_mac")
        xm = rng.integers(0, 2**16, size=(samples // 80, m.samples_per_inference))
        t = _timed(lambda: ref_adc_pipeline(m, xm))
        click.echo(f"pipeline with POST MAC ({m.name}): {xm.size / t / 1e6:.1f} M samples/s")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

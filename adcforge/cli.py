"""The `adcforge` command line.

Each stage registers its own commands from `<package>/cli.py` through a `register(main, bench)`
function, so that the stages stay independent: `hdl` (verilog, designs, bench golden), `tb`
(cosim), `sim` (sim, ptc, bench sim), `learn` (train, compare, bench train), `boards` (board,
hil, bench hw) and `adcforge.demo` (demo). This module and :mod:`adcforge.demo` are the top
floor: the only modules of the ``adcforge`` package that import the stages.
"""

import importlib
import sys

import click

from . import __version__
from .errors import AdcforgeError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="adcforge")
def main_group():
    """adcforge: learn a sensor's ADC for a task, verify it bit for bit, put it on an FPGA.

    \b
    Typical flow:
      adcforge sim --sensor phone --image scene.png -o out/     look at the simulated sensor
      adcforge train -o runs/x/                                 learn an ADC (writes design.yaml)
      adcforge verilog runs/x/design.yaml -o build/             generate Verilog
      adcforge cosim runs/x/design.yaml                         Verilator vs golden model
      adcforge board build icebreaker runs/x/design.yaml        bitstream + resource report
      adcforge hil --sim runs/x/design.yaml --photons 10        bench loop, simulated board
    """


@main_group.group("bench")
def bench_group():
    """Measure speed: print figures, never assert them."""


_STAGES = ("hdl.cli", "tb.cli", "sim.cli", "learn.cli", "boards.cli", "adcforge.demo")
for _name in _STAGES:
    importlib.import_module(_name).register(main_group, bench_group)


def main(argv=None):
    """Run the command line; user errors become one line on stderr and a non-zero exit."""
    try:
        main_group.main(args=argv, prog_name="adcforge", standalone_mode=False)
    except AdcforgeError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

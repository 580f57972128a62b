"""`adcforge demo`: the whole flow on the bundled default, with a report a person can read.

sensor → learned 3-bit ADC with its POST layer (and the uniform and histogram baselines) → design
file → Verilog → Verilator co-simulation → iCEBreaker bitstream → hardware-in-the-loop run against
the simulated board (or a real board with ``--board/--port``) → ``runs/demo/report.md`` (+ HTML).

Each step runs as its own ``adcforge`` command and leaves a stamp in ``<out>/.done/``; running the
demo again skips the finished steps (``--restart`` starts over). Ctrl-C stops cleanly and says
which steps finished.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from .errors import AdcforgeError


class Step:
    def __init__(self, key: str, title: str, run):
        self.key, self.title, self.run = key, title, run


def _adcforge(args: list[str], log: Path) -> None:
    """Run an adcforge command, its output shown live and kept in ``log``."""
    cmd = [sys.executable, "-m", "adcforge", *args]
    click.secho("  $ adcforge " + " ".join(args), fg="cyan")
    with open(log, "a") as f:
        f.write("$ adcforge " + " ".join(args) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1)
        try:
            for line in proc.stdout:
                f.write(line)
                click.echo("    " + line.rstrip("\n"))
        except KeyboardInterrupt:
            proc.wait()
            raise
        if proc.wait() != 0:
            raise AdcforgeError(f"`adcforge {' '.join(args)}` failed (exit {proc.returncode}); "
                                f"see {log}")


def contact_sheet(out: Path, photons_levels=(2, 8, 32, 1000), sensor_name="phone") -> Path:
    """Render a few bundled digits through the sensor at several light levels (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim import load_sensor
    from sim.data import load_dataset

    images, labels, _ = load_dataset("digits", split="test", seed=0)
    h, w = images.shape[1:]
    sensor = load_sensor(sensor_name, seed=0, width=w, height=h)
    fig, axes = plt.subplots(len(photons_levels), 8, figsize=(8, len(photons_levels) * 1.1))
    for r, p in enumerate(photons_levels):
        for c in range(8):
            frame = sensor.capture(images[c] * p)
            ax = axes[r, c]
            ax.imshow(frame, cmap="gray", vmin=frame.min(), vmax=max(frame.max(), 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"{p:g} ph", fontsize=8)
            if r == 0:
                ax.set_title(str(labels[c]), fontsize=8)
    fig.suptitle(f"bundled digits through the '{sensor_name}' sensor (photons per pixel at white)",
                 fontsize=9)
    fig.tight_layout()
    path = out / "contact_sheet.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_report(out: Path, photons: float, board: str | None) -> Path:
    """Assemble ``report.md`` (and ``report.html``) from the steps' outputs."""
    learned = _read_json(out / "learned" / "metrics.json")
    uniform = _read_json(out / "uniform" / "metrics.json")
    hist = _read_json(out / "hist" / "metrics.json")
    cosim = _read_json(out / "cosim.json")
    hw = _read_json(out / "board" / "report.json")
    hil = _read_json(out / "hil.json")
    prove = _read_json(out / "prove.json")
    lines = ["# adcforge demo report", "",
             f"Bundled digits task, `phone` sensor preset, {photons:g} photons per pixel at "
             "white, 3-bit ADC.", ""]
    figures = []

    def figure(path: str, caption: str) -> list[str]:
        """An image where the text refers to it, numbered, with its caption under it."""
        figures.append(path)
        n = len(figures)
        return [f"![Figure {n}: {caption}]({path})", "", f"*Figure {n}. {caption}*", ""]

    if (out / "contact_sheet.png").exists():
        lines += ["## 1. The sensor", "",
                  "Bundled test digits rendered through the sensor model at four light levels "
                  f"(figure {len(figures) + 1}): shot noise, read noise and the black level "
                  "are what the ADC sees.", ""]
        lines += figure("contact_sheet.png", "Bundled digits through the `phone` sensor, "
                        "photons per pixel at white on the left")

    def acc(m):
        v = m.get("test_accuracy")
        return f"{v:.3f}" if isinstance(v, (int, float)) else "n/a"

    def ladder(m, key):
        t = m.get(key)
        return " / ".join(str(v) for v in t) if t else "n/a"

    def val(m):
        v = m.get("val_accuracy")
        return f"{v:.3f}" if isinstance(v, (int, float)) else "n/a"

    lines += ["## 2. Training", "",
              "| ADC | bits | thresholds (DN) | validation accuracy | test accuracy (golden "
              "model) |", "|---|---|---|---|---|",
              f"| learned thresholds + POST layer | 3 | {ladder(learned, 'thresholds')} | "
              f"{val(learned)} | {acc(learned)} |",
              f"| histogram-equalised ADC | 3 | {ladder(hist, 'thresholds')} | {val(hist)} | "
              f"{acc(hist)} |",
              f"| uniform ADC (range set for the scene) | 3 | {ladder(uniform, 'thresholds')} | "
              f"{val(uniform)} | {acc(uniform)} |", ""]
    if learned.get("thresholds"):
        scores = ", ".join(f"{k} {v['val_accuracy']:.3f}" for k, v in
                           (learned.get("starts") or {}).items() if "val_accuracy" in v)
        lines += [f"The learned ladder started at {ladder(learned, 'initial_thresholds')} DN (the "
                  f"`{learned.get('start')}` start, chosen on the validation split"
                  + (f" — {scores}" if scores else "") + ") and was exported at "
                  f"{ladder(learned, 'thresholds')} DN. Every choice during training is made on "
                  "the validation split carved from the training data; the test split is scored "
                  "once, through the golden model.", ""]
    captions = {"thresholds.png": "The learned ADC's thresholds on the histogram of training "
                                  "samples: the start chosen on validation and the exported "
                                  "ladder",
                "training.png": "Training loss and accuracy per epoch"}
    shown = [n for n in captions if (out / "learned" / n).exists()]
    if shown:
        first = len(figures) + 1
        refs = (f"figure {first}" if len(shown) == 1 else f"figures {first}–{first + 1}")
        lines += [f"The learned ADC's ladder and its training run ({refs}):", ""]
        for name in shown:
            lines += figure(f"learned/{name}", captions[name])
    lines += ["## 3. Hardware", ""]
    if cosim:
        lines += [f"Co-simulation (cocotb on Verilator, every input value and a random stream, "
                  f"random idle cycles and back-pressure): **{cosim.get('checked', 0)} results "
                  f"checked, {cosim.get('mismatches', '?')} mismatches**, "
                  f"{cosim.get('samples_per_s', 0):,.0f} samples/s.", ""]
    if prove:
        rows = [f"| `{p['name']}` | {p['kind']} | {p.get('depth', '')} | {p['result']} | "
                f"{p['seconds']:.1f} |" for p in prove.get("properties", [])]
        verdict = ("**proved**: every property holds" if prove.get("proved") else
                   "**not proved**: see the failing property")
        lines += [f"Formal proof (`adcforge prove`, yowasp-sby with yices, every sample and "
                  f"every valid/ready/reset pattern; the codes path and the POST MAC in pieces): "
                  f"{verdict}, {prove.get('seconds', 0):.0f} s.", "",
                  "| property | kind | depth | result | seconds |", "|---|---|---|---|---|",
                  *rows, ""]
    if hw:
        lines += [f"iCEBreaker (iCE40UP5K) board top: {hw.get('logic_cells', '?')} logic cells, "
                  f"{hw.get('flip_flops', '?')} flip-flops, Fmax {hw.get('fmax_mhz', 0):.1f} MHz, "
                  f"timing met: {hw.get('timing_met')}.", ""]
    if hil:
        where = f"the board on {board}" if board else "the simulated board (RTL in Verilator)"
        lines += ["## 4. Hardware in the loop", "",
                  f"Streamed through {where}: {hil.get('checked', 0)} results checked, "
                  f"{hil.get('mismatches', '?')} mismatches, {hil.get('retried', 0)} retried, "
                  f"{hil.get('failed', 0)} failed, {hil.get('samples_per_s', 0):,.0f} samples/s.",
                  "", "| | accuracy |", "|---|---|",
                  f"| hardware (board outputs) | {hil.get('hw_accuracy')} |",
                  f"| software (golden model) | {hil.get('sw_accuracy')} |",
                  f"| uniform-ADC baseline | {acc(uniform)} |", ""]
    text = "\n".join(lines)
    path = out / "report.md"
    path.write_text(text)
    (out / "report.html").write_text(render_html(text, "adcforge demo report"))
    return path


REPORT_CSS = """
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 920px; margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.8em; border-bottom: 2px solid #ddd; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .35em .8em; text-align: left; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
img { display: block; max-width: 100%; height: auto; margin: 1em auto .2em;
      border: 1px solid #eee; }
p > em:only-child { display: block; text-align: center; color: #555;
                     font-size: .9em; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
"""


def render_html(text: str, title: str) -> str:
    """Render the report's Markdown as a standalone HTML page: tables as tables, images where
    the text puts them (paths relative to the report), a little CSS."""
    import html

    import markdown

    body = markdown.markdown(text, extensions=["tables"], output_format="html")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{REPORT_CSS}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n")


def run_demo(out: Path, photons: float, epochs: int | None, restart: bool, board: str | None,
             port: str | None, skip_board_build: bool) -> Path:
    if restart and out.exists():
        shutil.rmtree(out)
    done = out / ".done"
    done.mkdir(parents=True, exist_ok=True)
    log = out / "demo.log"
    design = out / "learned" / "design.yaml"
    ep = ["--epochs", str(epochs)] if epochs else []
    steps = [
        Step("sensor", "render the data through the sensor", lambda: contact_sheet(out)),
        Step("train", "train the learned 3-bit ADC with its POST layer",
             lambda: _adcforge(["train", "--method", "learned", "--bits", "3", "--photons",
                                str(photons), *ep, "-o", str(out / "learned"), "--quiet"], log)),
        Step("baseline", "train the uniform-ADC baseline",
             lambda: _adcforge(["train", "--method", "uniform", "--bits", "3", "--photons",
                                str(photons), *ep, "-o", str(out / "uniform"), "--quiet"], log)),
        Step("baseline-hist", "train the histogram-equalised ADC baseline",
             lambda: _adcforge(["train", "--method", "hist", "--bits", "3", "--photons",
                                str(photons), *ep, "-o", str(out / "hist"), "--quiet"], log)),
        Step("verilog", "write the Verilog",
             lambda: _adcforge(["verilog", str(design), "-o", str(out / "verilog")], log)),
        Step("cosim", "co-simulate on Verilator against the golden model",
             lambda: _adcforge(["cosim", str(design), "--json", str(out / "cosim.json")], log)),
        Step("prove", "prove the netlist computes the golden model (formal, every input)",
             lambda: _adcforge(["prove", str(design), "--json", str(out / "prove.json"), "-o",
                                str(out / "prove")], log)),
    ]
    if not skip_board_build:
        steps.append(Step("board", "build the iCEBreaker bitstream",
                          lambda: _adcforge(["board", "build", "icebreaker", str(design), "-o",
                                             str(out / "board")], log)))
    if board:
        steps.append(Step("flash", f"flash the {board}",
                          lambda: _adcforge(["board", "flash", board, str(out / "board")], log)))
        hil_args = ["hil", "--board", board, "--port", port or "", str(design)]
    else:
        hil_args = ["hil", "--sim", str(design)]
    steps.append(Step("hil", "hardware-in-the-loop bench run",
                      lambda: _adcforge([*hil_args, "--photons", str(photons), "--samples",
                                         "100000", "--json",
                                         str(out / "hil.json")], log)))

    finished = []
    start = time.perf_counter()
    try:
        for k, step in enumerate(steps, 1):
            stamp = done / step.key
            if stamp.exists():
                click.secho(f"[{k}/{len(steps)}] {step.title}: done before, skipped", fg="green")
                finished.append(step.key)
                continue
            click.secho(f"[{k}/{len(steps)}] {step.title} ...", bold=True)
            t0 = time.perf_counter()
            step.run()
            stamp.write_text(f"{time.perf_counter() - t0:.1f} s\n")
            finished.append(step.key)
            click.secho(f"      finished in {time.perf_counter() - t0:.0f} s", fg="green")
    except KeyboardInterrupt:
        click.secho(f"\ninterrupted; finished steps: {', '.join(finished) or 'none'}. Run "
                    f"`adcforge demo` again to resume (or --restart).", fg="yellow", err=True)
        raise SystemExit(130)
    report = write_report(out, photons, port if board else None)
    click.secho(f"demo finished in {time.perf_counter() - start:.0f} s; report: {report}",
                fg="green", bold=True)
    return report


def register(main, bench):
    @main.command("demo")
    @click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path),
                  default=Path("runs/demo"), show_default=True)
    @click.option("--photons", type=float, default=10.0, show_default=True,
                  help="Mean photons per pixel at white (low light).")
    @click.option("--epochs", type=int, default=None, help="Training epochs (default: config).")
    @click.option("--restart", is_flag=True, help="Start over instead of resuming.")
    @click.option("--board", default=None, help="Run the bench on a real board (icebreaker).")
    @click.option("--port", default=None, help="Serial port of the real board.")
    @click.option("--skip-board-build", is_flag=True, help="Skip the bitstream build.")
    def demo_cmd(out, photons, epochs, restart, board, port, skip_board_build):
        """Run the whole flow on the bundled default and write OUT/report.md."""
        if board and not port:
            raise AdcforgeError("--board needs --port (the board's serial port)")
        run_demo(out, photons, epochs, restart, board, port, skip_board_build)

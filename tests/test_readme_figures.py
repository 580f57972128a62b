"""The README's measured figures are written from the JSON the measuring commands wrote
(docs/figures.py): a figure edited by hand, or a measurement recorded without rewriting the
README, fails here."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("figures", ROOT / "docs" / "figures.py")
figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(figures)


def test_readme_figure_blocks_match_their_measurements():
    assert figures.main(["--check"]) == 0


def test_a_hand_edited_figure_is_caught(tmp_path, monkeypatch):
    record = {"recorded": "2026-12-01", "machine": "2 cores", "demo_seconds": 100.0,
              "learned": {"thresholds": [1, 2, 3], "initial_thresholds": [1, 2, 4],
                          "val_accuracy": 0.8, "test_accuracy": 0.75},
              "hist": {}, "uniform": {}, "cosim": {"checked": 10, "mismatches": 0},
              "board": {}, "hil": {}, "prove": {"proved": True, "seconds": 12.0}}
    (tmp_path / "demo.json").write_text(json.dumps(record))
    monkeypatch.setattr(figures, "FIGURES", tmp_path)
    text = "intro\n<!-- figures:demo -->\nold\n<!-- /figures:demo -->\nend\n"
    new = figures.rewrite(text)
    assert "| learned, exported | 1 / 2 / 3 | 0.800 | 0.750 |" in new
    assert "`adcforge prove`: proved in 12 s" in new and new.endswith("end\n")
    assert figures.rewrite(new) == new
    assert figures.rewrite(new.replace("0.750", "0.760")) == new  # the edit is undone


def test_take_demo_reads_what_the_demo_writes(tmp_path):
    run = tmp_path / "demo"
    for name, acc in (("learned", 0.7), ("hist", 0.6), ("uniform", 0.5)):
        (run / name).mkdir(parents=True)
        (run / name / "metrics.json").write_text(json.dumps({"test_accuracy": acc,
                                                             "thresholds": [5, 6, 7]}))
    (run / ".done").mkdir()
    (run / ".done" / "train").write_text("12.5 s\n")
    (run / ".done" / "cosim").write_text("7.5 s\n")
    (run / "hil.json").write_text(json.dumps({"checked": 100, "mismatches": 0, "failed": 0}))
    d = figures.take_demo(run)
    assert d["learned"]["test_accuracy"] == 0.7 and d["hist"]["test_accuracy"] == 0.6
    assert d["demo_seconds"] == 20.0 and d["hil"]["checked"] == 100 and d["prove"] is None
    assert "cores" in d["machine"]


def _core(design, device, lanes=1, seed=1, fmax=100.0, runtime=False, formats=()):
    return {"design": design, "device": device, "runtime_thresholds": runtime, "lanes": lanes,
            "seed": seed, "logic_cells": 10 * lanes, "flip_flops": 5 * lanes, "bram": 0, "dsp": 0,
            "fmax_mhz": fmax, "target_mhz": 120.0, "timing_met": fmax >= 120, "fits": True,
            "synth_s": 1.0, "pnr_s": 2.0, "msamples_per_s": lanes * fmax,
            "sensor_formats": list(formats), "recorded": "2026-12-02", "machine": "2 cores",
            "tools": "YoWASP Yosys 0.70 / nextpnr 0.11"}


def test_every_block_of_the_documents_has_a_renderer_and_every_renderer_a_block():
    names = {m.group("name") for doc in figures.DOCS
             for m in figures.BLOCK_RE.finditer(doc.read_text())}
    assert names == set(figures.RENDER)


def test_the_hardware_blocks_render_their_runs(tmp_path, monkeypatch):
    runs = [_core("adc4_in12", "up5k", fmax=125.16), _core("adc4_in12", "ecp5-85", fmax=339.33),
            _core("adc4_in12", "ecp5-85", seed=2, fmax=377.2, formats=["1080p60"]),
            _core("adc4_in12", "ecp5-85", lanes=4, fmax=280.7,
                  formats=["1080p60", "4K60", "4K120"]),
            _core("adc4_in12", "ecp5-85", lanes=4, seed=2, fmax=306.2,
                  formats=["1080p60", "4K60", "4K120"])]
    runs[1]["sensor_formats"] = []
    (tmp_path / "bench_hw.json").write_text(json.dumps({"runs": runs}))
    monkeypatch.setattr(figures, "FIGURES", tmp_path)
    text = "<!-- figures:hw_core -->\n<!-- /figures:hw_core -->\n" \
           "<!-- figures:hw_lanes -->\n<!-- /figures:hw_lanes -->\n" \
           "<!-- figures:hw_detail -->\n<!-- /figures:hw_detail -->\n"
    new = figures.rewrite(text)
    assert "Measured 2026-12-02 on 2 cores (YoWASP Yosys 0.70 / nextpnr 0.11)." in new
    assert "| `adc4_in12`, constant thresholds | 10 / 5 / 125 MHz | 10 / 5 / 339 MHz |" in new
    assert ("| `adc4_in12`, ECP5-85F | constant | 1 | 10 | 5 | 339.3–377.2 | 339–377 | – "
            "(1080p60 on some seeds) | 1,2 |") in new
    assert ("| `adc4_in12`, ECP5-85F | constant | 4 | 40 | 20 | 280.7–306.2 | 1123–1225 | "
            "1080p60, 4K60, 4K120 | 1,2 |") in new
    assert ("| up5k | adc4_in12 | constant | 10 | 5 | 0 | 0 | 125.16 | 120.0 | yes | 1.0 | 2.0 |"
            in new)
    assert "`adc4_in12`, UP5K" not in new  # one run is no sweep: the lanes table leaves it out
    assert figures.rewrite(new.replace("125 MHz", "126 MHz")) == new


def test_take_bench_hw_replaces_a_run_of_the_same_core_and_keeps_the_others(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "FIGURES", tmp_path)
    old = _core("adc1_in8", "up5k", fmax=1.0)
    kept = _core("adc1_in8", "ecp5-85", fmax=2.0)
    (tmp_path / "bench_hw.json").write_text(json.dumps({"runs": [old, kept]}))
    report = {k: v for k, v in _core("adc1_in8", "up5k", fmax=123.0).items()
              if k not in ("recorded", "machine", "tools")}
    (tmp_path / "build" / "l1-s1").mkdir(parents=True)
    (tmp_path / "build" / "l1-s1" / "report.json").write_text(json.dumps(dict(report,
                                                                                kind="core")))
    (tmp_path / "build" / "board.json").write_text("{}")
    runs = figures.take_bench_hw(tmp_path / "build")["runs"]
    assert sorted(r["fmax_mhz"] for r in runs) == [2.0, 123.0]
    new = next(r for r in runs if r["fmax_mhz"] == 123.0)
    assert "cores" in new["machine"] and new["tools"].startswith("YoWASP Yosys")
    assert "; tree " in new["tools"]  # this checkout's commit
    (tmp_path / "build" / "TREE").write_text("abc1234 (exported clean)\n")
    runs = figures.take_bench_hw(tmp_path / "build")["runs"]
    assert next(r for r in runs if r["fmax_mhz"] == 123.0)["tools"].endswith(
        "; tree abc1234 (exported clean)")
    with pytest.raises(SystemExit, match="no `board` report.json"):
        figures.take_board(tmp_path / "build")


def test_the_board_blocks_render_their_runs(tmp_path, monkeypatch):
    run = {"board": "ulx3s", "design": "adc4_in12", "runtime_thresholds": True, "seed": 1,
           "logic_cells": 1935, "flip_flops": 1360, "bram": 1, "dsp": 0, "fmax_mhz": 90.83,
           "target_mhz": 50.0, "timing_met": True, "fits": True, "build_s": 32.7,
           "recorded": "2026-12-02", "machine": "2 cores", "tools": "YoWASP"}
    (tmp_path / "board.json").write_text(json.dumps({"runs": [run]}))
    monkeypatch.setattr(figures, "FIGURES", tmp_path)
    new = figures.rewrite("<!-- figures:board -->\n<!-- /figures:board -->\n"
                          "<!-- figures:board_detail -->\n<!-- /figures:board_detail -->\n")
    assert "| ULX3S, `adc4_in12` | runtime | 1935 | 1360 | 1 | 90.8 MHz (50) |" in new
    assert ("| ulx3s | adc4_in12 | runtime | 1935 | 1360 | 1 | 0 | 90.83 | 50.0 | yes | 32.7 |"
            in new)


def test_the_compare_blocks_render_the_folder_and_catch_a_rerun(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    folder.mkdir()
    summary = [{"dataset": "patch", "photons": 1000, "method": m, "bits": 2, "mean": a,
                "std": 0.01, "n": 5} for m, a in (("learned", 0.879), ("uniform", 0.429),
                                                  ("fixed 380/410/440", 0.902),
                                                  ("fixed 350/380/410", 0.5))]
    paired = [{"dataset": "patch", "photons": 1000, "method": m, "bits": 2, "mean": d,
               "std": 0.046, "n": 5, "wins": w} for m, d, w in (("learned", 0.45, 5),
                                                                ("fixed 380/410/440", 0.473, 5),
                                                                ("fixed 350/380/410", -0.1, 0))]
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "paired.json").write_text(json.dumps(paired))
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    monkeypatch.setattr(figures, "FIGURES", tmp_path)
    record = figures.take_compare(folder)  # not a git checkout: no commit
    (tmp_path / "compare_patch.json").write_text(json.dumps(record))
    new = figures.rewrite("<!-- figures:compare_patch -->\n<!-- /figures:compare_patch -->\n")
    assert "From `results/`" in new
    assert "| learned | 0.879 ± 0.010 | +45.0 ± 4.6 (5/5) |" in new
    assert "| best hand-placed ladder of 2 (`fixed` 380/410/440 DN) | 0.902 ± 0.010 |" in new
    assert new.index("best hand-placed") < new.index("| learned")  # by accuracy
    (folder / "summary.json").write_text(json.dumps(summary[:2]))
    with pytest.raises(SystemExit, match="results: its JSON changed since it was recorded"):
        figures.rewrite(new)


def test_the_grid_blocks_bold_the_best_row_shown(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    folder.mkdir()
    summary = [{"dataset": "hdr", "photons": 5000, "method": m, "bits": b, "mean": a,
                "std": 0.01, "n": 3}
               for m, b, a in (("learned", 1, 0.762), ("hist", 1, 0.716), ("gumbel", 1, 0.9),
                               ("fp", 8, 0.926))]
    (folder / "summary.json").write_text(json.dumps(summary))
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    record = figures.take_compare(folder)
    text = figures.render_compare_hdr(record)
    assert "| learned | **0.762 ± 0.010** |" in text and "| hist | 0.716 ± 0.010 |" in text
    assert "gumbel" not in text and "| fp (no ADC) | 0.926 ± 0.010 |" in text


def test_the_paired_blocks_render_differences_by_light_and_bits(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    folder.mkdir()
    summary = [{"dataset": d, "photons": p, "method": m, "bits": b, "mean": 0.8, "std": 0.01,
                "n": 3} for d, p in (("scenes", 100), ("hdr", 5000)) for m in ("learned", "hist",
                                                                                "uniform")
               for b in (1, 2)]
    paired = [{"dataset": d, "photons": p, "method": m, "bits": b, "mean": 0.012 * b - 0.02,
               "std": 0.005, "n": 3, "wins": b} for d, p in (("scenes", 100), ("hdr", 5000))
              for m in ("learned", "hist") for b in (1, 2)]
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "paired.json").write_text(json.dumps(paired))
    monkeypatch.setattr(figures, "ROOT", tmp_path)
    record = figures.take_compare(folder)
    scenes = figures.render_compare_scenes(record)
    assert "100 photons at white" in scenes and "− `uniform` paired" in scenes
    assert "| learned − uniform | −0.8 ± 0.5 (1/3) | +0.4 ± 0.5 (2/3) |" in scenes
    hdr = figures.render_compare_hdr_target(record)
    assert "| 5000 photons at white | −0.8 ± 0.5 (1/3) | +0.4 ± 0.5 (2/3) |" in hdr


def test_a_pmod_build_keeps_the_uart_row(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "FIGURES", tmp_path)
    base = {"kind": "board", "board": "icebreaker", "design": "adc4_in12",
            "runtime_thresholds": True, "seed": 1, "logic_cells": 2138, "flip_flops": 1410,
            "bram": 6, "dsp": 0, "fmax_mhz": 36.13, "target_mhz": 30.0, "timing_met": True,
            "fits": True, "build_s": 60.0}
    for name, report in (("uart", base), ("pmod", dict(base, source="pmod-ad1",
                                                       logic_cells=2424, fmax_mhz=33.08))):
        (tmp_path / "build" / name).mkdir(parents=True)
        (tmp_path / "build" / name / "report.json").write_text(json.dumps(report))
    runs = figures.take_board(tmp_path / "build")["runs"]
    assert sorted(r["logic_cells"] for r in runs) == [2138, 2424]
    (tmp_path / "board.json").write_text(json.dumps({"runs": runs}))
    table = figures.rewrite("<!-- figures:board -->\n<!-- /figures:board -->\n")
    assert "2138" in table and "2424" not in table


def test_a_top_in_two_clock_domains_shows_both():
    r = {"fmax_mhz": 43.95, "target_mhz": 36.0,
         "domains": {"adc": {"fmax_mhz": 43.95, "target_mhz": 36.0},
                     "sync": {"fmax_mhz": 34.81, "target_mhz": 18.0}}}
    assert figures._board_fmax(r) == "adc 44.0 MHz (36) · sync 34.8 MHz (18)"
    assert figures._board_fmax({"fmax_mhz": 91.8, "target_mhz": 50}) == "91.8 MHz (50)"

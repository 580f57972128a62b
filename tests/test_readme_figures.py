"""The README's measured figures are written from the JSON the measuring commands wrote
(docs/figures.py): a figure edited by hand, or a measurement recorded without rewriting the
README, fails here."""

import importlib.util
import json
from pathlib import Path

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

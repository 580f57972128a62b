"""The demo's report.html is a real page: tables are tables, each figure sits where the text
refers to it (before the next section), every image path is relative and exists."""

import json
from html.parser import HTMLParser
from pathlib import Path

from adcforge.demo import write_report


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.events = []  # (tag, attrs) in document order

    def handle_starttag(self, tag, attrs):
        self.events.append((tag, dict(attrs)))


def _fake_run(out: Path) -> None:
    """The files the demo's steps leave, with stand-in figures (1×1 PNGs)."""
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360f8ffff3f0005fe02fea7356e8a"
                        "0000000049454e44ae426082")
    for d in ("learned", "uniform", "board"):
        (out / d).mkdir(parents=True, exist_ok=True)
    for name in ("contact_sheet.png", "learned/thresholds.png", "learned/training.png"):
        (out / name).write_bytes(png)
    (out / "learned" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.7}))
    (out / "uniform" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}))
    (out / "cosim.json").write_text(json.dumps({"checked": 10, "mismatches": 0,
                                                "samples_per_s": 1.0}))
    (out / "hil.json").write_text(json.dumps({"checked": 10, "mismatches": 0,
                                              "hw_accuracy": 0.7, "sw_accuracy": 0.7}))


def test_report_html_renders_tables_and_puts_figures_where_the_text_refers_to_them(tmp_path):
    _fake_run(tmp_path)
    write_report(tmp_path, 10.0, None)
    html = (tmp_path / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<pre>" not in html and "<style>" in html
    assert "|---|" not in html and "![" not in html  # no Markdown left over
    page = _Page()
    page.feed(html)
    tags = [t for t, _ in page.events]
    assert tags.count("table") == 2 and "th" in tags and "td" in tags
    imgs = [a["src"] for t, a in page.events if t == "img"]
    assert imgs == ["contact_sheet.png", "learned/thresholds.png", "learned/training.png"]
    assert all(not Path(s).is_absolute() and (tmp_path / s).exists() for s in imgs)
    # each figure inside its own section: contact sheet under 1, the training plots under 2
    order = [("h2" if t == "h2" else a.get("src")) for t, a in page.events if t in ("h2", "img")]
    assert order == ["h2", "contact_sheet.png", "h2", "learned/thresholds.png",
                     "learned/training.png", "h2", "h2"]
    md = (tmp_path / "report.md").read_text()
    for n in (1, 2, 3):  # the text refers to every figure and every figure has its caption
        assert f"*Figure {n}." in md
    assert "(figure 1)" in md and "(figures 2–3)" in md


def test_report_shows_the_start_and_learned_ladders_and_the_hist_and_uniform_baselines(tmp_path):
    _fake_run(tmp_path)
    (tmp_path / "hist").mkdir()
    (tmp_path / "hist" / "metrics.json").write_text(json.dumps(
        {"test_accuracy": 0.6, "val_accuracy": 0.61, "thresholds": [257, 258, 260]}))
    (tmp_path / "learned" / "metrics.json").write_text(json.dumps(
        {"test_accuracy": 0.7, "val_accuracy": 0.72, "thresholds": [259, 263, 270],
         "initial_thresholds": [257, 258, 260], "start": "quantile",
         "starts": {"quantile": {"val_accuracy": 0.7}, "uniform": {"val_accuracy": 0.65}}}))
    write_report(tmp_path, 10.0, None)
    md = (tmp_path / "report.md").read_text()
    assert "| learned thresholds + POST layer | 3 | 259 / 263 / 270 | 0.720 | 0.700 |" in md
    assert "| histogram-equalised ADC | 3 | 257 / 258 / 260 | 0.610 | 0.600 |" in md
    assert "| uniform ADC (range set for the scene) | 3 | n/a | n/a | 0.500 |" in md
    assert "started at 257 / 258 / 260 DN" in md and "exported at 259 / 263 / 270 DN" in md
    assert "quantile 0.700, uniform 0.650" in md

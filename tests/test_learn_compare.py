"""compare: a tiny grid end to end (tables, plots, cache), and config errors."""

import json

import numpy as np

import pytest

from adcforge.errors import AdcforgeError, ConfigError
from learn.compare import compare, load_compare_config, markdown_tables, summarise

TINY = {
    "name": "tiny",
    "base": {"train": {"epochs": 1, "freeze_epochs": 1, "lr_network": 1e-2, "eval_every": 100}},
    "methods": ["hist", "uniform", "fp"],
    "bits": [1, 2],
    "seeds": [0, 1],
    "datasets": {"digits": {"photons": [100]}},
    "robustness": {"dataset": "digits", "methods": ["hist"], "bits": 1, "photons": 100,
                   "test_photons": [10, 100], "read_noise_e": [1.0], "seeds": [0]},
}


def test_tiny_compare_writes_tables_plots_and_reuses_its_cache(tmp_path):
    out = tmp_path / "cmp"
    res = compare(TINY, out, progress=False)
    assert len(res["rows"]) == 2 * 2 * 2 + 2  # hist, uniform x 2 bits x 2 seeds + fp x 2 seeds
    text = (out / "results.md").read_text()
    assert "digits, 100 photons at white" in text and "| hist |" in text and "fp (no ADC)" in text
    assert (out / "accuracy_vs_bits_digits_100.png").stat().st_size > 1000
    assert "| hist |" in (out / "robustness.md").read_text()
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + len(res["rows"])
    for r in res["rows"]:
        assert 0.0 <= r["test_accuracy"] <= 1.0
    again = compare(TINY, out, progress=False, cached_only=True)  # cached: identical numbers
    assert [r["test_accuracy"] for r in again["rows"]] == [r["test_accuracy"] for r in res["rows"]]
    assert json.loads((out / "summary.json").read_text())
    # the report says its runs came from the cache, with their own training time, not "in 0 s"
    assert f"{len(res['rows'])} runs from the cache (" in (out / "results.md").read_text()
    # nothing cached: a one-line error, nothing written
    empty = tmp_path / "empty"
    with pytest.raises(AdcforgeError, match=r"^--cached-only: no cached run of 'tiny' under .*"
                                            r"\(none of its 11 runs\); nothing written$"):
        compare(TINY, empty, progress=False, cached_only=True)
    assert not empty.exists()


def test_summary_is_mean_and_sample_std():
    rows = [{"dataset": "d", "photons": 1, "method": "m", "bits": 2, "test_accuracy": a}
            for a in (0.5, 0.7)]
    (s,) = summarise(rows)
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1414213, rel=1e-5)
    assert "0.600 ± 0.141" in markdown_tables([s], ["m"], [2])


@pytest.mark.parametrize("bad, text", [
    pytest.param({"methods": ["nope"]}, "unknown method 'nope'", id="method"),
    pytest.param({"bits": [9]}, "allowed range is 1..8", id="bits"),
    pytest.param({"colour": 1}, "unknown key 'colour'", id="key"),
    pytest.param({"base": {"train": {"epoch": 3}}}, "unknown key 'train.epoch'", id="base key"),
])
def test_bad_compare_configs_are_config_errors(bad, text):
    with pytest.raises(ConfigError, match=text):
        load_compare_config({**TINY, **bad})


def test_paired_differences_pair_runs_by_seed():
    from learn.compare import paired_differences, paired_tables

    rows = [{"dataset": "d", "photons": 5, "method": m, "bits": 1, "seed": s, "test_accuracy": a}
            for m, s, a in [("hist", 0, 0.70), ("hist", 1, 0.80), ("hist", 2, 0.60),
                            ("learned", 0, 0.75), ("learned", 1, 0.81), ("learned", 2, 0.59),
                            ("learned", 9, 0.99)]]  # seed 9 has no reference: not paired
    (p,) = paired_differences(rows, "hist")
    diffs = np.array([0.05, 0.01, -0.01])
    assert p["n"] == 3 and p["wins"] == 2
    assert p["mean"] == pytest.approx(diffs.mean()) and p["std"] == pytest.approx(diffs.std(ddof=1))
    assert "+1.7 ± 3.1 (2/3)" in paired_tables([p], "hist", ["learned"], [1])
    # fp runs once (recorded at 8 bits): as the reference it pairs with every bit width
    fp = [{**r, "method": "fp", "bits": 8} for r in rows if r["method"] == "hist"]
    (q,) = paired_differences([r for r in rows if r["method"] == "learned"] + fp, "fp")
    assert q["bits"] == 1 and q["n"] == 3 and q["mean"] == pytest.approx(diffs.mean())


def test_bundled_compare_configs_load():
    for name in ("compare", "hdr_target"):
        cfg = load_compare_config(name)
        assert cfg["paired"] == {"reference": "hist"}
    assert load_compare_config("four_bits")["paired"] == {"reference": "fp"}
    with pytest.raises(ConfigError, match="paired"):
        load_compare_config({**TINY, "paired": {"reference": "lloyd"}})


def test_a_sweep_of_fixed_ladders_runs_beside_the_methods_with_validation_tables(tmp_path):
    cfg = {"name": "sweep", "base": {"train": {"epochs": 1, "freeze_epochs": 1}},
           "methods": ["hist"], "bits": [1], "seeds": [0],
           "datasets": {"digits": {"photons": [100], "fixed": [[258], [262]]}},
           "paired": {"reference": "hist"}}
    res = compare(cfg, tmp_path / "c", progress=False)
    methods = [r["method"] for r in res["rows"]]
    assert methods == ["hist", "fixed 258", "fixed 262"]
    fixed = [r for r in res["rows"] if r["method"] == "fixed 258"][0]
    assert fixed["thresholds"] == [258] and 0 <= fixed["val_accuracy"] <= 1
    text = (tmp_path / "c" / "results.md").read_text()
    assert "| fixed 258 |" in text and "| fixed 262 |" in text
    assert "validation accuracy through the golden model" in text
    with pytest.raises(ConfigError, match=r"datasets.digits.fixed\[0\]"):
        load_compare_config({**cfg, "datasets": {"digits": {"photons": [100],
                                                             "fixed": [[258, 300]]}}})

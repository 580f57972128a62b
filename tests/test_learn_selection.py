"""Learned thresholds that travel, and choices made on validation only: the noise-aware
estimator's gradient against a finite difference of the expected code, the task-aware start,
the validation split (disjoint, stratified, refused when too small), the network choice, and
the exported ladder never worse on validation than its start."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from adcforge.errors import ConfigError
from learn.config import apply_overrides, load_config, resolve_auto
from learn.quant import (
    SampleStats,
    expected_steps,
    make_quantizer,
    smooth_step_ste,
    weighted_int_thresholds,
)
from learn.train import Task, split_validation, train, train_model


@pytest.mark.parametrize("kind", ["normal", "logistic"])
def test_smooth_estimator_gradient_is_the_derivative_of_the_expected_code(kind):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, generator=gen, dtype=torch.float64) * 100
    theta = torch.tensor([20.0, 45.0, 70.0], dtype=torch.float64, requires_grad=True)
    width = torch.tensor([3.0, 8.0, 15.0], dtype=torch.float64)
    weights = torch.rand(200, 3, generator=gen, dtype=torch.float64)
    steps = smooth_step_ste(x[:, None] - theta, width, kind)
    assert torch.equal(steps.detach(), (x[:, None] > theta).to(torch.float64))  # hard forward
    (steps * weights).sum().backward()

    def expected(t):  # the weighted expected code under noise of rms `width`
        return float((expected_steps(x[:, None] - t, width, kind) * weights).sum())

    h = 1e-5
    for i in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[i] = h
        fd = (expected(theta.detach() + e) - expected(theta.detach() - e)) / (2 * h)
        assert theta.grad[i].item() == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_normal_expected_code_is_the_noisy_code_on_average():
    # Φ((μ - t) / σ) summed over thresholds = E[#(μ + σ z > t)], checked by Monte Carlo
    gen = torch.Generator().manual_seed(1)
    mu, sigma = torch.tensor([50.0], dtype=torch.float64), 6.0
    theta = torch.tensor([44.0, 50.0, 57.0], dtype=torch.float64)
    exp = expected_steps(mu - theta, torch.full((3,), sigma, dtype=torch.float64), "normal").sum()
    noisy = mu + sigma * torch.randn(200_000, generator=gen, dtype=torch.float64)
    mc = (noisy[:, None] > theta).sum(1).to(torch.float64).mean()
    assert float(exp) == pytest.approx(float(mc), abs=0.01)


def _stats():
    rng = np.random.default_rng(0)
    samples = np.concatenate([rng.normal(270, 3, 9000), rng.normal(420, 20, 1000)]).round()
    return SampleStats.from_samples(samples, 4095, black=256, gain_dn_per_e=0.6,
                                    read_noise_dn=1.1)


def test_annealed_window_reaches_a_quarter_of_the_range_then_the_noise():
    q = make_quantizer("learned", 2, _stats(), 12, init="uniform", threshold_param="dn",
                       estimator="logistic", window_anneal=[0.25, 0.002])
    th = q.thresholds_u().detach()
    q.progress = 0.0
    assert torch.allclose(q.ste_width(th), torch.full_like(th, 0.25))
    q.progress = 1.0
    noise = q.stats.noise_dn(q.to_dn(th)) / q.scale
    assert torch.allclose(q.ste_width(th), noise)


def test_dn_parameterisation_moves_a_threshold_by_the_step_in_dn():
    q = make_quantizer("learned", 2, _stats(), 12, init="uniform", threshold_param="dn",
                       estimator="logistic")
    before = q.float_thresholds().detach().clone()
    opt = torch.optim.Adam(q.threshold_parameters(), lr=2.0)
    (-q.float_thresholds()[0]).backward()  # push the first threshold up
    opt.step()
    after = q.float_thresholds().detach()
    assert float(after[0] - before[0]) == pytest.approx(2.0, rel=1e-3)


def test_weighted_quantiles_follow_the_weight_not_the_count():
    values = np.concatenate([np.full(900, 270), np.arange(400, 500)])
    weights = np.concatenate([np.full(900, 1e-3), np.ones(100)])
    t = weighted_int_thresholds(values, weights, 4, 4095)
    assert np.all((t >= 400) & (t <= 500)) and list(t) == sorted(set(t))
    assert list(weighted_int_thresholds(values, np.zeros(1000), 2, 4095)) == [271]  # no weight


def test_validation_split_is_disjoint_stratified_and_seeded():
    labels = np.repeat(np.arange(4), [50, 30, 20, 11])
    tr, va = split_validation(labels, 0.2, seed=3)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(labels)
    assert [int((labels[va] == c).sum()) for c in range(4)] == [10, 6, 4, 2]
    assert np.array_equal(split_validation(labels, 0.2, seed=3)[1], va)
    assert not np.array_equal(split_validation(labels, 0.2, seed=4)[1], va)


def test_task_validation_frames_come_from_training_data_only():
    from sim.data import load_dataset

    cfg = load_config({"data": {"dataset": "digits", "val_fraction": 0.25}})
    task = Task(cfg, torch.device("cpu"))
    full, full_y, _ = load_dataset("digits", "train", seed=0)
    assert len(task.val_images) + len(task.train_images) == len(full)
    assert np.array_equal(task.val_images, full[task.val_index])
    assert np.array_equal(task.val_labels, full_y[task.val_index])
    rest = np.setdiff1d(np.arange(len(full)), task.val_index)
    assert np.array_equal(task.train_images, full[rest])  # training keeps the others, in order
    assert abs(len(task.val_images) - 0.25 * len(full)) <= 10  # rounded per class
    assert np.array_equal(task.test_images, load_dataset("digits", "test", seed=0)[0])


@pytest.mark.parametrize("value", [0.0, 0.6, 1.5])
def test_val_fraction_out_of_range_is_a_one_line_error_naming_the_key(value):
    with pytest.raises(ConfigError) as err:
        load_config({"data": {"val_fraction": value}})
    msg = str(err.value)
    assert "data.val_fraction" in msg and "0.01..0.5" in msg and "\n" not in msg


def test_a_dataset_too_small_to_split_is_a_one_line_error(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for c in ("a", "b"):
            d = tmp_path / split / c
            d.mkdir(parents=True)
            Image.fromarray(np.full((8, 8), 100 if c == "a" else 200, np.uint8)).save(d / "0.png")
    with pytest.raises(ConfigError) as err:
        train({"data": {"dataset": str(tmp_path)}, "train": {"epochs": 1}}, tmp_path / "out",
              progress=False, plots=False)
    msg = str(err.value)
    assert "data.val_fraction" in msg and "\n" not in msg
    assert not (tmp_path / "out").exists()


def test_network_auto_is_linear_for_digits_and_cnn3_above_8x8():
    cfg = load_config(None)
    assert resolve_auto(cfg, 8, 8)["network"]["kind"] == "linear"
    big = resolve_auto(cfg, 16, 16)["network"]
    assert big["kind"] == "cnn3" and (big["conv_channels"], big["hidden_channels"]) == (16, 32)
    with pytest.raises(ConfigError, match="network.kind.*resnet.*allowed: auto, linear"):
        apply_overrides(cfg, network="resnet")


def test_cli_network_option_and_its_error(tmp_path):
    from adcforge.cli import main_group as main

    r = CliRunner().invoke(main, ["train", "--network", "nope", "-o", str(tmp_path / "x")])
    text = r.output + str(r.exception)
    assert r.exit_code != 0 and "network.kind" in text and "nope" in text
    assert not (tmp_path / "x").exists()


def test_exported_ladder_is_never_worse_on_validation_than_its_start_and_both_are_reported():
    cfg = {"data": {"dataset": "patch"}, "photons": 1000.0,
           "quantizer": {"method": "learned", "bits": 2, "starts": ["quantile", "uniform"]},
           "train": {"epochs": 3, "freeze_epochs": 1, "threshold_warmup_epochs": 1,
                     "start_epochs": 2, "lr_network": 3e-3}}
    m = train(cfg, None, progress=False, plots=False)
    assert m["network"] == "cnn3"
    assert set(m["starts"]) == {"quantile", "uniform"} and m["start"] in m["starts"]
    assert m["val_accuracy"] >= m["val_accuracy_start"]
    assert m["val_accuracy"] == max(m["history"]["val_accuracy"])
    assert 0 <= m["test_accuracy"] <= 1 and m["val_samples"] == 800


def test_resume_after_the_choice_of_start_reaches_the_same_design(tmp_path):
    from learn.train import train_model

    cfg = {"quantizer": {"method": "learned", "starts": ["quantile", "uniform"]},
           "train": {"epochs": 3, "freeze_epochs": 1, "start_epochs": 1, "lr_network": 1e-2}}
    straight = train(cfg, tmp_path / "a", progress=False, plots=False)
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, tmp_path / "b", progress=False, plots=False, stop_after=1)
    resumed = train(cfg, tmp_path / "b", progress=False, plots=False, resume=True)
    assert resumed["starts"] == straight["starts"] and resumed["start"] == straight["start"]
    assert ((tmp_path / "a" / "design.yaml").read_bytes()
            == (tmp_path / "b" / "design.yaml").read_bytes())


def test_starts_are_halved_on_validation_until_one_continues():
    cfg = {"quantizer": {"method": "learned", "bits": 2},
           "train": {"epochs": 4, "freeze_epochs": 1, "start_epochs": 1, "task_start_epochs": 1,
                     "lr_network": 1e-2}}
    m = train(cfg, None, progress=False, plots=False)
    starts = m["starts"]
    assert set(starts) == {"quantile", "uniform", "task"}
    assert sorted(s["rounds"] for s in starts.values()) == [1, 2, 2]
    finalists = [k for k, s in starts.items() if s["rounds"] == 2]
    assert m["start"] in finalists and len(m["history"]["epoch"]) == 4
    out = [k for k, s in starts.items() if s["rounds"] == 1][0]
    assert all(starts[out]["val_accuracy"] <= starts[k]["val_accuracy"] for k in finalists)
    once = train({**cfg, "train": {**cfg["train"], "start_selection": "once"}}, None,
                 progress=False, plots=False)
    assert sorted(s["rounds"] for s in once["starts"].values()) == [1, 1, 1]


def test_the_start_ladder_is_finished_beside_the_learned_one_and_the_better_is_exported():
    cfg = {"quantizer": {"method": "learned", "starts": ["quantile"]},
           "train": {"epochs": 3, "freeze_epochs": 1, "lr_network": 1e-2,
                     "lr_thresholds_dn": 3.0}}
    m = train(cfg, None, progress=False, plots=False)
    fin = m["finish_val_accuracy"]
    assert set(fin) == {"learned", "start"}
    assert m["val_accuracy"] == max(max(m["history"]["val_accuracy"]), fin["start"])
    if fin["start"] > max(m["history"]["val_accuracy"]):
        assert m["thresholds"] == m["initial_thresholds"]
    off = train({**cfg, "train": {**cfg["train"], "finish_start": False}}, None, progress=False,
                plots=False)
    assert off["finish_val_accuracy"] is None


def test_the_start_ladder_beside_is_trained_as_the_fixed_method_would_train_it(tmp_path):
    # from the epoch the thresholds start to move, the quantile start (the hist ladder) is
    # trained on the same schedule with its ladder held: the same run as method hist, so the
    # learned export is never worse on validation than hist trained the same way
    cfg = {"quantizer": {"method": "learned", "starts": ["quantile"]},
           "train": {"epochs": 3, "freeze_epochs": 1, "lr_network": 1e-2,
                     "lr_thresholds_dn": 3.0}}
    m = train(cfg, None, progress=False, plots=False)
    hist = train({**cfg, "quantizer": {"method": "hist"}}, None, progress=False, plots=False)
    assert m["initial_thresholds"] == hist["thresholds"]
    assert m["finish_val_accuracy"]["start"] == max(hist["history"]["val_accuracy"])
    assert m["val_accuracy"] >= hist["val_accuracy"]
    # a run stopped after the ladder beside was started resumes both runs
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, tmp_path / "r", progress=False, plots=False, stop_after=2)
    resumed = train(cfg, tmp_path / "r", progress=False, plots=False, resume=True)
    assert resumed["finish_val_accuracy"] == m["finish_val_accuracy"]
    assert resumed["thresholds"] == m["thresholds"]


def test_a_ladder_with_a_code_for_every_sample_value_is_held():
    # at 10 photons the digits' samples span about 15 DN: 4 bits give every value lo..hi its own
    # code on the uniform ladder, so nothing is learned and nothing can be lost
    cfg = {"quantizer": {"method": "learned", "bits": 4},
           "train": {"epochs": 2, "freeze_epochs": 1, "lr_network": 1e-2}}
    m = train(cfg, None, progress=False, plots=False)
    lo, hi = m["sample_range_dn"]
    assert 16 >= hi - lo + 1 and m["held_lossless"] and m["start"] == "uniform"
    assert m["thresholds"] == m["initial_thresholds"] and m["finish_val_accuracy"] is None
    codes = np.searchsorted(np.asarray(m["thresholds"]), np.arange(lo, hi + 1), side="right")
    assert len(set(codes.tolist())) == hi - lo + 1
    uniform = train({**cfg, "quantizer": {"method": "uniform", "bits": 4}}, None,
                    progress=False, plots=False)
    assert uniform["thresholds"] == m["thresholds"]
    moved = train({**cfg, "train": {**cfg["train"], "hold_lossless": False}}, None,
                  progress=False, plots=False)
    assert not moved["held_lossless"] and len(moved["starts"]) == 3
    assert not train({**cfg, "quantizer": {"method": "learned", "bits": 2}}, None,
                     progress=False, plots=False)["held_lossless"]


def test_the_quantile_start_is_held_too_when_another_start_was_chosen(tmp_path):
    # the halving round can choose a start whose held ladder finishes below the histogram's
    # (HDR at 4 bits, 1000 photons: uniform chosen at near chance); the quantile start, method
    # hist's own run, is then held as well, so the export is never worse on validation than hist
    cfg = {"quantizer": {"method": "learned", "starts": ["uniform", "quantile"]},
           "train": {"epochs": 4, "freeze_epochs": 1, "start_epochs": 1, "lr_network": 1e-2,
                     "seed": 1}}
    m = train(cfg, None, progress=False, plots=False)
    assert m["start"] == "uniform" and set(m["finish_val_accuracy"]) == {"learned", "start",
                                                                          "quantile"}
    hist = train({**cfg, "quantizer": {"method": "hist"}}, None, progress=False, plots=False)
    assert m["finish_val_accuracy"]["quantile"] == max(hist["history"]["val_accuracy"])
    assert m["val_accuracy"] >= hist["val_accuracy"]
    if m["finish_exported"] == "quantile":
        assert m["thresholds"] == hist["thresholds"]
    for stop in (1, 2):  # resumed before the held runs started (after the halving), and after
        with pytest.raises(KeyboardInterrupt):
            train_model(cfg, tmp_path / f"r{stop}", progress=False, plots=False, stop_after=stop)
        resumed = train(cfg, tmp_path / f"r{stop}", progress=False, plots=False, resume=True)
        assert resumed["finish_val_accuracy"] == m["finish_val_accuracy"]
        assert resumed["thresholds"] == m["thresholds"]


def test_validation_frames_are_independent_captures_of_the_validation_images():
    from learn.train import _generator, validation_frames

    cfg = load_config({"data": {"dataset": "digits"}, "photons": 10.0})
    task = Task(cfg, torch.device("cpu"))
    n = len(task.val_images)
    one, y1 = validation_frames(task, 1, _generator("cpu", 0, "val"))
    three, y3 = validation_frames(task, 3, _generator("cpu", 0, "val"))
    assert one.shape[0] == n and three.shape[0] == 3 * n
    assert torch.equal(y3, torch.cat([y1] * 3))
    a, b, c = three[:n], three[n:2 * n], three[2 * n:]
    # the same scenes (mean DN close), fresh shot and read noise in every capture
    assert not torch.equal(a, b) and not torch.equal(b, c)
    assert abs(float(a.float().mean() - b.float().mean())) < 0.1
    assert float((a != b).float().mean()) > 0.5


def test_val_captures_average_every_validation_score_and_are_reported():
    cfg = {"data": {"dataset": "digits"}, "photons": 10.0,
           "quantizer": {"method": "hist", "bits": 2},
           "train": {"epochs": 2, "freeze_epochs": 0, "val_captures": 4}}
    m = train(cfg, None, progress=False, plots=False)
    n = m["val_samples"]
    # val_samples counts the validation images, not the 4 n frames scored
    task = Task(load_config(cfg), torch.device("cpu"))
    assert m["val_captures"] == 4 and n == len(task.val_labels)
    for acc in m["history"]["val_accuracy"]:  # a mean over 4 n frames
        assert abs(acc * 4 * n - round(acc * 4 * n)) < 1e-6
    assert any(abs(acc * n - round(acc * n)) > 1e-6 for acc in m["history"]["val_accuracy"])
    with pytest.raises(ConfigError, match=r"train.val_captures.*1\.\.64"):
        load_config({"train": {"val_captures": 0}})

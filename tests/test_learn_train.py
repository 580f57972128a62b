"""Training end to end on the simulated sensor: the exported design through the golden model gives
the reported accuracy, reruns are byte-identical, resume continues exactly, bad input fails."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from adcforge.design import load_design
from adcforge.errors import AdcforgeError, ConfigError
from adcforge.golden import ref_adc_pipeline
from learn.config import apply_overrides, load_config
from learn.model import golden_outputs, predict
from learn.train import TrainingError, train, train_model


def _cfg(**over):
    cfg = load_config(None)
    cfg["train"]["epochs"] = 2
    cfg["train"]["freeze_epochs"] = 1
    cfg["train"]["lr_network"] = 1e-2  # converges in a couple of epochs
    for k, v in over.items():
        section, key = k.split("__")
        cfg[section][key] = v
    return cfg


@pytest.mark.parametrize("method", ["learned", "bitwise", "gumbel", "uniform", "lsqplus"])
def test_golden_model_reproduces_the_hard_model_and_the_reported_accuracy(method, tmp_path):
    res = train_model(_cfg(quantizer__method=method, quantizer__bits=3), tmp_path / "run",
                      progress=False, plots=False)
    design = load_design(tmp_path / "run" / "design.yaml")
    x = res.test_dn.cpu().numpy().astype(np.int64)
    gold = golden_outputs(design, x, res.model.kernel)
    # the linear POST layer: one inference = one image, 64 samples in row-major order
    assert np.array_equal(ref_adc_pipeline(design, x.reshape(len(x), -1))["outputs"], gold[:, 0])
    hard = res.model.hard_outputs(design, torch.as_tensor(x))["outputs"].numpy()
    assert np.array_equal(hard, gold)
    acc = float((predict(gold[:, 0]) == res.task.test_labels).mean())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_accuracy"] == acc
    assert metrics["method"] == method and metrics["bits"] == 3 and metrics["photons"] == 10.0
    assert metrics["device"] == "cpu"  # train.device of the bundled default
    assert acc > 0.2  # above chance (0.1) already after two epochs


def test_cnn_on_hdr_exports_a_conv_post_layer_that_golden_reproduces():
    cfg = _cfg(network__kind="cnn", train__epochs=1, train__freeze_epochs=1)
    cfg["data"]["dataset"] = "hdr"
    cfg["photons"] = 1000.0
    res = train_model(cfg, None, progress=False, plots=False)
    design = res.design
    assert design.mac.inputs == 9 and design.mac.outputs == 8  # cnn: 8 POST channels by default
    x = res.test_dn[:50].cpu().numpy().astype(np.int64)
    gold = golden_outputs(design, x, (3, 3))
    assert gold.shape == (50, 14 * 14, 8)
    assert np.array_equal(res.model.hard_outputs(design, torch.as_tensor(x))["outputs"].numpy(),
                          gold)
    full = golden_outputs(design, res.test_dn.cpu().numpy().astype(np.int64), (3, 3))
    acc = float((predict(res.model.logits_from_outputs(design, full)) == res.task.test_labels)
                .mean())
    assert res.metrics["test_accuracy"] == acc


def test_rerun_gives_the_same_design_file_byte_for_byte(tmp_path):
    cfg = _cfg(quantizer__method="learned")
    cfg["train"]["lr_thresholds"] = 1e-2  # make the thresholds move
    train(cfg, tmp_path / "a", progress=False, plots=False)
    train(cfg, tmp_path / "b", progress=False, plots=False)
    a = (tmp_path / "a" / "design.yaml").read_bytes()
    assert a == (tmp_path / "b" / "design.yaml").read_bytes()
    cfg["train"]["seed"] = 1
    train(cfg, tmp_path / "c", progress=False, plots=False)
    assert a != (tmp_path / "c" / "design.yaml").read_bytes()  # the seed matters


def test_resume_continues_to_the_same_result(tmp_path):
    cfg = _cfg(quantizer__method="gumbel", train__epochs=3, train__freeze_epochs=1)
    train(cfg, tmp_path / "straight", progress=False, plots=False)
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, tmp_path / "resumed", progress=False, plots=False, stop_after=1)
    assert (tmp_path / "resumed" / ".checkpoint" / "state.pt").exists()
    assert not (tmp_path / "resumed" / "design.yaml").exists()
    m = train(cfg, tmp_path / "resumed", progress=False, plots=False, resume=True)
    assert m["history"]["epoch"] == [1, 2, 3]
    assert ((tmp_path / "straight" / "design.yaml").read_bytes()
            == (tmp_path / "resumed" / "design.yaml").read_bytes())
    assert not (tmp_path / "resumed" / ".checkpoint").exists()


def test_nan_loss_stops_with_a_message_and_writes_nothing(tmp_path, monkeypatch):
    import learn.train as lt

    monkeypatch.setattr(lt.F, "cross_entropy", lambda logits, y: logits.sum() * float("nan"))
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, step 1"):
        train(_cfg(), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("over, text", [
    pytest.param(dict(method="magic"), "allowed: learned, bitwise", id="unknown method"),
    pytest.param(dict(bits=9), "'quantizer.bits': got 9; allowed range is 1..8", id="bits 9"),
    pytest.param(dict(bits=0), "allowed range is 1..8", id="bits 0"),
    pytest.param(dict(photons=-1.0), "'photons'", id="negative photons"),
])
def test_bad_overrides_are_config_errors(over, text):
    with pytest.raises(ConfigError, match=text):
        apply_overrides(load_config(None), **over)


def test_unknown_config_key_names_the_key_and_the_allowed_ones(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train: {epochs: 2, learning_rate: 0.1}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train.learning_rate'.*lr_network"):
        load_config(p)


def test_empty_image_folder_is_an_error_and_nothing_is_written(tmp_path):
    (tmp_path / "data" / "cats").mkdir(parents=True)
    cfg = apply_overrides(_cfg(), data=tmp_path / "data")
    with pytest.raises(AdcforgeError, match="no images"):
        train(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_train_writes_the_files_and_reports_bad_input(tmp_path, monkeypatch):
    from adcforge.cli import main_group

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    if True:
        r = runner.invoke(main_group, ["train", "-o", "run", "--epochs", "1", "--bits", "1",
                                       "--method", "hist", "--quiet"])
        assert r.exit_code == 0, r.output
        assert "test accuracy" in r.output
        m = json.loads(open("run/metrics.json").read())
        assert m["method"] == "hist" and m["bits"] == 1 and 0 <= m["test_accuracy"] <= 1
        design = load_design("run/design.yaml")
        assert len(design.thresholds) == 1
        r = runner.invoke(main_group, ["train", "-o", "bad", "--bits", "12", "--quiet"])
        assert r.exit_code != 0 and isinstance(r.exception, ConfigError)
        import os

        assert not os.path.exists("bad")


def test_cnn_tail_options_train_and_keep_the_hardware_layer_exact():
    cfg = _cfg(network__kind="cnn", network__asq_bits=4, network__bitshift_norm=True,
               train__epochs=1, train__freeze_epochs=1)
    cfg["data"]["dataset"] = "scenes"
    cfg["photons"] = 100.0
    res = train_model(cfg, None, progress=False, plots=False)
    x = res.test_dn[:20].cpu().numpy().astype(np.int64)
    assert np.array_equal(res.model.hard_outputs(res.design, torch.as_tensor(x))["outputs"]
                          .numpy(), golden_outputs(res.design, x, (3, 3)))
    assert 0 <= res.metrics["test_accuracy"] <= 1


def test_resume_with_another_config_is_refused_and_keeps_the_checkpoint(tmp_path):
    cfg = _cfg(train__epochs=3)
    with pytest.raises(KeyboardInterrupt):
        train_model(cfg, tmp_path / "r", progress=False, plots=False, stop_after=1)
    cfg["quantizer"]["bits"] = 3
    with pytest.raises(ConfigError, match="different config"):
        train(cfg, tmp_path / "r", progress=False, plots=False, resume=True)
    assert (tmp_path / "r" / ".checkpoint" / "state.pt").exists()


def test_hardware_bitshift_norm_trains_an_8_bit_output_layer_that_golden_reproduces():
    cfg = _cfg(network__kind="cnn", network__post_bitshift_norm=True, network__output_bits=8,
               train__epochs=1, train__freeze_epochs=1, train__lr_decay="none")
    cfg["data"]["dataset"] = "hdr"
    cfg["photons"] = 5000.0
    res = train_model(cfg, None, progress=False, plots=False)
    design = res.design
    assert design.mac.output_bits == 8 and design.mac.output_shift > 0
    full = golden_outputs(design, res.test_dn.cpu().numpy().astype(np.int64), (3, 3))
    assert np.array_equal(res.model.hard_outputs(design, res.test_dn.cpu())["outputs"].numpy(),
                          full)
    assert full.max() <= 127 and full.min() >= -128
    acc = float((predict(res.model.logits_from_outputs(design, full)) == res.task.test_labels)
                .mean())
    assert res.metrics["test_accuracy"] == acc > 0.3  # above chance (0.25) after one epoch


def test_a_light_range_is_drawn_per_batch_or_per_image():
    from learn.train import Task

    cfg = load_config(None)
    cfg["photons"] = [2.0, 200.0]
    task = Task(cfg, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    batch = task.white(256, g, per_batch=True).flatten()
    assert torch.all(batch == batch[0]) and 2.0 <= float(batch[0]) <= 200.0
    image = task.white(4096, g).flatten()
    assert 2.0 <= float(image.min()) and float(image.max()) <= 200.0
    # log-uniform: the log of the draws is uniform on [log 2, log 200]; median at 20 photons
    assert float(image.log().median().exp()) == pytest.approx(20.0, rel=0.1)
    with pytest.raises(ConfigError, match="photons_per"):
        load_config({"train": {"photons_per": "pixel"}})


def test_train_device_auto_picks_cuda_where_present_and_cuda_without_one_is_one_line():
    from learn.train import _device

    assert _device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert _device("cpu").type == "cpu"
    if torch.cuda.is_available():
        assert _device("cuda").type == "cuda"
    else:
        with pytest.raises(ConfigError, match="train.device: 'cuda' requested") as exc:
            _device("cuda")
        assert "\n" not in str(exc.value)

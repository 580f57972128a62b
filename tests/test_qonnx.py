"""The QONNX export, executed by the qonnx package's own executor, against the golden model bit for
bit: every input value through the ladder, random and worst-case inferences through the POST
layer, for every bundled design and a trained one."""

import numpy as np
import pytest

from adcforge.design import Design, Mac, example_designs, resolve_design
from adcforge.errors import AdcforgeError
from adcforge.golden import ref_adc_pipeline

qonnx = pytest.importorskip("qonnx")
from qonnx.core.datatype import DataType  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.core.onnx_exec import execute_onnx  # noqa: E402
from qonnx.transformation.infer_datatypes import InferDataTypes  # noqa: E402
from qonnx.transformation.infer_shapes import InferShapes  # noqa: E402

from hdl.qonnx import design_to_qonnx, export_qonnx  # noqa: E402


def run_qonnx(design: Design, x: np.ndarray) -> dict:
    """Execute the exported model on integer samples ``x`` [batch, S] with qonnx."""
    model = ModelWrapper(design_to_qonnx(design))
    model.set_tensor_shape("x", list(x.shape))  # qonnx executes static shapes only
    model.set_tensor_shape("code", list(x.shape))
    model.set_tensor_shape("y", [x.shape[0], design.mac.outputs] if design.mac else
                           [*x.shape, design.channels])
    model = model.transform(InferShapes()).transform(InferDataTypes())
    assert model.get_tensor_datatype("x") == DataType[f"UINT{design.input_bits}"]
    assert model.get_tensor_datatype("code") == DataType[f"UINT{design.bits}"] or \
        design.bits == 1 and model.get_tensor_datatype("code") == DataType["BINARY"]
    return execute_onnx(model, {"x": x.astype(np.float32)})


def check(design: Design, x: np.ndarray) -> None:
    got, ref = run_qonnx(design, x), ref_adc_pipeline(design, x)
    assert np.array_equal(got["code"], ref["codes"])
    want = ref["values"] if design.mac is None else ref["outputs"]
    assert got["y"].shape == want.shape and np.array_equal(got["y"].astype(np.int64), want)


def worst_cases(design: Design) -> np.ndarray:
    """Inferences at the decode table's extremes: every sample at the code of the most negative
    or the largest value, and alternating, and the pattern that pushes each output up."""
    table = design.decode.table
    lo_code, hi_code = int(np.argmin(table.min(axis=1))), int(np.argmax(table.max(axis=1)))
    sample = [0] + list(design.thresholds)
    lo, hi = sample[lo_code], sample[hi_code]
    spi = design.samples_per_inference
    return np.array([np.full(spi, lo), np.full(spi, hi), np.resize([lo, hi], spi),
                     np.resize([hi, lo], spi)])


@pytest.mark.parametrize("name", list(example_designs()))
def test_every_input_value_through_the_ladder(name):
    d = resolve_design(name)
    if d.mac is None:
        check(d, np.arange(2**d.input_bits).reshape(1, -1))
    else:  # every value, in whole inferences
        spi = d.samples_per_inference
        x = np.resize(np.arange(2**d.input_bits), (2**d.input_bits + spi - 1) // spi * spi)
        check(d, x.reshape(-1, spi))


@pytest.mark.parametrize("name", [n for n in example_designs() if resolve_design(n).mac])
def test_random_and_worst_case_inferences(name):
    d = resolve_design(name)
    rng = np.random.default_rng(3)
    check(d, rng.integers(0, 2**d.input_bits, (200, d.samples_per_inference)))
    check(d, worst_cases(d))


def test_saturating_and_shifted_output_stage():
    d = resolve_design("adc8_in16_mac")
    m = d.mac
    sat = Design(name="sat", input_bits=d.input_bits, thresholds=d.thresholds, decode=d.decode,
                 mac=Mac(inputs=m.inputs, outputs=m.outputs, exponent_bits=m.exponent_bits,
                         guard_bits=m.guard_bits, scale_exp=m.scale_exp, sign=m.sign,
                         exponent=m.exponent, bias=m.bias, output_bits=6, output_shift=5))
    x = np.concatenate([worst_cases(sat), np.random.default_rng(4).integers(
        0, 2**16, (100, sat.samples_per_inference))])
    ref = ref_adc_pipeline(sat, x)["outputs"]
    assert (np.abs(ref) == 2**5).any() or (ref == 2**5 - 1).any()  # saturation is exercised
    check(sat, x)


def test_a_trained_design(tmp_path):
    from learn.config import load_config
    from learn.train import train
    from sim.samples import task_frames

    cfg = load_config(None)
    cfg["train"]["epochs"] = 1
    cfg["train"]["freeze_epochs"] = 1
    train(cfg, tmp_path, progress=False, plots=False)
    d = resolve_design(tmp_path / "design.yaml")
    frames = task_frames(d, n=64)
    check(d, frames.samples)
    check(d, np.random.default_rng(5).integers(0, 2**d.input_bits,
                                               (50, d.samples_per_inference)))


def test_export_writes_a_loadable_file_and_refuses_another_suffix(tmp_path):
    import onnx

    path = export_qonnx(resolve_design("adc4_in12"), tmp_path / "m.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    with pytest.raises(AdcforgeError, match="m.txt: a QONNX model is written to a .onnx file"):
        export_qonnx(resolve_design("adc4_in12"), tmp_path / "m.txt")


def test_export_command(tmp_path):
    from click.testing import CliRunner

    from adcforge.cli import main_group
    r = CliRunner().invoke(main_group, ["export", "qonnx", "adc8_in16_mac", "-o",
                                        str(tmp_path / "m.onnx")])
    assert r.exit_code == 0, r.output
    assert "MultiThreshold, 255 thresholds" in r.output and (tmp_path / "m.onnx").exists()

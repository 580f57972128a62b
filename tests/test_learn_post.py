"""POST layer: the integer twin against adcforge.golden, bit for bit, at the extremes and at random;
the export of a float layer into a design that the golden model runs exactly as the model does."""

import math

import numpy as np
import pytest
import torch

from adcforge.design import load_design, parse_design, design_to_dict, save_design
from adcforge.golden import (ref_adc_pipeline, ref_comparator_ladder, ref_output_stage,
                             ref_post_mac, ref_post_multiplier, sqrt_half_lut)
from learn.model import TaskModel, golden_outputs
from learn.post import (PostConv, code_table_sum, int_post_code_table, int_post_mac,
                        mac_output_scale, patches, sqrt_half_table)
from learn.quant import SampleStats, make_quantizer


@pytest.mark.parametrize("width", [2, 4, 8, 12])
@pytest.mark.parametrize("q", [0, 1, 5, 11])
def test_sqrt_half_table_equals_the_golden_lut(width, q):
    assert np.array_equal(sqrt_half_table(width, q).numpy(), sqrt_half_lut(width, q))


def _mac_case(rng, width, ebits, guard, inputs, outputs, acts_kind):
    half = 2 ** (width - 1)
    if acts_kind == "zero":
        acts = np.zeros((5, inputs), np.int64)
    elif acts_kind == "max":
        acts = np.full((5, inputs), half - 1, np.int64)
    elif acts_kind == "min":
        acts = np.full((5, inputs), -half, np.int64)
    else:
        acts = rng.integers(-half, half, (200, inputs))
    sign = rng.integers(-1, 2, (outputs, inputs))
    exponent = np.where(sign == 0, 0, rng.integers(0, 2**ebits, (outputs, inputs)))
    q = (2**ebits - 1) // 2 + guard
    bias = rng.integers(-(2 ** (width + q)), 2 ** (width + q), outputs)
    return acts, sign, exponent, bias, q


CASES = [pytest.param(w, e, g, k, id=f"width {w}, {e} exponent bits, guard {g}, acts {k}")
         for w, e, g in [(2, 1, 0), (8, 3, 2), (12, 4, 8), (6, 2, 1)]
         for k in ("zero", "max", "min", "random")]


@pytest.mark.parametrize("width, ebits, guard, acts_kind", CASES)
@pytest.mark.parametrize("output_bits, shift", [(32, 0), (12, 3), (4, 9), (16, 1)])
def test_int_post_mac_equals_golden(width, ebits, guard, acts_kind, output_bits, shift):
    rng = np.random.default_rng(width * 100 + ebits * 10 + guard)
    acts, sign, exponent, bias, q = _mac_case(rng, width, ebits, guard, 37, 6, acts_kind)
    ref = ref_post_mac(acts, sign, exponent, bias, width, q, output_bits, shift)
    got = int_post_mac(torch.as_tensor(acts), torch.as_tensor(sign), torch.as_tensor(exponent),
                       torch.as_tensor(bias), width, q, output_bits, shift).numpy()
    assert np.array_equal(got, ref)


@pytest.mark.parametrize("width, ebits, guard", [(2, 1, 0), (8, 3, 2), (12, 4, 8)])
@pytest.mark.parametrize("channels, bits, kernel", [(1, 2, (3, 3)), (3, 1, (2, 4)),
                                                    (2, 4, (8, 8))])
def test_code_table_path_equals_golden_on_code_windows(width, ebits, guard, channels, bits,
                                                       kernel):
    # the per-code table and its convolution (float32 or float64, by the table's bound) give the
    # golden MAC of the decoded windows, every code at every offset
    rng = np.random.default_rng(width + 10 * bits + 100 * channels)
    half = 2 ** (width - 1)
    decode = rng.integers(-half, half, (2**bits, channels))
    decode[0], decode[-1] = -half, half - 1
    inputs = kernel[0] * kernel[1] * channels
    _, sign, exponent, bias, q = _mac_case(rng, width, ebits, guard, inputs, 5, "zero")
    codes = rng.integers(0, 2**bits, (7, kernel[0] + 3, kernel[1] + 2))
    lut = int_post_code_table(torch.as_tensor(decode), sign, exponent, width, q)
    acc = code_table_sum(lut, torch.as_tensor(codes), kernel, chunk=2**bits * codes[0].size * 3)
    windows = patches(torch.as_tensor(codes), kernel).numpy()  # [N, P, K]
    acts = decode[windows].reshape(windows.shape[:2] + (-1,))
    ref = ref_post_mac(acts, sign, exponent, np.zeros(5, np.int64), width, q, 64, 0)
    assert np.array_equal(acc.numpy(), ref)


def test_code_table_sum_refuses_a_bound_past_float64():
    lut = torch.full((2, 2, 1), 2**52, dtype=torch.int64)
    with pytest.raises(ValueError, match="exceeds float64"):
        code_table_sum(lut, torch.zeros((1, 1, 2), dtype=torch.int64), (1, 2))


def test_post_conv_forward_uses_post_weights_that_export_as_its_codes():
    g = torch.Generator().manual_seed(0)
    layer = PostConv(2, 3, (3, 3), exponent_bits=3, generator=g)
    wq = layer.quantized_weight().detach()
    k = layer.scale_exp()
    sign, n = layer.codes()  # [out, kh*kw*C], sample-major channel-minor
    back = (sign.double() * 2.0**k * math.sqrt(2.0) ** (-n.double()))
    expect = wq.permute(0, 2, 3, 1).reshape(3, -1).double()
    assert torch.allclose(back, expect, atol=1e-6)
    assert set(n[sign == 0].tolist()) <= {0}


def _toy_model(kind, bits=2, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    stats = SampleStats.from_samples(100 + rng.poisson(30, 20000), 1023, 100.0)
    g = torch.Generator().manual_seed(seed)
    quant = make_quantizer("learned", bits, stats, 10, channels=channels, generator=g)
    model = TaskModel(quant, 8, 8, 5, kind, 3, 4, 6, g)
    with torch.no_grad():  # larger, more varied weights than the init
        model.post.weight.mul_(3)
        model.post.bias.normal_(0, 0.5, generator=g)
    return model.eval()


@pytest.mark.parametrize("kind", ["linear", "cnn"])
@pytest.mark.parametrize("samples", ["data", "extremes"])
@pytest.mark.parametrize("bits", [2, 5])  # per-code tables / decoded windows (> 16 codes)
def test_hard_model_equals_golden_on_exported_design(kind, samples, bits, tmp_path):
    model = _toy_model(kind, bits=bits)
    design = model.export("toy", guard_bits=2, output_bits=16)
    path = save_design(design, tmp_path / "d.yaml")
    design = load_design(path)  # exactly what goes to hardware
    rng = np.random.default_rng(1)
    if samples == "data":
        x = 100 + rng.poisson(30, (64, 8, 8))
    else:  # all-zero, all-max, and random over the whole word
        x = np.concatenate([np.zeros((1, 8, 8)), np.full((1, 8, 8), 1023),
                            rng.integers(0, 1024, (30, 8, 8))]).astype(np.int64)
    hard = model.hard_outputs(design, torch.as_tensor(x))
    gold = golden_outputs(design, x, model.kernel)
    assert np.array_equal(hard["outputs"].numpy(), gold)
    assert np.array_equal(hard["codes"].numpy(), ref_comparator_ladder(x, design.thresholds))
    if kind == "linear":  # one inference = the whole image, in row-major sample order
        direct = ref_adc_pipeline(design, x.reshape(len(x), 64))["outputs"]
        assert np.array_equal(direct, gold[:, 0])


def test_exported_integer_logits_track_the_float_model():
    model = _toy_model("linear", channels=1)
    design = model.export("toy", guard_bits=2, output_bits=24)
    x = torch.as_tensor(100 + np.random.default_rng(2).poisson(30, (256, 8, 8)))
    with torch.no_grad():
        float_logits = model(x.double()).double()
    out = model.hard_outputs(design, x)["outputs"][:, 0].double()
    lsb = mac_output_scale(design.mac, design.decode.frac_bits)
    assert torch.allclose(out * lsb, float_logits, atol=0.05 * float(float_logits.abs().max()))


def test_export_never_saturates_and_round_trips():
    model = _toy_model("linear")
    design = model.export("toy", guard_bits=2, output_bits=12)
    m, w = design.mac, design.decode.width
    assert m.output_shift == max(0, design.acc_bits - 12)
    # The largest and smallest accumulator any input can reach: products are monotone in the
    # activation, so each input's extreme is at the most negative or the largest decoded value.
    ends = np.array([-(2 ** (w - 1)), 2 ** (w - 1) - 1]).reshape(2, 1, 1)
    products = ref_post_multiplier(ends, m.sign, m.exponent, w, m.product_frac_bits)
    for pick in (np.max, np.min):
        acc = m.bias + pick(products, axis=0).sum(axis=-1)  # [outputs]
        half = 1 << (m.output_shift - 1) if m.output_shift else 0
        exact = (acc + half) >> m.output_shift
        assert np.abs(exact).max() < 2 ** (m.output_bits - 1), "a reachable sum saturates"
        assert np.array_equal(ref_output_stage(acc, m.output_shift, m.output_bits), exact)
    again = parse_design(design_to_dict(design))
    assert again.thresholds == design.thresholds
    assert np.array_equal(again.mac.sign, design.mac.sign)


def test_asq_outputs_are_multiples_of_the_adapted_step_and_train_the_step():
    from learn.model import ASQ

    asq = ASQ(3).train()
    x = torch.rand(4, 2, 5, 5) * 2
    y = asq(x)
    step = float(torch.exp(asq.log_step.detach()))  # w = 0: β = 1
    assert torch.allclose(y / step, torch.round(y / step), atol=1e-5)
    assert float(y.detach().max()) <= 7 * step + 1e-6 and float(y.detach().min()) >= 0
    y.sum().backward()
    assert asq.log_step.grad is not None and float(asq.log_step.grad) != 0


def test_bitshift_norm_scales_by_a_power_of_two():
    from learn.model import BitShiftNorm

    norm = BitShiftNorm(3)
    with torch.no_grad():
        norm.k.fill_(-1.7)
        norm.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    h = torch.ones(1, 3, 2, 2)
    assert norm(h)[0, :, 0, 0].tolist() == [0.25, 1.25, -0.75]


def test_post_bitshift_norm_rounds_to_a_power_of_two_step_saturates_and_learns_the_step():
    layer = PostConv(1, 4, (3, 3), generator=torch.Generator().manual_seed(0), bitshift_norm=True,
                     output_bits=4)
    x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    z = torch.nn.functional.conv2d(x, layer.quantized_weight(), layer.bias).detach()
    y = layer(x)
    m = layer.output_step_exp()  # first batch: ±3 σ of the outputs fill the 4-bit range
    assert 2.0**m >= 3 * float(z.std()) / 8 > 2.0 ** (m - 1)
    step = 2.0**m
    expect = torch.clamp(torch.floor(z / step + 0.5), -8, 7) * step
    assert torch.equal(y.detach(), expect)
    y.sum().backward()
    assert float(layer.log2_step.grad) != 0


def test_post_bitshift_norm_exports_as_the_mac_shift_and_saturation():
    model = _toy_model("cnn")
    with torch.no_grad():
        post = PostConv(model.post.in_channels, model.post.out_channels, (3, 3),
                        generator=torch.Generator().manual_seed(4), bitshift_norm=True,
                        output_bits=6)
        post.weight.copy_(model.post.weight)
        post.bias.copy_(model.post.bias)
        post.log2_scale.copy_(model.post.log2_scale)
    model.post = post
    x = torch.as_tensor(100 + np.random.default_rng(2).poisson(30, (64, 8, 8)))
    with torch.no_grad():
        post(model.features(x.double()))  # initialises the step, then a finer one saturates
        post.log2_step.sub_(2)
        float_out = post(model.features(x.double()))
    design = model.export("toy", guard_bits=2, output_bits=6)
    lsb = mac_output_scale(design.mac, design.decode.frac_bits)
    assert lsb == 2.0 ** post.output_step_exp() and design.mac.output_shift > 0
    hard = model.hard_outputs(design, x)["outputs"]
    assert np.array_equal(hard.numpy(), golden_outputs(design, x.numpy(), (3, 3)))
    assert int(hard.max()) == 31 and int(hard.min()) == -32  # it does saturate
    float_int = (float_out / lsb).round().permute(0, 2, 3, 1).reshape(hard.shape)
    # the float model is the integer one up to the products' rounding: at most one LSB apart
    diff = (float_int - hard.double()).abs()
    assert float(diff.max()) <= 1 and float((diff > 0).double().mean()) < 0.02

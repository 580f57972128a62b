"""The researcher's API: a network written here (a small ResNet) with the learn layers at its
front trains on simulated sensor frames, exports to a design file, and its eval-mode front end
equals the golden model bit for bit, on every input value of the ladder; bad models fail with
one line naming the layer."""

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from adcforge.design import dump_design, load_design, save_design
from adcforge.errors import AdcforgeError
from adcforge.golden import ref_adc_pipeline, ref_comparator_ladder
from learn import ADC, ExportError, LayerError, PostConv, PostLinear, export_design, freeze, \
    param_groups
from learn.post import mac_output_scale


class Block(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class ResNetish(nn.Module):
    """Learned 2-bit ADC → 3×3 POST conv (the hardware) → residual block → pooled classifier."""

    def __init__(self, sensor, classes=10, in_channels=1, method="learned"):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.adc = ADC(method, bits=2, sensor=sensor, channels=2, generator=g)
        self.post = PostConv(2 * in_channels, 8, (3, 3), generator=g)
        self.block = Block(8)
        self.head = nn.Linear(8, classes)

    def forward(self, dn):
        x = F.relu(self.post(self.adc(dn)))
        return self.head(self.block(x).mean((2, 3)))


@pytest.fixture(scope="module")
def sensor():
    from sim import load_sensor

    return load_sensor("phone", seed=0, width=8, height=8)


@pytest.fixture(scope="module")
def frames(sensor):
    from sim.data import load_dataset

    images, labels, _ = load_dataset("digits", "train", seed=0)
    g = torch.Generator().manual_seed(1)
    dn = sensor.torch("cpu").capture(torch.as_tensor(images[:384]) * 200, generator=g)
    return dn[:, None], torch.as_tensor(labels[:384])  # channels first: [N, 1, 8, 8]


@pytest.fixture(scope="module")
def trained(sensor, frames):
    model = ResNetish(sensor)
    dn, y = frames
    model(dn[:64])  # the first batch calibrates the ADC
    start = model.adc.thresholds()
    groups = param_groups(model, lr_thresholds=0.05, lr_network=3e-3)
    opt = torch.optim.Adam(groups)
    losses = []
    for i in range(6):
        idx = slice(64 * i, 64 * (i + 1))
        loss = F.cross_entropy(model(dn[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return model, start, groups, losses


def test_param_groups_split_thresholds_from_the_network_and_both_learn(trained):
    model, start, groups, losses = trained
    assert [g["name"] for g in groups] == ["network", "thresholds"]
    thr = {id(p) for p in model.adc.threshold_parameters()}
    assert {id(p) for p in groups[1]["params"]} == thr
    assert not thr & {id(p) for p in groups[0]["params"]}
    assert len(groups[0]["params"]) + len(thr) == len(list(model.parameters()))
    assert all(np.isfinite(losses))
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0
               for p in model.adc.threshold_parameters())


def test_calibration_starts_at_the_histogram_quantiles_of_the_first_batch(sensor, frames):
    from learn.quant import SampleStats, hist_int_thresholds

    dn = frames[0][:64]
    adc = ADC("learned", bits=2, sensor=sensor)
    adc(dn)
    stats = SampleStats.from_samples(dn.numpy(), 4095)
    assert adc.thresholds() == hist_int_thresholds(stats, 4, 4095).tolist()


def _windows(samples, kernel):
    """``[N, C, H, W]`` → ``[N, P, kh·kw·C]`` in the design's order: positions row-major, within
    a window samples row-major, the sample channel fastest."""
    s = np.asarray(samples, np.int64).transpose(0, 2, 3, 1)  # [N, H, W, C]
    win = sliding_window_view(s, kernel, axis=(1, 2))  # [N, oh, ow, C, kh, kw]
    n, oh, ow = win.shape[:3]
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(n, oh * ow, -1)


def _every_value(bits, h=8, w=8, c=1):
    """All ``2**bits`` sample values, then the word's extremes, as ``[N, c, h, w]`` images."""
    v = np.arange(2**bits)
    v = np.concatenate([v, np.zeros(h * w * c, np.int64), np.full(h * w * c, 2**bits - 1)])
    v = np.concatenate([v, np.zeros(-len(v) % (h * w * c), np.int64)])
    return torch.as_tensor(v.reshape(-1, c, h, w))


def _check_against_golden(model, design, x):
    """Codes, decoded values and POST outputs of the eval-mode model vs the golden model."""
    model.eval()
    x_np = x.numpy()
    assert np.array_equal(model.adc.codes(x).numpy(), ref_comparator_ladder(x_np,
                                                                            design.thresholds))
    gold = ref_adc_pipeline(design, _windows(x_np, model.post.kernel))
    with torch.no_grad():
        values = model.adc(x)  # [N, C*D, H, W] floats = table / 2**frac_bits
        ref_values = ref_adc_pipeline(replace(design, mac=None), x_np)["values"]  # [N,C,H,W,D]
        n, c, h, w, d = ref_values.shape
        ref_values = ref_values.transpose(0, 1, 4, 2, 3).reshape(n, c * d, h, w)
        assert np.array_equal((values.double() * 2.0**design.decode.frac_bits).numpy(),
                              ref_values)
        out = model.post(values)  # [N, out, oh, ow] in real units
    lsb = mac_output_scale(design.mac, design.decode.frac_bits)
    got = (out.double() / lsb).permute(0, 2, 3, 1).reshape(gold["outputs"].shape)
    assert np.array_equal(got.numpy(), gold["outputs"])
    return gold


def test_frozen_resnet_front_end_equals_the_golden_model_on_every_input_value(
        trained, frames, sensor, tmp_path):
    model, _, _, _ = trained
    before = export_design(model, "resnetish", output_bits=16, sensor=sensor)
    design = freeze(model, "resnetish", output_bits=16, sensor=sensor)
    assert dump_design(design) == dump_design(before)  # freezing exports what it freezes
    assert design.mac is not None and design.mac.inputs == 9 * 2 and design.mac.outputs == 8
    assert design.provenance["sensor"] == "phone" and design.provenance["post_layer"] == "post"
    design = load_design(save_design(design, tmp_path / "d.yaml"))  # what goes to hardware
    assert dump_design(export_design(model, "resnetish", output_bits=16, sensor=sensor)) == \
        dump_design(design)
    gold = _check_against_golden(model, design, _every_value(design.input_bits))
    assert len(np.unique(gold["codes"])) == 4  # the sweep reaches every code
    _check_against_golden(model, design, frames[0][:32].to(torch.int64))
    with torch.no_grad():  # and the network behind the frozen front end still runs
        assert model(frames[0][:4]).shape == (4, 10)


def test_eval_mode_adc_before_freezing_already_gives_the_exported_integers(sensor, frames):
    model = ResNetish(sensor)
    model(frames[0][:64])
    design = export_design(model, "d", output_bits=16)
    model.eval()
    x = _every_value(12)
    with torch.no_grad():
        v = model.adc(x).double() * 2.0**design.decode.frac_bits
    assert torch.equal(v.to(torch.int64), model.adc.int_values(x))
    ref = ref_adc_pipeline(design, _windows(x.numpy(), (3, 3)))["values"]
    assert np.array_equal(_windows(model.adc.int_values(x)[:, 0:1].numpy(), (3, 3)),
                          ref[..., 0])


def test_two_sample_channels_are_ordered_sample_channel_fastest(sensor, frames):
    model = ResNetish(sensor, in_channels=2)
    dn = frames[0][:64]
    model(torch.cat([dn, dn.flip(0)], 1))
    design = freeze(model, "two", output_bits=16)
    assert design.mac.inputs == 9 * 2 * 2
    _check_against_golden(model, design, _every_value(12, c=2))


def test_post_linear_exports_the_whole_image_as_one_inference(sensor, frames):
    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.adc = ADC("hist", bits=2, sensor=sensor)
            self.fc = PostLinear(1, 10, (8, 8), generator=torch.Generator().manual_seed(0))

        def forward(self, dn):
            return self.fc(self.adc(dn))

    model = Linear()
    model(frames[0][:64])
    design = freeze(model, "lin", output_bits=16)
    assert design.samples_per_inference == 64 and design.mac.outputs == 10
    x = _every_value(12)
    gold = ref_adc_pipeline(design, x.numpy().reshape(len(x), 64))["outputs"]
    model.eval()
    with torch.no_grad():
        out = model(x).double() / mac_output_scale(design.mac, design.decode.frac_bits)
    assert np.array_equal(out.numpy(), gold)


def test_the_bundled_task_model_is_built_from_the_same_layers():
    from learn.model import TaskModel
    from learn.quant import SampleStats, make_quantizer

    rng = np.random.default_rng(0)
    stats = SampleStats.from_samples(100 + rng.poisson(30, 20000), 1023, 100.0)
    g = torch.Generator().manual_seed(0)
    model = TaskModel(make_quantizer("learned", 2, stats, 10, channels=2, generator=g), 8, 8, 5,
                      "cnn", 3, 4, 6, g)
    assert isinstance(model.adc, ADC) and isinstance(model.post, PostConv)
    ours = export_design(model, "toy", output_bits=16, example=torch.zeros(1, 8, 8))
    assert dump_design(ours) != ""
    assert ours.thresholds == model.export("toy", 2, 16).thresholds
    assert np.array_equal(ours.mac.sign, model.export("toy", 2, 16).mac.sign)


# -- bad models -----------------------------------------------------------------------------
class _Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, dn):
        return self.conv(dn.float())


class _ConvAfterAdc(nn.Module):
    def __init__(self, sensor):
        super().__init__()
        self.adc = ADC("uniform", bits=2, sensor=sensor)
        self.stem = nn.Conv2d(1, 4, 3)

    def forward(self, dn):
        return self.stem(self.adc(dn))


class _ReluBetween(nn.Module):
    def __init__(self, sensor):
        super().__init__()
        self.adc = ADC("uniform", bits=2, sensor=sensor)
        self.post = PostConv(1, 4, (3, 3))

    def forward(self, dn):
        return self.post(torch.relu(self.adc(dn)))


class _NormFirst(nn.Module):
    def __init__(self, sensor):
        super().__init__()
        self.norm = nn.BatchNorm2d(1)
        self.adc = ADC("uniform", bits=2, sensor=sensor)

    def forward(self, dn):
        return self.adc(self.norm(dn))


class _Fp(nn.Module):
    def __init__(self, sensor):
        super().__init__()
        self.adc = ADC("fp", sensor=sensor)

    def forward(self, dn):
        return self.adc(dn)


@pytest.mark.parametrize("build, kwargs, text", [
    pytest.param(lambda s: _Plain(), {}, "_Plain has no learn.ADC layer (its first layer 'conv' "
                 "is not one)", id="no ADC"),
    pytest.param(_ConvAfterAdc, {"post": True}, "layer 'stem' (Conv2d) after the ADC is not a "
                 "POST layer", id="float conv after the ADC, POST required"),
    pytest.param(_ReluBetween, {}, "layer 'post' (POST layer) does not take the ADC's output "
                 "directly", id="relu between ADC and POST"),
    pytest.param(_NormFirst, {}, "layer 'norm' (BatchNorm2d) runs before the ADC 'adc'",
                 id="a layer before the ADC"),
    pytest.param(_Fp, {}, "layer 'adc' (ADC, method 'fp') cannot be exported",
                 id="full-precision ADC"),
])
def test_a_model_whose_front_cannot_be_exported_fails_naming_the_layer(build, kwargs, text,
                                                                       sensor, frames):
    model = build(sensor)
    model(frames[0][:16])
    with pytest.raises(ExportError) as e:
        export_design(model, "bad", **kwargs)
    assert text in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, AdcforgeError)


def test_a_float_layer_after_the_adc_exports_the_adc_alone(sensor, frames):
    model = _ConvAfterAdc(sensor)
    model(frames[0][:16])
    design = export_design(model, "adc_only")
    assert design.mac is None and len(design.thresholds) == 3


def test_uncalibrated_and_misshapen_use_are_one_line_errors(sensor, frames):
    model = ResNetish(sensor)
    with pytest.raises(LayerError, match=r"layer 'adc' \(ADC\) is not calibrated yet"):
        param_groups(model, 1e-2, 1e-3)
    with pytest.raises(ExportError, match="is not calibrated"):
        export_design(model)
    with pytest.raises(LayerError, match=r"expected channels-first samples \[N, C, H, W\], got "
                                         r"shape \(4, 8, 8\)"):
        model(frames[0][:4, 0])
    with pytest.raises(LayerError, match="unknown quantizer 'leraned'"):
        ADC("leraned", sensor=sensor)
    with pytest.raises(LayerError, match="input_bits is needed"):
        ADC("learned")


def test_a_post_layer_the_format_cannot_hold_is_refused_naming_it(sensor):
    class Wide(nn.Module):
        def __init__(self):
            super().__init__()
            self.adc = ADC("hist", bits=2, sensor=sensor, channels=16)
            self.fc = PostLinear(16, 2, (17, 17))  # 4624 inputs: the format allows 4096

        def forward(self, dn):
            return self.fc(self.adc(dn))

    model = Wide()
    model(torch.full((2, 1, 17, 17), 300.0) + torch.arange(289.0).reshape(1, 1, 17, 17))
    with pytest.raises(ExportError, match=r"^layer 'fc' cannot be exported: .*mac\.inputs.*4096"):
        export_design(model)


def test_a_frozen_model_travels_in_its_state_dict(sensor, frames):
    dn = frames[0]
    model = ResNetish(sensor)
    model(dn[:64])
    design = freeze(model, "saved", output_bits=16)
    again = ResNetish(sensor)
    again(dn[64:128])  # calibrated on other samples: another start
    again.load_state_dict(model.state_dict())
    assert dump_design(freeze(again, "saved", output_bits=16)) == dump_design(design)
    again.eval()
    model.eval()
    with torch.no_grad():
        assert torch.equal(again.post(again.adc(dn[:8])), model.post(model.adc(dn[:8])))

"""The trained model: quantizer → decode → POST layer (hardware) → float tail (host), its export
to a design file, and the integer hard-eval model that reproduces the golden model exactly.

Predictions are ``argmax`` over the last axis with ties broken towards the lowest class index
(``numpy.argmax``), in the hard-eval model and on golden outputs alike (:func:`predict`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from adcforge.design import Design

from .api import ADC, design_from_layers
from .post import (PostConv, code_table_sum, int_post_code_table, int_post_mac, int_post_output,
                   mac_output_scale, patches)
from .quant import Quantizer, ladder
from .ste import grad_scale, round_ste

#: Up to this many codes the hard-eval model sums per-code product tables as a one-hot
#: convolution (its cost grows with the codes); above, it multiplies the decoded windows (8 bits:
#: 5.1 s against 0.3 s for 800 images of 32×32 on one thread)
CODE_TABLE_MAX_CODES = 16


def predict(logits) -> np.ndarray:
    """Class index per row: ``argmax`` of the last axis, the lowest index among ties."""
    arr = logits.detach().cpu().numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits)
    return np.argmax(arr, axis=-1)


class TaskModel(nn.Module):
    """``DN [N, H, W]`` → logits ``[N, classes]``.

    ``kind="linear"``: the POST layer is the whole classifier (kernel = the image, one output
    per class). ``kind="cnn"``: a 3×3 POST convolution (the hardware layer) then ReLU, a 3×3
    convolution, ReLU, global average and max pooling and a linear classifier (host, float).

    Built from the public layers (:mod:`learn.api`): ``adc`` (an :class:`~learn.api.ADC` around
    ``quantizer``) and ``post`` (a :class:`~learn.post.PostConv`), then the host's ``tail``.
    """

    def __init__(self, quantizer: Quantizer, height: int, width: int, classes: int,
                 kind: str = "linear", exponent_bits: int = 3, conv_channels: int = 8,
                 hidden_channels: int = 16, generator: torch.Generator | None = None,
                 asq_bits: int = 0, bitshift_norm: bool = False,
                 post_bitshift_norm: bool = False, output_bits: int = 24):
        super().__init__()
        self.adc = ADC(quantizer)
        self.kind = kind
        self.height, self.width, self.classes = height, width, classes
        ch = quantizer.channels
        if kind == "linear":
            self.post = PostConv(ch, classes, (height, width), exponent_bits, generator,
                                 post_bitshift_norm, output_bits)
            self.tail = nn.Flatten(1)
        elif kind == "cnn3":  # POST 3x3 conv, then pooled conv stages (learn.networks)
            from .networks import PooledTail

            self.post = PostConv(ch, conv_channels, (3, 3), exponent_bits, generator,
                                 post_bitshift_norm, output_bits)
            self.tail = PooledTail(conv_channels, hidden_channels, classes, generator)
        else:
            self.post = PostConv(ch, conv_channels, (3, 3), exponent_bits, generator,
                                 post_bitshift_norm, output_bits)
            conv = nn.Conv2d(conv_channels, hidden_channels, 3)
            lin = nn.Linear(2 * hidden_channels, classes)
            with torch.no_grad():
                for m in (conv, lin):
                    bound = 1.0 / np.sqrt(m.weight[0].numel())
                    m.weight.copy_((torch.rand(m.weight.shape, generator=generator) * 2 - 1)
                                   * bound)
                    m.bias.zero_()
            self.tail = _Tail(conv, lin, asq_bits, hidden_channels if bitshift_norm else 0)

    @property
    def quantizer(self) -> Quantizer:
        """The ADC's quantizer."""
        return self.adc.quantizer

    @property
    def kernel(self) -> tuple[int, int]:
        return self.post.kernel

    def features(self, dn: torch.Tensor) -> torch.Tensor:
        """Decoded features ``[N, C, H, W]`` of samples ``[N, H, W]``."""
        return self.adc(dn.unsqueeze(1))

    def forward(self, dn: torch.Tensor) -> torch.Tensor:
        return self.tail(self.post(self.features(dn)))

    # -- export ---------------------------------------------------------------------------------
    def export(self, name: str, guard_bits: int, output_bits: int,
               provenance: dict | None = None) -> Design:
        """Return the design file of the quantizer and the POST layer (integers only)."""
        return design_from_layers(self.adc, self.post, name, guard_bits, output_bits, provenance)

    def hard_outputs(self, design: Design, samples: torch.Tensor) -> dict[str, torch.Tensor]:
        """Integer pipeline on integer samples ``[N, H, W]``: ``codes``, ``outputs`` (the MAC
        outputs ``[N, positions, mac.outputs]``, int64) — independent of ``adcforge.golden``."""
        samples = torch.as_tensor(samples).to(torch.int64)
        thr = torch.as_tensor(design.thresholds, dtype=torch.int64)
        codes = ladder(samples, thr)
        m = design.mac
        table = torch.as_tensor(design.decode.table, dtype=torch.int64)
        if len(table) <= CODE_TABLE_MAX_CODES:  # the products once per code, summed as a conv
            lut = int_post_code_table(table, m.sign, m.exponent, design.decode.width,
                                      m.product_frac_bits)  # [K, codes, outputs]
            acc = code_table_sum(lut, codes, self.kernel)
            out = int_post_output(acc, torch.as_tensor(m.bias), m.output_bits, m.output_shift)
        else:  # many codes: the products of the decoded windows
            windows = patches(codes, self.kernel)  # [N, P, K]
            acts = table[windows].reshape(windows.shape[:2] + (-1,))  # [N, P, K*C]
            out = int_post_mac(acts, torch.as_tensor(m.sign), torch.as_tensor(m.exponent),
                               torch.as_tensor(m.bias), design.decode.width, m.product_frac_bits,
                               m.output_bits, m.output_shift)
        return {"codes": codes, "outputs": out}

    @torch.no_grad()
    def logits_from_outputs(self, design: Design, outputs) -> torch.Tensor:
        """Host side: MAC outputs ``[N, P, out]`` (integers, from hardware or the golden model)
        → logits. For ``linear`` the integer outputs are the logits themselves."""
        outputs = torch.as_tensor(np.asarray(outputs), dtype=torch.int64)
        if self.kind == "linear":
            return outputs[:, 0, :]
        lsb = mac_output_scale(design.mac, design.decode.frac_bits)
        n = outputs.shape[0]
        oh, ow = self.height - self.kernel[0] + 1, self.width - self.kernel[1] + 1
        y = outputs.to(torch.float32) * lsb
        y = y.reshape(n, oh, ow, -1).permute(0, 3, 1, 2)
        device = next(self.tail.parameters()).device
        return self.tail(y.to(device)).cpu()

    @torch.no_grad()
    def hard_logits(self, design: Design, samples) -> torch.Tensor:
        return self.logits_from_outputs(design, self.hard_outputs(design, samples)["outputs"])


class _Tail(nn.Module):
    def __init__(self, conv: nn.Conv2d, lin: nn.Linear, asq_bits: int = 0, shift_channels: int = 0):
        super().__init__()
        self.conv = conv
        self.lin = lin
        self.asq = ASQ(asq_bits) if asq_bits else None
        self.norm = BitShiftNorm(shift_channels) if shift_channels else None

    def forward(self, y):
        a = torch.relu(y)
        if self.asq is not None:
            a = self.asq(a)
        h = self.conv(a)
        if self.norm is not None:
            h = self.norm(h)
        h = torch.relu(h)
        return self.lin(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1))


class ASQ(nn.Module):
    """Adaptive step-size quantization of non-negative activations (after the ASQ idea of
    "Precision Neural Network Quantization via Learnable Adaptive Modules", simplified):
    unsigned ``bits``, step ``s · β(x)`` with a per-example adapter
    ``β = 2 sigmoid(w (log mean(x) - μ))`` (``w`` learned, starts at 0 so ``β = 1``; ``μ`` a
    running mean), round half up straight-through, LSQ's step-gradient scale."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = int(bits)
        self.qp = 2**self.bits - 1
        self.log_step = nn.Parameter(torch.tensor(-2.0))
        self.w = nn.Parameter(torch.tensor(0.0))
        self.register_buffer("mu", torch.tensor(0.0))
        self.register_buffer("started", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = torch.log(x.detach().mean(dim=tuple(range(1, x.ndim)), keepdim=True) + 1e-8)
        if self.training:
            with torch.no_grad():
                batch = m.mean()
                self.mu.copy_(torch.where(self.started, 0.9 * self.mu + 0.1 * batch, batch))
                self.started.fill_(True)
        beta = 2 * torch.sigmoid(self.w * (m - self.mu))
        g = 1.0 / (x[0].numel() * self.qp) ** 0.5
        step = grad_scale(torch.exp(self.log_step), g) * beta
        return round_ste(torch.clamp(x / step, 0, self.qp)) * step


class BitShiftNorm(nn.Module):
    """Bit-shift normalisation (the 1 Mb mixed-precision encoder paper): a layer-shared
    power-of-two scale ``2**round(k)`` (``k`` learned, straight-through) and a per-channel bias,
    in place of BatchNorm — a shift in hardware."""

    def __init__(self, channels: int):
        super().__init__()
        self.k = nn.Parameter(torch.tensor(0.0))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h * torch.pow(2.0, round_ste(self.k)) + self.bias[:, None, None]


def golden_outputs(design: Design, samples: np.ndarray, kernel: tuple[int, int],
                   chunk: int = 256) -> np.ndarray:
    """MAC outputs of the golden model for images ``[N, H, W]``: ``[N, positions, outputs]``."""
    from adcforge.golden import ref_adc_pipeline

    samples = np.asarray(samples, dtype=np.int64)
    outs = []
    for i in range(0, len(samples), chunk):
        win = patches(torch.as_tensor(samples[i:i + chunk], dtype=torch.float64), kernel).numpy()
        outs.append(ref_adc_pipeline(design, win)["outputs"])
    return np.concatenate(outs) if outs else np.zeros((0, 1, design.mac.outputs), np.int64)

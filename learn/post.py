"""The hardware layer: a POST (power-of-√2) convolution over decoded samples, and its integer twin.

:class:`PostConv` is trained in float with straight-through POST weights
``w = 2**k · sign · √2^-n`` (``k`` a learned, straight-through rounded layer exponent;
``n in 0..2**exponent_bits - 1``), following "Precision Neural Network Quantization via Learnable
Adaptive Modules" with base √2 (its public code uses base 2). A kernel as large as the image is a
fully connected layer (the digits classifier that the board runs alone).

:func:`int_post_mac` is the integer arithmetic of the design file's ``mac`` block (see
``adcforge.design.Mac``), written independently of ``adcforge.golden`` in torch int64;
:func:`int_post_code_table` is the same arithmetic tabulated per code, what the hard-eval model
runs; the tests check both against the golden model bit for bit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from adcforge.design import Mac, accumulator_bits, product_frac_bits

from .ste import grad_scale, post_codes, post_round_ste, round_ste

SQRT2 = math.sqrt(2.0)


def sqrt_half_table(width: int, q: int) -> torch.Tensor:
    """``table[a + 2**(width-1)] = round(a 2**q / √2)`` (nearest; never a tie), int64.

    Computed in float64 on the magnitude and given the sign back (odd symmetry): for
    ``|a| 2**q < 2**40`` the distance of ``a 2**q / √2`` to a half-integer is far above float64
    error, so the rounding is exact.
    """
    half = 2 ** (width - 1)
    a = torch.arange(-half, half, dtype=torch.int64)
    mag = torch.floor(a.abs().to(torch.float64) * 2.0**q / SQRT2 + 0.5).to(torch.int64)
    return torch.sign(a) * mag


def int_post_mac(acts: torch.Tensor, sign: torch.Tensor, exponent: torch.Tensor,
                 bias: torch.Tensor, width: int, q: int, output_bits: int,
                 output_shift: int) -> torch.Tensor:
    """Integer POST layer: ``acts [..., inputs]`` (signed ``width``-bit) → ``[..., outputs]``.

    Product: even ``n``: ``(a << q) >> (n // 2)``; odd ``n``: ``round(a 2**q / √2) >> (n // 2)``;
    arithmetic shifts; sign applied last. ``acc = bias + sum``; output = ``acc`` shifted right by
    ``output_shift`` rounding half up, saturated to ``output_bits`` signed bits.
    """
    acts = acts.to(torch.int64)
    lead = acts.shape[:-1]
    acc = int_post_sum(acts.reshape(-1, acts.shape[-1]), sign, exponent, width, q)
    return int_post_output(acc, bias, output_bits, output_shift).reshape(lead + (sign.shape[0],))


def int_post_sum(acts: torch.Tensor, sign: torch.Tensor, exponent: torch.Tensor, width: int,
                 q: int) -> torch.Tensor:
    """Sum of the POST products of ``acts [M, inputs]`` → ``[M, outputs]`` int64 (no bias)."""
    table = sqrt_half_table(width, q).to(acts.device)
    odd = table[acts + 2 ** (width - 1)]
    even = acts * 2**q
    acc = torch.zeros(acts.shape[0], sign.shape[0], dtype=torch.int64, device=acts.device)
    sign = sign.to(torch.int64).to(acts.device)
    exponent = exponent.to(torch.int64).to(acts.device)
    for n in torch.unique(exponent[sign != 0]).tolist():
        base = (odd if n % 2 else even) >> (n // 2)
        w = torch.where(exponent == n, sign, torch.zeros_like(sign))
        acc += _int_matmul(base, w.T)
    return acc


def int_post_output(acc: torch.Tensor, bias: torch.Tensor, output_bits: int,
                    output_shift: int) -> torch.Tensor:
    """``acc + bias`` shifted right by ``output_shift`` rounding half up, saturated to
    ``output_bits`` signed bits."""
    acc = acc + bias.to(torch.int64).to(acc.device)
    if output_shift:
        acc = (acc + (1 << (output_shift - 1))) >> output_shift
    lim = 2 ** (output_bits - 1)
    return acc.clamp(-lim, lim - 1)


def int_post_code_table(decode: torch.Tensor, sign: torch.Tensor, exponent: torch.Tensor,
                        width: int, q: int) -> torch.Tensor:
    """The POST layer on codes: ``T[k, c, o]`` = the sum over channels of the products of
    ``decode[c]`` with output ``o``'s weights at window offset ``k`` (inputs ``k*C + channel``),
    int64 ``[offsets, codes, outputs]``. A window's accumulator is ``sum_k T[k, code_k]``: the
    products of a code are fixed, so they are made once per code (the LUT multiply core's view)
    rather than once per sample."""
    decode = torch.as_tensor(decode, dtype=torch.int64)
    sign, exponent = torch.as_tensor(sign), torch.as_tensor(exponent)
    ch = decode.shape[1]
    offsets = sign.shape[1] // ch
    return torch.stack([int_post_sum(decode, sign[:, k * ch:(k + 1) * ch],
                                     exponent[:, k * ch:(k + 1) * ch], width, q)
                        for k in range(offsets)])


def code_table_sum(lut: torch.Tensor, codes: torch.Tensor, kernel: tuple[int, int],
                   chunk: int = 1 << 24) -> torch.Tensor:
    """``acc[n, p] = sum_k lut[k, code at offset k of window p]``: codes ``[N, H, W]`` and a table
    of :func:`int_post_code_table` → accumulators ``[N, P, outputs]`` int64 (row-major positions).

    Done as a convolution of the codes' one-hot planes with the table, in float32 where every
    partial sum stays below ``2**24`` in magnitude and float64 (below ``2**53``) otherwise: exact
    either way, since every term is an integer and every partial sum is bounded by the sum over
    offsets of the table's largest magnitude (a convolution that summed otherwise — a Winograd
    transform — would not be; ``train`` checks the exported design's test outputs against the
    golden model at the end of every run, which would catch it).
    """
    k, n_codes, outs = lut.shape
    bound = int(lut.abs().amax(1).sum(0).max()) if lut.numel() else 0
    if bound >= 2**53:
        raise ValueError(f"POST accumulator bound 2**{bound.bit_length()} exceeds float64's exact "
                         "integer range")
    dtype = torch.float32 if bound < 2**24 else torch.float64
    weight = lut.permute(2, 1, 0).reshape(outs, n_codes, *kernel).to(dtype)
    step = max(1, chunk // max(1, n_codes * codes[0].numel()))
    out = []
    for i in range(0, len(codes), step):
        planes = F.one_hot(codes[i:i + step], n_codes).permute(0, 3, 1, 2).to(dtype)
        out.append(torch.round(F.conv2d(planes, weight)).to(torch.int64).flatten(2).transpose(1, 2))
    if not out:
        oh, ow = codes.shape[1] - kernel[0] + 1, codes.shape[2] - kernel[1] + 1
        return torch.zeros((0, oh * ow, outs), dtype=torch.int64)
    return torch.cat(out)


def _int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact int64 matrix product of ``a`` and a {-1, 0, 1} matrix ``b``.

    Done in float64, which is exact here: every term is an integer below ``2**27`` in magnitude
    (decode width <= 12, product fraction bits <= 15) and at most 4096 of them are summed, so
    every partial sum stays below ``2**53``.
    """
    return torch.round(a.to(torch.float64) @ b.to(torch.float64)).to(torch.int64)


class PostConv(nn.Module):
    """POST convolution ``in_channels → out_channels``, kernel ``(kh, kw)``, stride 1, no padding.

    Weights ``2**round(k) · post_round(w / 2**round(k))``; bias in float. ``exponent_bits`` sets
    the exponent range ``0..2**exponent_bits - 1`` (``1 .. √2^-(2**e - 1)``).

    ``bitshift_norm``: bit-shift normalisation of the outputs (the 1 Mb mixed-precision encoder
    paper's power-of-two scale in place of BatchNorm, here in the layer the hardware runs): the
    output is ``clamp(round(z / 2**m), -2**(B-1), 2**(B-1) - 1) · 2**m`` with ``B =
    output_bits`` and ``m`` a learned, straight-through rounded log2 step (LSQ's gradient in the
    log domain; initialised on the first batch so that ±3 σ of the outputs fill the range). It
    exports exactly as the design file's ``output_shift`` (the MAC's shift with round half up and
    saturation) and the bias; without it the export shift makes saturation impossible.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int],
                 exponent_bits: int = 3, generator: torch.Generator | None = None,
                 bitshift_norm: bool = False, output_bits: int = 24):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel = (int(kernel[0]), int(kernel[1]))
        self.exponent_bits = int(exponent_bits)
        self.max_n = 2**self.exponent_bits - 1
        fan_in = self.in_channels * self.kernel[0] * self.kernel[1]
        bound = 1.0 / math.sqrt(fan_in)
        w = (torch.rand(self.out_channels, self.in_channels, *self.kernel, generator=generator)
             * 2 - 1) * bound
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(self.out_channels))
        self.log2_scale = nn.Parameter(torch.tensor(float(math.log2(bound))))
        self.bitshift_norm = bool(bitshift_norm)
        self.output_bits = int(output_bits)
        if self.bitshift_norm:
            self.log2_step = nn.Parameter(torch.tensor(0.0))
            self.register_buffer("step_ready", torch.tensor(False))
        self.frozen: tuple[Mac, int, int] | None = None  # (mac, decode frac bits, width)

    @property
    def inputs(self) -> int:
        return self.in_channels * self.kernel[0] * self.kernel[1]

    def scale_exp(self) -> int:
        """The layer exponent ``k``: weights are ``2**k · sign · √2^-n``."""
        return int(math.floor(float(self.log2_scale.detach()) + 0.5))

    def quantized_weight(self) -> torch.Tensor:
        scale = torch.pow(2.0, round_ste(self.log2_scale))
        return post_round_ste(self.weight / scale, self.max_n) * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, C, H, W]`` float → ``[N, out, H - kh + 1, W - kw + 1]``."""
        if self.frozen is not None:
            return self.frozen_forward(x)
        z = F.conv2d(x, self.quantized_weight(), self.bias)
        return self.normalise(z) if self.bitshift_norm else z

    def freeze_to(self, mac: Mac, frac_bits: int, decode_width: int) -> None:
        """Hold the integer layer ``mac`` for decoded inputs with ``frac_bits`` fraction bits:
        from now on the forward is the MAC's integer arithmetic (:func:`int_post_mac`), its
        outputs in real units (times :func:`mac_output_scale`), with no gradient."""
        if mac.inputs != self.inputs or mac.outputs != self.out_channels:
            raise ValueError(f"a MAC of {mac.inputs} inputs and {mac.outputs} outputs does not "
                             f"fit a layer of {self.inputs} inputs and {self.out_channels} outputs")
        self.frozen = (mac, int(frac_bits), int(decode_width))
        for p in self.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def frozen_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The integer MAC on decoded values ``x = table / 2**frac_bits`` ``[N, C, H, W]``."""
        mac, f, width = self.frozen
        n, c, h, w = x.shape
        kh, kw = self.kernel
        acts = torch.floor(x.to(torch.float64) * 2.0**f + 0.5)
        cols = F.unfold(acts, self.kernel)  # [N, C*kh*kw, P], channel-major
        p = cols.shape[-1]
        cols = cols.reshape(n, c, kh * kw, p).permute(0, 3, 2, 1).reshape(n, p, -1)
        out = int_post_mac(cols.to(torch.int64), torch.as_tensor(mac.sign),
                           torch.as_tensor(mac.exponent), torch.as_tensor(mac.bias), width,
                           mac.product_frac_bits, mac.output_bits, mac.output_shift)
        y = out.to(torch.float64) * mac_output_scale(mac, f)
        return y.reshape(n, h - kh + 1, w - kw + 1, -1).permute(0, 3, 1, 2).to(x.dtype)

    def output_step_exp(self) -> int:
        """``round(m)``: one output LSB is ``2**round(m)`` (bit-shift normalisation)."""
        return int(math.floor(float(self.log2_step.detach()) + 0.5))

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        """Bit-shift normalisation: round to the learned power-of-two step, saturate."""
        half = 2 ** (self.output_bits - 1)
        if not bool(self.step_ready):
            with torch.no_grad():
                spread = 3 * float(z.detach().std()) + 1e-12
                self.log2_step.fill_(math.ceil(math.log2(spread / half)))
                self.step_ready.fill_(True)
        g = 1.0 / math.sqrt(z[0].numel() * (half - 1))
        step = torch.pow(2.0, round_ste(grad_scale(self.log2_step, g)))
        return torch.clamp(round_ste(z / step), -half, half - 1) * step

    def codes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sign, exponent)`` int64 ``[outputs, inputs]``, inputs ordered as the design file
        wants them: sample-major (row-major over the kernel window), channel-minor."""
        scale = 2.0 ** self.scale_exp()
        sign, n = post_codes(self.weight.detach().cpu() / scale, self.max_n)
        # [out, C, kh, kw] -> [out, kh, kw, C] -> [out, inputs]
        sign = sign.permute(0, 2, 3, 1).reshape(self.out_channels, -1)
        n = n.permute(0, 2, 3, 1).reshape(self.out_channels, -1)
        return sign, n

    def export(self, frac_bits: int, decode_width: int, guard_bits: int, output_bits: int) -> Mac:
        """Return the design file's :class:`~adcforge.design.Mac` for activations with
        ``frac_bits`` fraction bits. The output is ``acc >> output_shift`` with the shift that
        makes saturation impossible (``acc_bits - output_bits``, at least 0), or with bit-shift
        normalisation the learned step ``2**round(m)`` in accumulator units (at least 0)."""
        if self.bitshift_norm and output_bits != self.output_bits:
            raise ValueError(f"the layer was trained to saturate at {self.output_bits} bits, "
                             f"not {output_bits}")
        sign, n = self.codes()
        q = product_frac_bits(self.exponent_bits, guard_bits)
        k = self.scale_exp()
        bias = torch.floor(self.bias.detach().cpu().to(torch.float64) * 2.0 ** (frac_bits + q - k)
                           + 0.5)
        bias = bias.clamp(-(2**31), 2**31 - 1).to(torch.int64)
        acc_bits = accumulator_bits(self.inputs, decode_width, q, int(bias.abs().max()))
        if self.bitshift_norm:  # the accumulator's LSB is 2**(k - frac_bits - q)
            shift = max(0, self.output_step_exp() - (k - frac_bits - q))
        else:
            shift = max(0, acc_bits - output_bits)
        return Mac(inputs=self.inputs, outputs=self.out_channels,
                   exponent_bits=self.exponent_bits, guard_bits=guard_bits, scale_exp=k,
                   sign=sign.numpy(), exponent=n.numpy(), bias=bias.numpy(),
                   output_bits=output_bits, output_shift=shift)


class PostLinear(PostConv):
    """A fully connected POST layer over a whole ``[C, H, W]`` input (``image_size = (H, W)``):
    a :class:`PostConv` whose kernel is the image, its output flattened to ``[N, out]``. In
    hardware, one inference is the image's ``H·W`` samples in row-major order."""

    def __init__(self, in_channels: int, out_features: int, image_size: tuple[int, int],
                 exponent_bits: int = 3, generator: torch.Generator | None = None,
                 bitshift_norm: bool = False, output_bits: int = 24):
        super().__init__(in_channels, out_features, image_size, exponent_bits, generator,
                         bitshift_norm, output_bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, C, H, W]`` → ``[N, out]``."""
        return super().forward(x).flatten(1)


def mac_output_scale(mac: Mac, frac_bits: int) -> float:
    """Real value of one output LSB: ``2**(scale_exp + output_shift - frac_bits - Q)``."""
    return 2.0 ** (mac.scale_exp + mac.output_shift - frac_bits - mac.product_frac_bits)


def patches(samples: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """``[N, H, W]`` → ``[N, P, kh*kw]`` windows (stride 1, row-major positions and offsets)."""
    kh, kw = kernel
    win = torch.round(samples).to(torch.int64).unfold(1, kh, 1).unfold(2, kw, 1)
    return win.reshape(win.shape[0], -1, kh * kw)  # [N, oh, ow, kh, kw] → [N, P, kh*kw]


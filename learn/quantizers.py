"""Quantizers: sensor sample (integer DN) → code → decoded value(s) for the task network.

Every quantizer is an ``nn.Module`` with

- a training forward (``module.train()``): DN float tensor ``[...]`` → features ``[..., C]``,
  differentiable in the method's own way (straight-through, sigmoids, Gumbel, LSQ);
- a hard forward (``module.eval()``, or after :meth:`Quantizer.freeze`): the integer ladder
  ``code = #{t : x >= t}`` over :meth:`Quantizer.int_thresholds` followed by the fixed-point
  decode table — exactly what the design file and the golden model compute;
- an export: integer thresholds in the sample word (``1..2**input_bits - 1``, strictly
  increasing) and the decode table in signed fixed point (:func:`decode_fixed`).

Names (``METHODS``): ``learned``, ``bitwise``, ``gumbel``, ``hist``, ``uniform``,
``uniform-full``, ``sqrt``, ``lloyd``, ``lsq``, ``lsqplus``, ``fp``, and ``fixed`` (a ladder
given by hand: a camera's own, or one point of a sweep). Quantizer arithmetic runs in
float64 so that float thresholds and their integer export agree on every integer sample.

Threshold convention: a float threshold ``θ`` of an exclusive quantizer (``code = #(x > θ)``)
exports as ``t = floor(θ) + 1``; an inclusive one (``#(x >= θ)``, e.g. round half up) as
``t = ceil(θ)``. Either way ``x >= t`` holds for exactly the same integers ``x``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from adcforge.design import signed_range, threshold_problem
from adcforge.errors import ConfigError

from .methods import COMPARED_METHODS, METHODS  # noqa: F401  (re-exported)
from .ste import grad_scale, heaviside_ste, round_ste

DECODERS = ("embedding", "onehot", "centroid")
INITS = ("quantile", "uniform", "task")
ESTIMATORS = ("box", "normal", "logistic")
DTYPE = torch.float64


# -- sample statistics -----------------------------------------------------------------------
@dataclass
class SampleStats:
    """Histogram of integer sensor samples (DN) that initialises and calibrates quantizers.

    ``counts[v]`` is the number of samples equal to ``v`` (``0..max_dn``); ``lo`` is the lowest
    sample, ``hi`` the 99.9th percentile (the range a camera whose gain is set for the scene uses);
    ``black`` the sensor's black level in DN.
    """

    counts: np.ndarray
    max_dn: int
    black: float = 0.0
    gain_dn_per_e: float = 0.0
    read_noise_dn: float = 0.0

    @classmethod
    def from_samples(cls, samples, max_dn: int, black: float = 0.0, gain_dn_per_e: float = 0.0,
                     read_noise_dn: float = 0.0) -> "SampleStats":
        """Build the histogram of integer samples in ``0..max_dn``; ``gain_dn_per_e`` (K) and
        ``read_noise_dn`` describe the sensor's temporal noise (:meth:`noise_dn`)."""
        s = np.asarray(samples).astype(np.int64).ravel()
        if s.size == 0:
            raise ConfigError("no sensor samples to calibrate the quantizer on (empty dataset)")
        s = np.clip(s, 0, max_dn)
        return cls(np.bincount(s, minlength=max_dn + 1).astype(np.int64), int(max_dn),
                   float(black), float(gain_dn_per_e), float(read_noise_dn))

    def noise_dn(self, mean_dn):
        """Temporal noise (DN rms) of a sample whose mean is ``mean_dn``, by the EMVA 1288
        linear model ``σ_y² = σ_read² + σ_q² + K (μ_y - black)`` (dark shot noise and the dark
        offset cancel); ``σ_q² = 1/12``. Works on numbers, numpy arrays and torch tensors."""
        signal = (mean_dn - self.black) * self.gain_dn_per_e
        signal = signal.clamp(min=0) if isinstance(signal, torch.Tensor) else np.maximum(signal, 0)
        return (self.read_noise_dn**2 + 1 / 12 + signal) ** 0.5

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def cdf(self) -> np.ndarray:
        """``cdf[v] = P(x <= v)``."""
        return np.cumsum(self.counts) / self.total

    def quantile(self, q: float) -> int:
        """Return the smallest sample value ``v`` with ``P(x <= v) >= q``."""
        return int(np.searchsorted(self.cdf, q - 1e-12, side="left"))

    @property
    def lo(self) -> int:
        return int(np.flatnonzero(self.counts)[0])

    @property
    def hi(self) -> int:
        return max(self.quantile(0.999), self.lo + 1)

    @property
    def values(self) -> np.ndarray:
        return np.arange(self.max_dn + 1)

    def mean_abs(self, offset: float) -> float:
        return float((np.abs(self.values - offset) * self.counts).sum() / self.total)


# -- integer thresholds ------------------------------------------------------------------------
def make_strict(t, top: int) -> np.ndarray:
    """Clamp integer thresholds to ``1..top`` and make them strictly increasing, moving as few
    as possible: first pushed up past their predecessor, then down below their successor."""
    t = np.clip(np.asarray(t, dtype=np.int64), 1, top).copy()
    n = len(t)
    if n > top:
        raise ConfigError(f"{n} thresholds do not fit a sample word whose largest value is {top}")
    for i in range(1, n):
        t[i] = max(t[i], t[i - 1] + 1)
    for i in range(n - 1, -1, -1):
        t[i] = min(t[i], top - (n - 1 - i))
        if i < n - 1:
            t[i] = min(t[i], t[i + 1] - 1)
    return t


def export_int_thresholds(theta, inclusive: bool, top: int) -> np.ndarray:
    """Integer thresholds ``t`` with ``x >= t ⇔ x > θ`` (``x >= θ`` if inclusive), made strict."""
    theta = np.asarray(theta, dtype=np.float64)
    t = np.ceil(theta) if inclusive else np.floor(theta) + 1
    return make_strict(np.clip(t, -1, top + 1).astype(np.int64), top)


def ladder(x: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Return ``#{t : x >= t}`` for sorted integer thresholds (int64 codes)."""
    return torch.searchsorted(thresholds.to(x.dtype).contiguous(), x.contiguous(), right=True)


def expected_steps(u: torch.Tensor, width: torch.Tensor, kind: str) -> torch.Tensor:
    """Smooth step ``F(u / w)``: ``normal`` is ``Φ(u / w)``, the probability that a sample whose
    noise-free value lies ``u`` above a threshold, with Gaussian noise of rms ``w``, lands above
    it (so ``Σ_i F((x - θ_i) / w_i)`` is the expected code of the sample); ``logistic`` is
    ``σ(1.702 u / w)``, the logistic curve with the same slope at 0, whose tails are heavier."""
    z = u / width
    if kind == "normal":
        return 0.5 * (1 + torch.erf(z / math.sqrt(2.0)))
    if kind == "logistic":
        return torch.sigmoid(1.702 * z)
    raise ConfigError(f"quantizer.estimator: unknown {kind!r}; allowed: {', '.join(ESTIMATORS)}")


def expected_step_density(u: torch.Tensor, width: torch.Tensor, kind: str) -> torch.Tensor:
    """``d/du`` of :func:`expected_steps`: ``φ(u / w) / w`` (normal) or the logistic density."""
    z = u / width
    if kind == "normal":
        return torch.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * width)
    s = torch.sigmoid(1.702 * z)
    return 1.702 * s * (1 - s) / width


class SmoothStepSTE(torch.autograd.Function):
    """``1[u > 0]`` forward; ``grad · F'(u / w) / w`` backward (``w``, ``kind`` without grad)."""

    @staticmethod
    def forward(ctx, u, width, kind):
        ctx.save_for_backward(u, width)
        ctx.kind = kind
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        u, width = ctx.saved_tensors
        return grad * expected_step_density(u, width, ctx.kind), None, None


def smooth_step_ste(u: torch.Tensor, width: torch.Tensor, kind: str) -> torch.Tensor:
    """Return the hard step ``1[u > 0]`` whose gradient is that of :func:`expected_steps`
    (straight-through: the network sees the codes the hardware makes; the thresholds get the
    gradient of the expected code, which exists wherever the window ``w`` reaches)."""
    if kind not in ("normal", "logistic"):
        raise ConfigError(f"quantizer.estimator: unknown {kind!r}; allowed: "
                          f"{', '.join(ESTIMATORS)}")
    width = torch.as_tensor(width, dtype=u.dtype, device=u.device)
    return SmoothStepSTE.apply(u, width, kind)


TASK_WEIGHTS = ("fisher", "abs")


def weighted_int_thresholds(values: np.ndarray, weights: np.ndarray, levels: int,
                            top: int, rule: str = "abs") -> np.ndarray:
    """Thresholds that split a weighted sample mass into ``levels`` equal parts: ``t_k`` with
    ``M(x < t_k)`` nearest to ``k / L`` of the total. ``values``: integer samples (DN);
    ``weights``: one per sample, >= 0 (e.g. ``|∂loss/∂sample|``). ``rule``:

    - ``abs``: ``M(v) = Σ_{x = v} w`` (the histogram weighted by the weights);
    - ``fisher``: ``M(v) = (Σ_{x = v} w²)^(1/3)``, the threshold density of high-resolution
      quantization theory for a distortion weighted by the squared sensitivity (Panter–Dite:
      density ∝ (p(v) · E[w² | v])^(1/3)); it puts codes into sparse stretches of the histogram
      where the loss is sensitive, instead of into the bulk.

    All-zero weights fall back to the plain histogram."""
    v = np.clip(np.asarray(values, dtype=np.int64).ravel(), 0, top)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if rule == "abs":
        mass = np.bincount(v, weights=w, minlength=top + 1)
    elif rule == "fisher":
        mass = np.bincount(v, weights=w * w, minlength=top + 1) ** (1 / 3)
    else:
        raise ConfigError(f"quantizer.task_weight: unknown {rule!r}; allowed: "
                          f"{', '.join(TASK_WEIGHTS)}")
    if not mass.sum() > 0:
        mass = np.bincount(v, minlength=top + 1).astype(np.float64)
    below = np.concatenate([[0.0], np.cumsum(mass) / mass.sum()])
    t = [int(np.argmin(np.abs(below - k / levels))) for k in range(1, levels)]
    return make_strict(t, top)


def uniform_int_thresholds(lo: float, hi: float, levels: int, top: int) -> np.ndarray:
    """Uniform ADC over the integers ``lo..hi``: ``code = floor((x - lo) L / (hi - lo + 1))``."""
    k = np.arange(1, levels)
    return make_strict(np.ceil(lo + k * (hi - lo + 1) / levels).astype(np.int64), top)


def sqrt_int_thresholds(lo: float, hi: float, levels: int, top: int) -> np.ndarray:
    """Square-root companding: ``code = floor(L sqrt((x - lo) / (hi - lo + 1)))``."""
    k = np.arange(1, levels)
    return make_strict(np.ceil(lo + (hi - lo + 1) * (k / levels) ** 2).astype(np.int64), top)


def hist_int_thresholds(stats: SampleStats, levels: int, top: int) -> np.ndarray:
    """Histogram equalisation: ``t_k`` with ``P(x < t_k)`` nearest to ``k / L``."""
    below = np.concatenate([[0.0], stats.cdf])  # below[v] = P(x < v), v = 0..max_dn + 1
    t = [int(np.argmin(np.abs(below - k / levels))) for k in range(1, levels)]
    return make_strict(t, top)


def lloyd_max(stats: SampleStats, levels: int, iterations: int = 100):
    """Run Lloyd-Max (MSE-optimal scalar quantizer) on the histogram; return
    ``(float thresholds, centroids)``: thresholds are centroid midpoints (``x >= θ`` → upper)."""
    v = stats.values.astype(np.float64)
    w = stats.counts.astype(np.float64)
    t = hist_int_thresholds(stats, levels, stats.max_dn).astype(np.float64) - 0.5
    c = np.zeros(levels)
    for _ in range(iterations):
        codes = np.searchsorted(t, v, side="right")
        mass = np.bincount(codes, weights=w, minlength=levels)
        sums = np.bincount(codes, weights=w * v, minlength=levels)
        edges = np.concatenate([[stats.lo - 0.5], t, [stats.hi + 0.5]])
        mid = (edges[:-1] + edges[1:]) / 2
        c = np.where(mass > 0, sums / np.maximum(mass, 1e-300), mid)
        c = np.maximum.accumulate(c)
        new_t = (c[:-1] + c[1:]) / 2
        if np.allclose(new_t, t):
            break
        t = new_t
    return t, c


def bin_centroids(stats: SampleStats, thresholds: np.ndarray) -> np.ndarray:
    """Return the mean sample (DN) of each bin of an integer ladder (bin midpoint if empty)."""
    v = stats.values.astype(np.float64)
    w = stats.counts.astype(np.float64)
    levels = len(thresholds) + 1
    codes = np.searchsorted(thresholds, v, side="right")
    mass = np.bincount(codes, weights=w, minlength=levels)
    sums = np.bincount(codes, weights=w * v, minlength=levels)
    edges = np.concatenate([[min(stats.lo, thresholds[0] - 1)], thresholds,
                            [max(stats.hi, thresholds[-1]) + 1]]).astype(np.float64)
    mid = (edges[:-1] + edges[1:] - 1) / 2
    return np.where(mass > 0, sums / np.maximum(mass, 1e-300), mid)


# -- decode table in fixed point ---------------------------------------------------------------
def decode_frac_bits(table: torch.Tensor, width: int) -> int:
    """Largest fraction bits F (0..24) such that ``max|table| * 2**F <= 2**(width-1) - 1``."""
    m = float(table.detach().abs().max()) if table.numel() else 0.0
    top = 2 ** (width - 1) - 1
    if m <= 0:
        return 24
    f = math.floor(math.log2(top / m))
    while f > -64 and m * 2.0**f > top:  # guard against log2 rounding
        f -= 1
    while f < 24 and m * 2.0 ** (f + 1) <= top:
        f += 1
    return int(min(max(f, 0), 24))


def decode_fixed(table: torch.Tensor, width: int) -> tuple[int, torch.Tensor]:
    """Quantise a decode table to signed ``width``-bit fixed point: ``(F, int64 table)``.

    ``int = clip(floor(v * 2**F + 1/2), -2**(width-1), 2**(width-1) - 1)`` in float64, with F from
    :func:`decode_frac_bits` (F is clamped at 0, so very large values saturate).
    """
    f = decode_frac_bits(table, width)
    lo, hi = signed_range(width)
    ints = torch.floor(table.detach().to(DTYPE) * 2.0**f + 0.5).clamp(lo, hi).to(torch.int64)
    return f, ints


def fake_quant_table(table: torch.Tensor, width: int) -> torch.Tensor:
    """The decode table as the hardware holds it (fixed point), with a straight-through gradient."""
    f, _ = decode_fixed(table, width)
    lo, hi = signed_range(width)
    return torch.clamp(round_ste(table.to(DTYPE) * 2.0**f), lo, hi) / 2.0**f


class Decoder(nn.Module):
    """Code → vector table ``[levels, channels]``.

    ``embedding``: trainable, channel 0 initialised at the bin's histogram-equalised value (the
    fraction of training samples below the middle of its probability mass, :func:`bin_cdf_mid`;
    the code's rank when not given), further channels small and random; ``centroid``: fixed
    normalised centroids (1 channel); ``onehot``: fixed identity (``levels`` channels).
    """

    def __init__(self, kind: str, levels: int, channels: int, init: np.ndarray,
                 generator: torch.Generator | None = None, embed_init: np.ndarray | None = None):
        super().__init__()
        if kind not in DECODERS:
            raise ConfigError(f"quantizer.decoder: unknown decoder {kind!r}; allowed: "
                              f"{', '.join(DECODERS)}")
        self.kind = kind
        init = torch.as_tensor(np.asarray(init, dtype=np.float64)).reshape(levels, 1)
        if kind == "onehot":
            table = torch.eye(levels, dtype=DTYPE)
        elif kind == "centroid":
            table = init.clone()
        else:  # histogram-equalised value in [0, 1]: well scaled whatever the light level
            rank = (torch.linspace(0, 1, levels, dtype=DTYPE)[:, None] if embed_init is None
                    else torch.as_tensor(np.asarray(embed_init, np.float64)).reshape(levels, 1))
            extra = torch.randn(levels, channels - 1, generator=generator, dtype=DTYPE) * 0.3
            table = torch.cat([rank, extra], dim=1)
        if kind == "embedding":
            self.weight = nn.Parameter(table)
        else:
            self.register_buffer("weight", table)

    def forward(self) -> torch.Tensor:
        return self.weight


# -- quantizers ---------------------------------------------------------------------------------
class Quantizer(nn.Module):
    """Base class: normalisation, integer ladder, hard forward, freezing, export.

    Samples are normalised as ``u = (x - lo) / scale`` (DN) with ``lo`` the lowest training
    sample and ``scale = hi - lo`` so that learning rates mean the same at every light level.
    """

    method = "?"
    inclusive = False
    exportable = True

    def __init__(self, bits: int, stats: SampleStats, input_bits: int, width: int = 8):
        super().__init__()
        self.bits = int(bits)
        self.levels = 2**self.bits
        self.input_bits = int(input_bits)
        self.top = 2**self.input_bits - 1
        self.width = int(width)
        self.lo = float(stats.lo)
        self.scale = float(max(stats.hi - stats.lo, 1))
        self.temperature = 1.0  # annealed by the trainer for soft methods
        self.generator: torch.Generator | None = None
        self.register_buffer("frozen", torch.zeros(0, dtype=torch.int64))

    # normalisation
    def to_u(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(DTYPE) - self.lo) / self.scale

    def to_dn(self, u: torch.Tensor) -> torch.Tensor:
        return u * self.scale + self.lo

    # thresholds
    def float_thresholds(self) -> torch.Tensor:
        """Current float thresholds in DN (float64, ``levels - 1``)."""
        raise NotImplementedError

    def int_thresholds(self) -> torch.Tensor:
        """Integer thresholds of the hard quantizer (exported), int64, strictly increasing."""
        if self.is_frozen:
            return self.frozen
        theta = self.float_thresholds().detach().cpu().numpy()
        return torch.as_tensor(export_int_thresholds(theta, self.inclusive, self.top),
                               device=self.frozen.device)

    @property
    def is_frozen(self) -> bool:
        return self.frozen.numel() > 0

    def freeze(self) -> None:
        """Snap the thresholds to their integer export; the trainable table may keep learning."""
        self.frozen = self.int_thresholds().clone()

    def threshold_parameters(self) -> list[nn.Parameter]:
        """Parameters trained with the thresholds' learning rate."""
        return []

    # decoding
    def table(self) -> torch.Tensor:
        """Decode table ``[levels, channels]`` (float64, before fixed-point rounding)."""
        raise NotImplementedError

    @property
    def channels(self) -> int:
        return self.table().shape[1]

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Hard codes of integer-valued samples ``x`` (the comparator ladder)."""
        return ladder(x.to(DTYPE), self.int_thresholds())

    def hard_forward(self, x: torch.Tensor) -> torch.Tensor:
        return fake_quant_table(self.table(), self.width)[self.codes(x)]

    def train_forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """DN ``[...]`` → features ``[..., channels]`` (float32)."""
        if self.training and not self.is_frozen:
            out = self.train_forward(x)
        else:
            out = self.hard_forward(x)
        return out.to(torch.float32)

    def export(self) -> tuple[list[int], int, np.ndarray]:
        """Return ``(thresholds, frac_bits, int table [levels, channels])`` for the design file."""
        f, ints = decode_fixed(self.table(), self.width)
        return [int(t) for t in self.int_thresholds().cpu()], f, ints.cpu().numpy()


def _centroid_init(stats: SampleStats, thresholds_int: np.ndarray, lo: float, scale: float):
    return (bin_centroids(stats, thresholds_int) - lo) / scale


def bin_cdf_mid(stats: SampleStats, thresholds_int) -> np.ndarray:
    """Per bin of an integer ladder: ``(P(x < t_k) + P(x < t_{k+1})) / 2`` (``t_0 = -inf``,
    ``t_L = +inf``), the histogram-equalised value of the code, in [0, 1]."""
    below = np.concatenate([[0.0], stats.cdf])  # below[v] = P(x < v)
    t = np.clip(np.asarray(thresholds_int, dtype=np.int64), 0, stats.max_dn + 1)
    edges = np.concatenate([[0.0], below[t], [1.0]])
    return (edges[:-1] + edges[1:]) / 2


class FixedThresholdQuantizer(Quantizer):
    """``hist``, ``uniform``, ``uniform-full``, ``sqrt``, ``lloyd``: integer thresholds fixed from
    the training samples; ``fixed``: the integer ``thresholds`` given. The decode table is
    trainable (embedding) or fixed."""

    inclusive = True

    def __init__(self, method: str, bits: int, stats: SampleStats, input_bits: int,
                 decoder: str = "embedding", channels: int = 1, width: int = 8,
                 generator: torch.Generator | None = None, thresholds=None):
        super().__init__(bits, stats, input_bits, width)
        self.method = method
        L, top = self.levels, self.top
        lo, hi = stats.lo, stats.hi
        if method == "fixed":
            t = check_thresholds(thresholds, L, top)
        elif method == "uniform":
            t = uniform_int_thresholds(lo, hi, L, top)
        elif method == "uniform-full":
            t = uniform_int_thresholds(0, stats.max_dn, L, top)
        elif method == "sqrt":
            t = sqrt_int_thresholds(lo, hi, L, top)
        elif method == "hist":
            t = hist_int_thresholds(stats, L, top)
        elif method == "lloyd":
            theta, _ = lloyd_max(stats, L)
            t = export_int_thresholds(theta, True, top)
        else:
            raise ConfigError(f"unknown fixed method {method!r}")
        self.frozen = torch.as_tensor(t, dtype=torch.int64)
        self.decoder = Decoder(decoder, L, channels, _centroid_init(stats, t, self.lo, self.scale),
                               generator, bin_cdf_mid(stats, t))

    def float_thresholds(self):
        return self.frozen.to(DTYPE)

    def table(self):
        return self.decoder()


def _inverse_cdf_knots(stats: SampleStats, lo: float, scale: float):
    """Knots ``(p, u)`` of the training samples' inverse CDF: a threshold at ``u`` (normalised
    units) has the fraction ``p`` of samples below it, ``p`` strictly increasing (a run of equal
    ``p`` over empty sample values becomes one knot in its middle). A threshold at ``p`` splits
    the training samples at ``p`` up to the one sample value that straddles ``p``."""
    below = np.concatenate([[0.0], stats.cdf])  # below[v] = P(x < v) = P(x <= v - 1/2)
    u = (np.arange(stats.max_dn + 2) - 0.5 - lo) / scale
    p, start = np.unique(below, return_index=True)
    stop = np.concatenate([start[1:], [len(below)]]) - 1
    return p, (u[start] + u[stop]) / 2


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``fp(x)`` through the knots ``(xp, fp)`` (``xp`` increasing), with the
    gradient of the segment."""
    i = torch.searchsorted(xp, x.detach()).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    return f0 + (x - x0) * (f1 - f0) / (x1 - x0)


def check_thresholds(thresholds, levels: int, top: int) -> np.ndarray:
    """Return a hand-given ladder as int64 after checking it: ``levels - 1`` integers, strictly
    increasing, in ``1..top``; a ConfigError names the first offending entry."""
    key = "quantizer.thresholds"
    if not isinstance(thresholds, (list, tuple)):
        raise ConfigError(f"{key}: method 'fixed' needs a list of {levels - 1} integer "
                          f"thresholds, got {thresholds!r}")
    if len(thresholds) != levels - 1:
        raise ConfigError(f"{key}: {levels - 1} thresholds are needed for "
                          f"{levels.bit_length() - 1} bits, got {len(thresholds)}")
    bad = threshold_problem(thresholds, top)
    if bad:
        raise ConfigError(f"{key}[{bad[0]}]: got {bad[1]!r}; {bad[2]} (the sample word)")
    return np.asarray(thresholds, dtype=np.int64)


def _quantile_init(stats: SampleStats, levels: int, top: int, init) -> np.ndarray:
    if not isinstance(init, str):  # an integer ladder (the task-aware start, computed outside)
        return check_thresholds([int(t) for t in init], levels, top)
    if init == "task":
        raise ConfigError("quantizer.init: 'task' needs the task-aware ladder; train computes it "
                          "(learn.train.task_start) and passes the thresholds")
    if init == "quantile":
        return hist_int_thresholds(stats, levels, top)
    if init == "uniform":
        return uniform_int_thresholds(stats.lo, stats.hi, levels, top)
    raise ConfigError(f"quantizer.init: unknown init {init!r}; allowed: {', '.join(INITS)}")


class _LearnedThresholds(Quantizer):
    """Learned thresholds, strictly increasing by construction, initialised at integer
    thresholds ``t - 1/2`` (quantile or uniform start).

    Parameterisation (``param``):

    - ``absolute``: ``θ = base + cumsum(softplus(gaps))`` in normalised units; ``base`` is ``θ_1``
      itself, so Adam moves it by about the learning rate (in units of the data range) per step.
    - ``relative``: ``θ_1 = softplus(base)`` above the lowest sample, so steps are relative to the
      threshold's own scale (thresholds barely leave their start).
    - ``quantile``: the thresholds are the training samples' inverse CDF at
      ``p_k = cumsum(softmax(z))_k``; ``z`` (the log bin masses) starts at the initial ladder's
      bin masses. Invariant to gain, black level and light: a step changes the fraction of
      samples in a bin by a relative amount.

    Straight-through window (``window``), the half-width ``w`` of the box gradient per
    threshold (gumbel and bitwise: the scale of the relaxation):

    - ``gap``: half the mean distance to the neighbouring thresholds (one threshold: 5 % of the
      data range; ``relative``: the lowest sample is the first threshold's left neighbour).
    - ``noise``: the sensor's temporal noise at the threshold (:meth:`SampleStats.noise_dn`): the
      box then averages over the samples whose code the noise flips, the gradient of the
      expected code under the sensor's own noise.

    Both are at least one DN.

    ``dn``: as ``absolute`` but ``base`` and the gaps are in DN, so that an Adam step moves a
    threshold by about the learning rate *in DN* whatever the sample range (the trainer gives
    this parameterisation ``train.lr_thresholds_dn``).

    Gradient estimator of ``learned`` (``estimator``): ``box`` (the straight-through box of
    :func:`~learn.ste.heaviside_ste` of half-width ``w``), ``normal`` or ``logistic``
    (:func:`smooth_step_ste`: the hard step forward, the gradient of the expected code under
    noise of rms ``w`` backward). ``window_anneal = (a0, a1)``: the window is at least
    ``a · (hi - lo)``, ``a`` annealed geometrically from ``a0`` to ``a1`` as :attr:`progress`
    goes from 0 to 1 (set by the trainer), so that early in training a threshold feels samples
    a quarter of the range away and crosses empty stretches of the histogram.
    """

    PARAMS = ("absolute", "relative", "quantile", "dn")
    WINDOWS = ("gap", "noise")  # "auto" is resolved by make_quantizer

    def __init__(self, bits, stats, input_bits, width, init, param="absolute", window="gap",
                 estimator="box", window_anneal=None):
        super().__init__(bits, stats, input_bits, width)
        if estimator not in ESTIMATORS:
            raise ConfigError(f"quantizer.estimator: unknown {estimator!r}; allowed: "
                              f"{', '.join(ESTIMATORS)}")
        self.estimator = estimator
        self.window_anneal = None if window_anneal is None else tuple(map(float, window_anneal))
        self.progress = 0.0
        if param not in self.PARAMS:
            raise ConfigError(f"quantizer.threshold_param: unknown {param!r}; allowed: "
                              f"{', '.join(self.PARAMS)}")
        if window not in self.WINDOWS:
            raise ConfigError(f"quantizer.ste_window: unknown {window!r}; allowed: "
                              f"{', '.join(self.WINDOWS)}")
        if window == "noise" and stats.gain_dn_per_e <= 0:
            raise ConfigError("quantizer.ste_window: 'noise' needs the sensor's conversion gain "
                              "in the sample statistics")
        self.param = param
        self.window = window
        self.stats = stats
        t0 = _quantile_init(stats, self.levels, self.top, init)
        self.init_int = t0
        if param == "quantile":
            knot_p, knot_u = _inverse_cdf_knots(stats, self.lo, self.scale)
            self.register_buffer("knot_p", torch.as_tensor(knot_p))
            self.register_buffer("knot_u", torch.as_tensor(knot_u))
            below = np.concatenate([[0.0], stats.cdf])[np.clip(t0, 0, stats.max_dn + 1)]
            mass = np.maximum(np.diff(np.concatenate([[0.0], below, [1.0]])), 1e-6)
            self.log_mass = nn.Parameter(torch.as_tensor(np.log(mass), dtype=DTYPE))
            return
        theta_u = (t0.astype(np.float64) - 0.5 - self.lo) / self.scale
        if param == "dn":
            theta_u = theta_u * self.scale
        gaps = np.diff(theta_u)
        inv_softplus = gaps + np.log(-np.expm1(-gaps))  # softplus^-1, gaps > 0
        if param == "relative":
            first = max(theta_u[0], 0.5 / self.scale)
            base = first + np.log(-np.expm1(-first))
        else:
            base = theta_u[0]
        self.base = nn.Parameter(torch.tensor([base], dtype=DTYPE))
        self.gaps = nn.Parameter(torch.as_tensor(inv_softplus, dtype=DTYPE))

    def thresholds_u(self) -> torch.Tensor:
        if self.param == "quantile":
            p = torch.cumsum(torch.softmax(self.log_mass, 0), 0)[:-1]
            return _interp(p, self.knot_p, self.knot_u)
        first = F.softplus(self.base) if self.param == "relative" else self.base
        theta = torch.cat([first, first + torch.cumsum(F.softplus(self.gaps), 0)])
        return theta / self.scale if self.param == "dn" else theta

    def float_thresholds(self):
        return self.to_dn(self.thresholds_u())

    def threshold_parameters(self):
        return [self.log_mass] if self.param == "quantile" else [self.base, self.gaps]

    def ste_width(self, theta_u: torch.Tensor) -> torch.Tensor:
        """Half-width of the straight-through window per threshold (normalised units), see the
        class docstring."""
        th = theta_u.detach()
        if self.window == "noise":
            w = self.stats.noise_dn(self.to_dn(th)) / self.scale
        elif self.param == "relative":
            d = torch.diff(torch.cat([torch.zeros_like(th[:1]), th]))
            left = d
            right = torch.cat([d[1:], d[-1:]])
            w = (left + right) / 4
        elif len(th) == 1:
            w = torch.full_like(th, 0.05)
        else:
            d = torch.diff(th)
            left = torch.cat([d[:1], d])
            right = torch.cat([d, d[-1:]])
            w = (left + right) / 4
        if self.window_anneal is not None:
            a0, a1 = self.window_anneal
            w = torch.clamp(w, min=a0 * (a1 / a0) ** min(max(self.progress, 0.0), 1.0))
        return torch.clamp(w, min=1.0 / self.scale)

    def steps(self, u: torch.Tensor, th: torch.Tensor) -> torch.Tensor:
        """``1[u > θ_i]`` per threshold ``[..., levels - 1]`` with the configured gradient."""
        w = self.ste_width(th)
        if self.estimator == "box":
            return heaviside_ste(u[..., None] - th, w)
        return smooth_step_ste(u[..., None] - th, w, self.estimator)


class LearnedQuantizer(_LearnedThresholds):
    """``learned``: Eq. 1 of "Task-Guided Quantization Strategies" with a straight-through
    estimator and a trainable embedding decoder.

    ``y = E[0] + sum_i (E[i+1] - E[i]) H(x - θ_i)`` equals ``E[#(x > θ)]`` in the forward pass
    (thresholds sorted); backward, ``H`` has the box gradient of :func:`heaviside_ste`.
    """

    method = "learned"

    def __init__(self, bits, stats, input_bits, decoder="embedding", channels=1, width=8,
                 init="quantile", generator=None, param="absolute", window="gap",
                 estimator="box", window_anneal=None):
        super().__init__(bits, stats, input_bits, width, init, param, window, estimator,
                         window_anneal)
        self.decoder = Decoder(decoder, self.levels, channels,
                               _centroid_init(stats, self.init_int, self.lo, self.scale), generator,
                               bin_cdf_mid(stats, self.init_int))

    def table(self):
        return self.decoder()

    def train_forward(self, x):
        u = self.to_u(x)
        th = self.thresholds_u()
        steps = self.steps(u, th)
        e = fake_quant_table(self.table(), self.width)
        return e[0] + steps @ (e[1:] - e[:-1])


class GumbelQuantizer(_LearnedThresholds):
    """``gumbel``: Gumbel-softmax relaxation of the threshold quantizer (straight-through).

    Logits ``l_k = sum_{i<=k} (u - θ_i) / w_i`` (``l_0 = 0``) have ``argmax = #(u > θ)``; training
    draws the one-hot ``argmax(l + g)`` (``g`` Gumbel noise) forward and backpropagates
    ``softmax((l + g) / τ)``, ``τ`` = the annealed temperature.
    """

    method = "gumbel"

    def __init__(self, bits, stats, input_bits, decoder="embedding", channels=1, width=8,
                 init="quantile", generator=None, param="absolute", window="gap"):
        super().__init__(bits, stats, input_bits, width, init, param, window)
        self.decoder = Decoder(decoder, self.levels, channels,
                               _centroid_init(stats, self.init_int, self.lo, self.scale), generator,
                               bin_cdf_mid(stats, self.init_int))

    def table(self):
        return self.decoder()

    def logits(self, x):
        u = self.to_u(x)
        th = self.thresholds_u()
        d = (u[..., None] - th) / self.ste_width(th)
        return torch.cat([torch.zeros_like(d[..., :1]), torch.cumsum(d, -1)], -1)

    def train_forward(self, x):
        logits = self.logits(x)
        uniform = torch.rand(logits.shape, generator=self.generator, dtype=DTYPE,
                             device=logits.device)
        g = -torch.log(-torch.log(uniform.clamp(1e-12, 1 - 1e-12)))
        y = logits + g
        soft = torch.softmax(y / max(self.temperature, 1e-3), -1)
        hard = F.one_hot(y.argmax(-1), self.levels).to(DTYPE)
        onehot = hard - soft.detach() + soft
        return onehot @ fake_quant_table(self.table(), self.width)


def bit_table(bits: int) -> np.ndarray:
    """``table[code, c]`` = bit ``bits - 1 - c`` of ``code`` (MSB first), as 0.0 / 1.0."""
    codes = np.arange(2**bits)[:, None]
    return ((codes >> np.arange(bits - 1, -1, -1)[None]) & 1).astype(np.float64)


class BitwiseQuantizer(_LearnedThresholds):
    """``bitwise``: trainable bitwise soft quantization.

    Bit ``j`` of the code toggles at thresholds ``θ_{m 2^j}``; its soft form is
    ``sum_m (-1)^(m+1) sigmoid((u - θ_{m 2^j}) / (τ w))`` with ``τ`` annealed towards 0 (hard
    steps). The ``bits`` outputs are concatenated (MSB first); the decode table holds the bits.
    """

    method = "bitwise"

    def __init__(self, bits, stats, input_bits, width=8, init="quantile", generator=None,
                 param="absolute", window="gap"):
        super().__init__(bits, stats, input_bits, width, init, param, window)
        self.register_buffer("bits_table", torch.as_tensor(bit_table(self.bits)))
        # sel[i, c] = +-1 where threshold i (0-based) toggles output channel c
        sel = np.zeros((self.levels - 1, self.bits))
        for c in range(self.bits):
            j = self.bits - 1 - c
            for m in range(1, 2 ** (self.bits - j)):
                sel[m * 2**j - 1, c] = 1.0 if m % 2 else -1.0
        self.register_buffer("sel", torch.as_tensor(sel))

    def table(self):
        return self.bits_table

    def train_forward(self, x):
        u = self.to_u(x)
        th = self.thresholds_u()
        z = (u[..., None] - th) / (self.ste_width(th) * max(self.temperature, 1e-6))
        return torch.sigmoid(z) @ self.sel


class LSQQuantizer(Quantizer):
    """``lsq`` / ``lsqplus``: Learned Step Size Quantization (Esser et al. 2020) and LSQ+
    (Bhalgat et al. 2020), unsigned: ``v̂ = s clamp(round((v - β) / s), 0, Q_P) + β`` with
    ``v = (x - black) / scale``, ``β = 0`` for LSQ (learned for LSQ+), the step gradient scaled by
    ``1 / sqrt(N Q_P)``. Round is half up, so ``code >= k ⇔ x >= black + scale (β + (k - ½) s)``.
    The decoded value is ``v̂`` itself (1 channel)."""

    inclusive = True

    def __init__(self, bits, stats, input_bits, plus: bool, features: int, width=8):
        super().__init__(bits, stats, input_bits, width)
        self.method = "lsqplus" if plus else "lsq"
        self.black = float(stats.black)
        qp = self.levels - 1
        self.g = 1.0 / math.sqrt(max(features, 1) * qp)
        if plus:
            v_lo = (stats.lo - self.black) / self.scale
            v_hi = (stats.hi - self.black) / self.scale
            s0 = (v_hi - v_lo) / qp
            self.beta = nn.Parameter(torch.tensor(v_lo, dtype=DTYPE))
        else:
            s0 = 2 * stats.mean_abs(self.black) / self.scale / math.sqrt(qp)
            self.register_buffer("beta", torch.tensor(0.0, dtype=DTYPE))
        self.step = nn.Parameter(torch.tensor(max(s0, 1e-6), dtype=DTYPE))

    def threshold_parameters(self):
        return [self.step] + ([self.beta] if isinstance(self.beta, nn.Parameter) else [])

    def _s(self):
        return torch.clamp(self.step, min=1e-6)

    def float_thresholds(self):
        k = torch.arange(1, self.levels, dtype=DTYPE, device=self.step.device)
        return self.black + self.scale * (self.beta + (k - 0.5) * self._s())

    def table(self):
        k = torch.arange(self.levels, dtype=DTYPE, device=self.step.device)
        return (k * self._s() + self.beta)[:, None]

    def train_forward(self, x):
        v = (x.to(DTYPE) - self.black) / self.scale
        s = grad_scale(self._s(), self.g)
        beta = grad_scale(self.beta, self.g) if self.beta.requires_grad else self.beta
        vbar = round_ste(torch.clamp((v - beta) / s, 0, self.levels - 1))
        return (vbar * s + beta)[..., None]


class LinearInput(Quantizer):
    """No quantizer and no table: the normalised sample ``u = (x - lo) / (hi - lo)`` itself as
    one channel, differentiable in ``x``. The fine reference model whose loss gradient with
    respect to the samples places the task-aware start (:func:`weighted_int_thresholds`). Not
    exportable."""

    method = "linear-input"
    exportable = False

    def __init__(self, stats: SampleStats, input_bits: int):
        super().__init__(1, stats, input_bits)

    def table(self):
        return torch.zeros(1, 1, dtype=DTYPE)

    def forward(self, x):
        return self.to_u(x)[..., None].to(torch.float32)


class FullPrecision(Quantizer):
    """``fp``: no quantizer. Every value of the sample word is its own code, decoded by a table
    ``[2**input_bits, channels]`` in float (no fixed point): ``decoder="embedding"`` (default)
    trainable, channel 0 initialised at the value's histogram-equalised rank (``hist`` with a
    trainable embedding at the sensor's full resolution: any quantizer with any decode table is a
    special case of it); ``decoder="centroid"``: the fixed normalised sample ``u`` (the linear
    input). Not exportable."""

    method = "fp"
    exportable = False

    def __init__(self, stats: SampleStats, input_bits: int, decoder: str = "embedding",
                 channels: int = 1, generator: torch.Generator | None = None):
        super().__init__(1, stats, input_bits)
        if decoder == "onehot":
            raise ConfigError(f"quantizer.decoder: 'onehot' would need {self.top + 1} channels "
                              f"for method 'fp'; allowed: embedding, centroid")
        v = np.arange(self.top + 1)  # every value its own bin: thresholds 1..top
        self.decoder = Decoder(decoder, self.top + 1, channels, (v - self.lo) / self.scale,
                               generator, bin_cdf_mid(stats, v[1:]))

    def float_thresholds(self):
        raise ConfigError("method 'fp' has no thresholds: it is the full-precision reference")

    def table(self):
        return self.decoder()

    def forward(self, x):
        idx = x.to(torch.int64).clamp(0, self.top)
        return self.table()[idx].to(torch.float32)


def make_quantizer(method: str, bits: int, stats: SampleStats, input_bits: int, *,
                   decoder: str = "embedding", channels: int = 1, width: int = 8,
                   init: str = "quantile", features: int = 1,
                   generator: torch.Generator | None = None,
                   threshold_param: str = "absolute", ste_window: str = "auto",
                   thresholds=None, estimator: str = "box", window_anneal=None) -> Quantizer:
    """Build the quantizer ``method`` (one of :data:`METHODS`) for ``bits``-bit codes.

    ``stats``: histogram of training samples; ``input_bits``: sample word width; ``decoder`` /
    ``channels``: decode table kind and width (threshold methods and ``gumbel``; ``bitwise``
    decodes to its bits, ``lsq``/``lsqplus`` to their dequantized value); ``width``: decode
    fixed-point width; ``init``: ``quantile`` or ``uniform`` (learned methods); ``features``:
    samples per example (LSQ gradient scale); ``threshold_param``: ``absolute`` or ``relative``
    (learned-threshold methods, see :class:`_LearnedThresholds`); ``ste_window``: ``gap``,
    ``noise`` or ``auto`` (``noise`` for ``learned`` when ``stats`` knows the sensor's gain,
    ``gap`` for the soft relaxations, whose scale it is); ``thresholds``: the ladder of ``fixed``;
    ``estimator`` and ``window_anneal``: the gradient of ``learned`` (:class:`_LearnedThresholds`).
    ``init`` may also be an integer ladder (the start a trainer computed, e.g. task-aware).
    Raises ConfigError for unknown names or values out of range.
    """
    if method not in METHODS:
        raise ConfigError(f"quantizer.method: unknown method {method!r}; allowed: "
                          f"{', '.join(METHODS)}")
    if not (isinstance(bits, int) and 1 <= bits <= 8):
        raise ConfigError(f"quantizer.bits: got {bits!r}; allowed range is 1..8")
    if 2**bits - 1 > 2**input_bits - 1:
        raise ConfigError(f"quantizer.bits: {bits} bits need {2**bits - 1} thresholds but a "
                          f"{input_bits}-bit sample holds at most {2**input_bits - 1}")
    if decoder == "onehot":
        channels = 2**bits
        if channels > 16:
            raise ConfigError(f"quantizer.decoder: 'onehot' needs 2**bits channels; the design "
                              f"file allows at most 16 (bits <= 4), got bits={bits}")
    if decoder == "centroid":
        channels = 1
    if not 1 <= channels <= 16:
        raise ConfigError(f"quantizer.channels: got {channels}; allowed range is 1..16")
    if method == "fp":
        return FullPrecision(stats, input_bits, decoder, channels, generator)
    if ste_window == "auto":
        ste_window = "noise" if method == "learned" and stats.gain_dn_per_e > 0 else "gap"
    if method == "learned":
        return LearnedQuantizer(bits, stats, input_bits, decoder, channels, width, init, generator,
                                threshold_param, ste_window, estimator, window_anneal)
    if method == "gumbel":
        return GumbelQuantizer(bits, stats, input_bits, decoder, channels, width, init, generator,
                               threshold_param, ste_window)
    if method == "bitwise":
        return BitwiseQuantizer(bits, stats, input_bits, width, init, generator, threshold_param,
                                ste_window)
    if method in ("lsq", "lsqplus"):
        return LSQQuantizer(bits, stats, input_bits, method == "lsqplus", features, width)
    return FixedThresholdQuantizer(method, bits, stats, input_bits, decoder, channels, width,
                                   generator, thresholds)

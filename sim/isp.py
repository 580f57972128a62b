"""Inverse ISP: from ordinary sRGB images to approximate linear raw data.

Follows Brooks et al., "Unprocessing Images for Learned Raw Denoising" (CVPR 2019): inverse tone
curve (smoothstep), inverse sRGB transfer function (colour-science's sRGB EOTF), inverse colour
correction (a random convex mix of four camera XYZ→cam matrices), inverse white balance and
digital gain (with the paper's highlight-preserving "safe" inversion), then an RGGB Bayer mosaic.
A grayscale path (inverse tone curve, inverse sRGB, relative luminance Y) serves monochrome
sensors. All values are relative radiance in [0, 1]; 1.0 is white.
"""

from __future__ import annotations

from dataclasses import dataclass

import colour
import numpy as np

# Brooks et al. 2019, Table/Code: XYZ→camera matrices of four cameras.
XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
])
RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                    [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]])
LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 / sRGB relative luminance of linear RGB


@dataclass(frozen=True)
class UnprocessParams:
    """The random parameters of one unprocessing: rgb→cam matrix and the three gains."""

    rgb2cam: np.ndarray  # (3, 3), rows sum to 1
    rgb_gain: float  # digital brightness gain that is undone (> 0)
    red_gain: float  # white-balance gain of red that is undone
    blue_gain: float  # white-balance gain of blue that is undone


def random_params(rng: np.random.Generator) -> UnprocessParams:
    """Draw unprocessing parameters as in Brooks et al. (random CCM, gains)."""
    weights = rng.uniform(1e-8, 1e8, size=4)
    xyz2cam = np.tensordot(weights / weights.sum(), XYZ2CAMS, axes=1)
    rgb2cam = xyz2cam @ RGB2XYZ
    rgb2cam = rgb2cam / rgb2cam.sum(axis=-1, keepdims=True)
    rgb_gain = 1.0 / rng.normal(0.8, 0.1)
    return UnprocessParams(rgb2cam, float(rgb_gain), float(rng.uniform(1.9, 2.4)),
                           float(rng.uniform(1.5, 1.9)))


def mean_params() -> UnprocessParams:
    """Return the parameters at the centre of Brooks et al.'s ranges (equal matrix weights)."""
    rgb2cam = XYZ2CAMS.mean(axis=0) @ RGB2XYZ
    rgb2cam = rgb2cam / rgb2cam.sum(axis=-1, keepdims=True)
    return UnprocessParams(rgb2cam, 1.0 / 0.8, 2.15, 1.7)


def inverse_smoothstep(image):
    """Undo the global tone curve ``3x² − 2x³`` (input clipped to [0, 1])."""
    image = np.clip(image, 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * image) / 3.0)


def smoothstep(image):
    """Apply the tone curve ``3x² − 2x³`` (the forward of :func:`inverse_smoothstep`)."""
    image = np.clip(image, 0.0, 1.0)
    return 3.0 * image**2 - 2.0 * image**3


def srgb_to_linear(image):
    """Decode sRGB values in [0, 1] to linear (IEC 61966-2-1 EOTF, colour-science)."""
    return np.asarray(colour.models.eotf_sRGB(np.clip(image, 0.0, 1.0)), dtype=np.float64)


def linear_to_srgb(image):
    """Encode linear values in [0, 1] as sRGB (inverse EOTF, colour-science)."""
    return np.asarray(colour.models.eotf_inverse_sRGB(np.clip(image, 0.0, 1.0)), dtype=np.float64)


def apply_ccm(image, ccm):
    """Multiply each pixel's RGB (last axis) by the 3×3 matrix ``ccm``."""
    return np.einsum("...c,dc->...d", image, ccm)


def safe_invert_gains(image, params: UnprocessParams):
    """Undo white balance and brightness gains, keeping saturated highlights (Brooks et al.)."""
    gains = np.array([1.0 / params.red_gain, 1.0, 1.0 / params.blue_gain]) / params.rgb_gain
    gray = image.mean(axis=-1, keepdims=True)
    inflection = 0.9
    mask = (np.maximum(gray - inflection, 0.0) / (1.0 - inflection)) ** 2
    safe = np.maximum(mask + (1.0 - mask) * gains, gains)
    return image * safe


def mosaic(image, pattern: str = "RGGB"):
    """Sample an ``[..., H, W, 3]`` RGB image into an ``[..., H, W]`` Bayer mosaic (even H, W)."""
    h, w = image.shape[-3:-1]
    if h % 2 or w % 2:
        raise ValueError(f"a Bayer mosaic needs even height and width (got {h}x{w})")
    out = np.empty(image.shape[:-1], dtype=image.dtype)
    index = {"r": 0, "g": 1, "b": 2}
    for i, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[..., dy::2, dx::2] = image[..., dy::2, dx::2, index[pattern[i].lower()]]
    return out


def unprocess(image, params: UnprocessParams | None = None, pattern: str | None = "RGGB",
              rng: np.random.Generator | None = None):
    """Unprocess an sRGB image ``[..., H, W, 3]`` in [0, 1] to linear camera raw.

    Returns a Bayer mosaic ``[..., H, W]`` (or ``[..., H, W, 3]`` camera RGB when ``pattern`` is
    ``None``), relative radiance in [0, 1]. ``params`` defaults to random ones from ``rng``, or to
    :func:`mean_params` when neither is given.
    """
    image = np.asarray(image, dtype=np.float64)
    if params is None:
        params = random_params(rng) if rng is not None else mean_params()
    x = inverse_smoothstep(image)
    x = srgb_to_linear(x)
    x = apply_ccm(x, params.rgb2cam)
    x = safe_invert_gains(x, params)
    x = np.clip(x, 0.0, 1.0)
    return x if pattern is None else mosaic(x, pattern)


def unprocess_gray(image):
    """Return linear relative luminance in [0, 1] from sRGB ``[..., H, W, 3]`` or ``[..., H, W]``.

    Inverse tone curve and inverse sRGB per channel, then Y = 0.2126 R + 0.7152 G + 0.0722 B
    (white stays 1.0).
    """
    image = np.asarray(image, dtype=np.float64)
    x = srgb_to_linear(inverse_smoothstep(image))
    if x.ndim >= 3 and x.shape[-1] == 3:
        x = x @ LUMA
    return np.clip(x, 0.0, 1.0)


def process(camera_rgb, params: UnprocessParams | None = None):
    """Forward ISP for display: white balance and gain, colour correction, sRGB, tone curve.

    ``camera_rgb``: ``[..., 3]`` linear camera RGB (as :func:`unprocess` with ``pattern=None``
    returns); ``params`` defaults to :func:`mean_params`. Returns sRGB in [0, 1].
    """
    params = params or mean_params()
    gains = np.array([params.red_gain, 1.0, params.blue_gain]) * params.rgb_gain
    x = np.asarray(camera_rgb, dtype=np.float64) * gains
    x = apply_ccm(x, np.linalg.inv(params.rgb2cam))
    return smoothstep(linear_to_srgb(np.clip(x, 0.0, 1.0)))


def process_gray(linear):
    """Forward of :func:`unprocess_gray` for display: sRGB encode then tone curve."""
    return smoothstep(linear_to_srgb(linear))

"""The sensor model's stages (numpy reference), each a pure function with an explicit generator.

A frame is made by composing the stages in the fixed order of :data:`STAGES`::

    photons ─► photoelectrons ─► dark_current ─► shot_noise ─► dsnu ─► full_well ─► read_noise
            ─► conversion_gain ─► gain_nonlinearity ─► black_level ─► adc ─► DN (uint16)

Units: photons and electrons are counts per pixel during the exposure (float arrays); DN are
digital numbers of the fine ADC. Fixed patterns (PRNU, DSNU, row/column offsets, hot pixels,
comparator offsets) are arrays made once per sensor instance (:mod:`sim.sensor`) and passed in;
temporal noise comes from the ``rng`` argument, a :class:`numpy.random.Generator`. No stage
modifies its input array.
"""

from __future__ import annotations

import numpy as np

from .poisson import poisson

STAGES = (
    "photoelectrons",
    "dark_current",
    "shot_noise",
    "dsnu",
    "full_well",
    "read_noise",
    "conversion_gain",
    "gain_nonlinearity",
    "black_level",
    "adc",
)


def apply_photoelectrons(photons, response_map):
    """Return the mean photo-electrons per pixel, ``photons × η × (1 + PRNU)``.

    ``photons``: mean photons per pixel during the exposure (scalar or array, ≥ 0).
    ``response_map``: e⁻/photon per pixel, the quantum efficiency times the PRNU gain map
    (scalar or array broadcastable to ``photons``).
    """
    photons = np.asarray(photons, dtype=np.float64)
    if np.any(photons < 0):
        raise ValueError("photons must be >= 0")
    return photons * response_map


def apply_dark_current(mean_e, dark_current_e_per_s, exposure_s):
    """Return ``mean_e`` plus the mean dark electrons ``dark_current × exposure``.

    ``mean_e``: mean electrons per pixel. ``dark_current_e_per_s``: e⁻/s at the operating
    temperature (scalar, or a per-pixel map when there are hot pixels). ``exposure_s``: seconds.
    """
    return mean_e + np.asarray(dark_current_e_per_s, dtype=np.float64) * float(exposure_s)


def apply_shot_noise(mean_e, rng, gaussian_above_e=None):
    """Draw the collected electrons: one Poisson draw per pixel for photon and dark shot noise.

    ``mean_e``: mean electrons per pixel (≥ 0). Returns float64 electrons (integers unless the
    fast mode is on). ``gaussian_above_e``: ``None`` (default) samples exactly; a number switches on
    the fast mode, a rounded Gaussian of the same mean and variance where the mean exceeds it.
    """
    return poisson(np.asarray(mean_e, dtype=np.float64), rng, gaussian_above=gaussian_above_e)


def apply_dsnu(electrons, dsnu_map_e):
    """Add the dark-signal non-uniformity, a fixed offset map in e⁻ (scalar 0 when off)."""
    return electrons + dsnu_map_e


def apply_full_well(electrons, full_well_e):
    """Clip the charge at the full-well capacity ``full_well_e`` (e⁻)."""
    return np.minimum(electrons, full_well_e)


def apply_read_noise(electrons, read_noise_e, rng, row_offsets_e=None, column_offsets_e=None):
    """Add Gaussian temporal read noise (``read_noise_e`` e⁻ rms) and fixed row/column offsets.

    ``row_offsets_e``: shape ``(height, 1)`` e⁻, ``column_offsets_e``: shape ``(width,)`` e⁻,
    or ``None``. The standard normals are drawn in float32 (numpy's ziggurat), which is ample for
    a noise term and faster than float64.
    """
    noise = rng.standard_normal(np.shape(electrons), dtype=np.float32)  # float32 ziggurat
    out = electrons + noise * np.float64(read_noise_e)
    if row_offsets_e is not None:
        out = out + row_offsets_e
    if column_offsets_e is not None:
        out = out + column_offsets_e
    return out


def apply_conversion_gain(electrons, conversion_gain_dn_per_e):
    """Convert electrons to (analog) DN with the system gain K in DN/e⁻."""
    return electrons * conversion_gain_dn_per_e


def apply_gain_nonlinearity(dn, gain_nonlinearity_percent, full_scale_dn):
    """Compress the gain quadratically: ``dn × (1 − β·dn/full_scale)``, β = percent / 100.

    At ``dn = full_scale_dn`` the output is ``(1 − β)`` of the linear value; 0 % is linear.
    Negative inputs are left linear.
    """
    if gain_nonlinearity_percent == 0:
        return dn
    beta = gain_nonlinearity_percent / 100.0
    return dn * (1.0 - beta * np.clip(dn, 0.0, None) / full_scale_dn)


def apply_black_level(dn, black_level_dn):
    """Add the black level (DN)."""
    return dn + black_level_dn


class ThresholdTable:
    """Sorted comparator thresholds (DN) with a guide table for fast counting.

    ``count(x)`` returns the number of thresholds at or below each ``x`` (what
    :func:`numpy.searchsorted` with ``side="right"`` returns), in a few vectorised gathers: the
    integer part of ``x`` selects the thresholds that lie in ``[j, j + 1)``, usually one.
    """

    def __init__(self, thresholds_dn):
        t = np.sort(np.asarray(thresholds_dn, dtype=np.float64))
        self.values = t
        self.lo = int(np.floor(t[0])) - 1
        self.hi = int(np.floor(t[-1])) + 1
        edges = np.arange(self.lo, self.hi + 2, dtype=np.float64)
        self.base = np.searchsorted(t, edges, side="left")  # thresholds below each integer
        self.width = int(np.max(np.diff(self.base)))  # most thresholds in one unit interval
        self.padded = np.concatenate([t, np.full(self.width + 1, np.inf)])

    def count(self, x):
        """Return #{thresholds ≤ x} per element (int64)."""
        x = np.clip(x, self.lo, self.hi + 0.5)
        j = np.floor(x).astype(np.int64) - self.lo
        start = self.base[j]
        stop = self.base[j + 1]
        out = start.copy()
        for m in range(self.width):
            idx = start + m
            out += (idx < stop) & (self.padded[idx] <= x)
        return out


def apply_adc(dn, max_dn, thresholds_dn=None):
    """Quantize analog DN to integer codes ``0..max_dn`` (uint16).

    Without ``thresholds_dn`` the ADC rounds to the nearest code (half to even) and clips.
    With ``thresholds_dn`` (sorted, length ``max_dn``; threshold ``k`` nominally ``k + 0.5``; an
    array or a :class:`ThresholdTable`) the code is the number of thresholds at or below the
    input, as a flash ADC's comparators count (this models comparator offset mismatch).
    """
    if thresholds_dn is None:
        return np.clip(np.rint(dn), 0, max_dn).astype(np.uint16)
    if not isinstance(thresholds_dn, ThresholdTable):
        thresholds_dn = ThresholdTable(thresholds_dn)
    return thresholds_dn.count(dn).astype(np.uint16)

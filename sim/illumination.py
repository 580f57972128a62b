"""Illumination: from photometric units (lux) to mean photons per pixel."""

from __future__ import annotations

import numpy as np

from adcforge.errors import ConfigError

PLANCK_J_S = 6.62607015e-34
LIGHT_SPEED_M_S = 299792458.0
LUMENS_PER_WATT_555 = 683.0


def luminous_efficiency(wavelength_nm: float) -> float:
    """Return the CIE 1924 photopic luminous efficiency V(λ) (1 at 555 nm), via colour-science."""
    if wavelength_nm == 555:
        return 1.0
    import colour

    sd = colour.colorimetry.SDS_LEFS_PHOTOPIC["CIE 1924 Photopic Standard Observer"]
    return float(sd[wavelength_nm])


def photons_from_lux(lux, exposure_s, pixel_pitch_um, wavelength_nm=555.0):
    """Return mean photons per pixel for a monochromatic illuminance.

    ``lux``: illuminance on the sensor (lx, scalar or array ≥ 0). ``exposure_s``: seconds.
    ``pixel_pitch_um``: µm (square pixel, 100 % fill factor). ``wavelength_nm``: 360..830 nm
    (default 555 nm, where 1 W = 683 lm). Irradiance = lux / (683 · V(λ)) W/m²; photons =
    irradiance · exposure · pitch² / (h·c/λ). At 555 nm, 1 lx is about 4.1e15 photons/(m²·s).
    Raises ConfigError for a wavelength outside the photopic table or negative arguments.
    """
    if not 360 <= wavelength_nm <= 830:
        raise ConfigError(f"wavelength_nm {wavelength_nm!r} is out of range (allowed 360..830 nm)")
    if exposure_s < 0 or pixel_pitch_um <= 0:
        raise ConfigError(f"exposure_s ({exposure_s!r}) must be >= 0 s and pixel_pitch_um "
                          f"({pixel_pitch_um!r}) > 0 µm")
    lux = np.asarray(lux, dtype=np.float64)
    if np.any(lux < 0):
        raise ConfigError("lux must be >= 0")
    v = luminous_efficiency(wavelength_nm)
    if v <= 0:
        raise ConfigError(f"wavelength_nm {wavelength_nm!r}: V(λ) is 0 there, lux cannot be "
                          f"converted")
    irradiance_w_m2 = lux / (LUMENS_PER_WATT_555 * v)
    photon_energy_j = PLANCK_J_S * LIGHT_SPEED_M_S / (wavelength_nm * 1e-9)
    area_m2 = (pixel_pitch_um * 1e-6) ** 2
    out = irradiance_w_m2 * exposure_s * area_m2 / photon_energy_j
    return float(out) if out.ndim == 0 else out


def lux_from_photons(photons, exposure_s, pixel_pitch_um, wavelength_nm=555.0):
    """Return the illuminance (lx) that gives ``photons`` mean photons per pixel (inverse)."""
    return photons / photons_from_lux(1.0, exposure_s, pixel_pitch_um, wavelength_nm)

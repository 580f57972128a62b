"""EMVA 1288 photon-transfer measurement, simulated, and its analysis from the frames alone.

:func:`measure` runs the measurement on a sensor (a region of interest of it): an exposure series
at constant irradiance from a short exposure up to past saturation, a pair of bright frames and a
pair of dark frames at every exposure, plus stacks of dark frames and of frames at about 50 %
saturation for the spatial non-uniformities. :func:`analyse` estimates, from those frames only
(the configuration is not consulted): conversion gain K, quantum efficiency η, temporal dark
noise, DSNU, PRNU, saturation capacity, SNR_max, dynamic range and the absolute sensitivity
threshold, following EMVA 1288 Release 4.0 (linear camera model):

- mean ``μ_y`` of a pair, temporal variance ``σ²_y = ½ var(y_A − y_B)``;
- K: slope of ``σ²_y − σ²_y.dark`` over ``μ_y − μ_y.dark`` up to 70 % of saturation;
- responsivity R: slope of ``μ_y − μ_y.dark`` over ``μ_p`` (same range); η = R / K;
- saturation: the point of maximum temporal variance; μ_e.sat = η μ_p.sat;
- temporal dark noise ``σ_d = √(σ²_y.dark − 1/12) / K`` at the shortest exposure;
- DSNU = ``√(s²_y.dark − σ²_y.dark / L) / K`` and PRNU = ``√(s²_y.50 − s²_y.dark) / (μ_y.50 −
  μ_y.dark)``, spatial variances of L-frame averages corrected for their temporal part (the
  standard's high-pass filtering of shading is omitted: the model has no shading);
- SNR_max = √μ_e.sat; absolute sensitivity threshold μ_p.min = (√(σ²_y.dark/K² + ¼) + ½) / η
  (the photon level where SNR = 1); dynamic range = μ_p.sat / μ_p.min.

A colour sensor is analysed per colour channel (K and dark figures are common; η, PRNU and
saturation per channel).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .config import CHANNELS
from .sensor import Sensor, cfa_channel_map

SAT_FIT_FRACTION = 0.7
QUANT_VAR_DN2 = 1.0 / 12.0


@dataclass
class Measurement:
    """The frames' statistics of one photon-transfer run (per channel where there is a CFA)."""

    photons: np.ndarray  # (levels,) mean photons per pixel μ_p
    exposure_s: np.ndarray  # (levels,)
    channels: list[str]  # ["mono"] or ["r", "g", "b"]
    mean: np.ndarray  # (channels, levels) μ_y
    var: np.ndarray  # (channels, levels) σ²_y
    dark_mean: np.ndarray  # (channels, levels) μ_y.dark
    dark_var: np.ndarray  # (channels, levels) σ²_y.dark
    spatial_frames: int  # L
    spatial_dark_var: np.ndarray  # (channels,) s²_y.dark of the L-frame average (uncorrected)
    spatial_dark_temporal_var: np.ndarray  # (channels,) σ²_y.dark estimated from the stack
    spatial_50_var: np.ndarray  # (channels,) s²_y.50 (uncorrected)
    spatial_50_temporal_var: np.ndarray  # (channels,)
    spatial_50_mean: np.ndarray  # (channels,)
    spatial_dark_mean: np.ndarray  # (channels,)
    photons_50: float
    roi: tuple[int, int]
    adc_bits: int


def _pair_stats(a: np.ndarray, b: np.ndarray, masks):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    means, vars_ = [], []
    for m in masks:
        x, y = a[m], b[m]
        means.append(0.5 * (x.mean() + y.mean()))
        d = x - y
        vars_.append(0.5 * (np.mean(d * d) - d.mean() ** 2))
    return means, vars_


def _stack_stats(frames: np.ndarray, masks):
    """Spatial variance of the average of L frames, and the temporal variance from the stack."""
    frames = frames.astype(np.float64)
    avg = frames.mean(axis=0)
    temporal = frames.var(axis=0, ddof=1)
    s2, t2, mu = [], [], []
    for m in masks:
        s2.append(avg[m].var(ddof=1))
        t2.append(temporal[m].mean())
        mu.append(avg[m].mean())
    return np.array(s2), np.array(t2), np.array(mu)


def expected_saturation_e(sensor: Sensor) -> float:
    """Return the configured saturation in e⁻: full well or ADC top, whichever comes first."""
    c = sensor.config
    return min(c.full_well_e, (c.max_dn - c.black_level_dn) / c.conversion_gain_dn_per_e)


def measure(sensor: Sensor, levels: int = 48, spatial_frames: int = 16, roi=(128, 128),
            overshoot: float = 1.3, low_levels: int = 8, dense_levels: int = 16,
            progress=None) -> Measurement:
    """Simulate the EMVA 1288 measurement on a ``roi = (height, width)`` region of ``sensor``.

    The irradiance is fixed so that the longest exposure (the sensor's ``exposure_s``) reaches
    ``overshoot`` × the configured saturation; ``levels`` exposures are spaced linearly from
    ``exposure_s / levels``, preceded by ``low_levels`` log-spaced shorter exposures down to about
    one photon per pixel (for the SNR curve), plus ``dense_levels`` exposures between 85 % and
    105 % of each channel's expected saturation (where the variance peaks). The spatial stacks
    have ``spatial_frames`` frames each (dark at the shortest exposure, bright at about 50 %
    saturation). ``progress(i, n)`` is called per level.
    """
    c = sensor.config
    h, w = roi
    if c.cfa is not None:
        h, w = h + h % 2, w + w % 2
    roi_sensor = sensor.with_config(height=min(h, c.height), width=min(w, c.width))
    cfa = cfa_channel_map(roi_sensor.config)
    if cfa is None:
        channels, masks = ["mono"], [np.ones((roi_sensor.height, roi_sensor.width), bool)]
    else:
        channels = list(CHANNELS)
        masks = [cfa == i for i in range(3)]
    qe = np.atleast_1d(np.asarray(c.quantum_efficiency, dtype=np.float64))
    sat_photons = expected_saturation_e(sensor) / float(qe.min())
    t_max = c.exposure_s
    flux = overshoot * sat_photons / t_max  # photons per pixel per second
    exposures = t_max * np.arange(1, levels + 1) / levels
    if low_levels:  # log-spaced low-light exposures from ~1 photon, for the SNR curve
        lo = max(1.0 / flux, exposures[0] * 1e-3)
        low = np.geomspace(lo, exposures[0], low_levels + 1)[:-1]
        exposures = np.concatenate([low, exposures])
    if dense_levels:  # dense exposures around each channel's expected saturation
        sat_t = [expected_saturation_e(sensor) / (q * flux) for q in np.unique(qe)]
        dense = np.concatenate([np.linspace(0.85, 1.05, dense_levels) * t for t in sat_t])
        exposures = np.unique(np.concatenate([exposures, dense[dense <= t_max]]))
    photons = flux * exposures
    nch = len(channels)
    n_levels = len(exposures)
    mean = np.empty((nch, n_levels))
    var = np.empty((nch, n_levels))
    dmean = np.empty((nch, n_levels))
    dvar = np.empty((nch, n_levels))
    for i, (t, p) in enumerate(zip(exposures, photons)):
        a, b = roi_sensor.capture(p, t), roi_sensor.capture(p, t)
        mean[:, i], var[:, i] = _pair_stats(a, b, masks)
        a, b = roi_sensor.capture(0.0, t), roi_sensor.capture(0.0, t)
        dmean[:, i], dvar[:, i] = _pair_stats(a, b, masks)
        if progress:
            progress(i + 1, n_levels)
    t0 = exposures[0]
    dark_stack = np.stack([roi_sensor.capture(0.0, t0) for _ in range(spatial_frames)])
    sd2, sdt2, sdmu = _stack_stats(dark_stack, masks)
    photons_50 = 0.5 * sat_photons
    t50 = photons_50 / flux
    bright_stack = np.stack([roi_sensor.capture(photons_50, t50) for _ in range(spatial_frames)])
    dark50 = np.stack([roi_sensor.capture(0.0, t50) for _ in range(spatial_frames)])
    s50, s50t, s50mu = _stack_stats(bright_stack, masks)
    _, _, d50mu = _stack_stats(dark50, masks)
    return Measurement(photons=photons, exposure_s=exposures, channels=channels, mean=mean,
                       var=var, dark_mean=dmean, dark_var=dvar, spatial_frames=spatial_frames,
                       spatial_dark_var=sd2, spatial_dark_temporal_var=sdt2,
                       spatial_50_var=s50, spatial_50_temporal_var=s50t,
                       spatial_50_mean=s50mu - d50mu, spatial_dark_mean=sdmu,
                       photons_50=photons_50, roi=(roi_sensor.height, roi_sensor.width),
                       adc_bits=c.adc_bits)


@dataclass
class Result:
    """EMVA 1288 figures estimated from the frames (per channel lists where there is a CFA)."""

    channels: list[str]
    conversion_gain_dn_per_e: float
    quantum_efficiency: list[float]
    temporal_dark_noise_e: float
    dsnu_e: float
    prnu_percent: list[float]
    saturation_capacity_e: list[float]
    snr_max: list[float]
    snr_max_db: list[float]
    absolute_sensitivity_threshold_photons: list[float]
    dynamic_range: list[float]
    dynamic_range_db: list[float]
    linearity_error_percent: list[float]
    saturation_photons: list[float]
    fit_points: int
    warnings: list[str] = field(default_factory=list)


def _slope(x, y):
    a = np.vstack([x, np.ones_like(x)]).T
    (m, b), *_ = np.linalg.lstsq(a, y, rcond=None)
    return float(m), float(b)


def analyse(m: Measurement) -> Result:
    """Estimate the EMVA 1288 figures from a :class:`Measurement` (frames' statistics only)."""
    warnings = []
    sig = m.mean - m.dark_mean  # (ch, levels) μ_y − μ_y.dark
    tvar = m.var - m.dark_var
    # saturation: maximum temporal variance, per channel
    sat_idx = np.argmax(m.var, axis=1)
    # K from all channels together over 0..70 % of each channel's saturation signal
    xs, ys = [], []
    for ch in range(len(m.channels)):
        sel = (sig[ch] > 0) & (sig[ch] <= SAT_FIT_FRACTION * sig[ch, sat_idx[ch]])
        sel &= np.arange(sig.shape[1]) < sat_idx[ch]
        xs.append(sig[ch, sel])
        ys.append(tvar[ch, sel])
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(x) < 3:
        raise ValueError("too few points below 70 % of saturation to fit the photon transfer")
    k, _ = _slope(x, y)
    dark_var0 = float(np.mean(m.dark_var[:, 0]))
    if dark_var0 < 0.25:
        warnings.append(f"temporal dark noise {math.sqrt(dark_var0):.2f} DN is below 0.5 DN: the "
                        f"camera is quantization-limited and σ_d, DSNU and the sensitivity "
                        f"threshold are unreliable (EMVA 1288)")
    sigma_d = math.sqrt(max(dark_var0 - QUANT_VAR_DN2, 0.0)) / k
    # DSNU from the dark stack (all channels together)
    L = m.spatial_frames
    s2d = float(np.mean(m.spatial_dark_var - m.spatial_dark_temporal_var / L))
    dsnu = math.sqrt(max(s2d, 0.0)) / k
    qe, prnu, sat_e, snr, snr_db, amin, dr, dr_db, lin, psat = ([] for _ in range(10))
    for ch in range(len(m.channels)):
        s = sat_idx[ch]
        sel = (sig[ch] > 0) & (sig[ch] <= SAT_FIT_FRACTION * sig[ch, s]) & (
            np.arange(sig.shape[1]) < s)
        r, r0 = _slope(m.photons[sel], sig[ch, sel])
        eta = r / k
        qe.append(eta)
        s2_50 = m.spatial_50_var[ch] - m.spatial_50_temporal_var[ch] / L
        s2_dk = m.spatial_dark_var[ch] - m.spatial_dark_temporal_var[ch] / L
        prnu.append(100.0 * math.sqrt(max(s2_50 - s2_dk, 0.0)) / m.spatial_50_mean[ch])
        mu_p_sat = float(m.photons[s])
        psat.append(mu_p_sat)
        mu_e_sat = eta * mu_p_sat
        sat_e.append(mu_e_sat)
        snr.append(math.sqrt(mu_e_sat))
        snr_db.append(20 * math.log10(math.sqrt(mu_e_sat)))
        mu_p_min = (math.sqrt(dark_var0 / k**2 + 0.25) + 0.5) / eta
        amin.append(mu_p_min)
        dr.append(mu_p_sat / mu_p_min)
        dr_db.append(20 * math.log10(mu_p_sat / mu_p_min))
        # linearity error over 5..95 % of the saturation signal
        band = (sig[ch] >= 0.05 * sig[ch, s]) & (sig[ch] <= 0.95 * sig[ch, s]) & (
            np.arange(sig.shape[1]) <= s)
        if band.sum() >= 3:
            a, b = _slope(m.photons[band], sig[ch, band])
            dev = (sig[ch, band] - (a * m.photons[band] + b)) / sig[ch, band]
            lin.append(100.0 * float(np.max(np.abs(dev))))
        else:
            lin.append(float("nan"))
    return Result(channels=list(m.channels), conversion_gain_dn_per_e=k, quantum_efficiency=qe,
                  temporal_dark_noise_e=sigma_d, dsnu_e=dsnu, prnu_percent=prnu,
                  saturation_capacity_e=sat_e, snr_max=snr, snr_max_db=snr_db,
                  absolute_sensitivity_threshold_photons=amin, dynamic_range=dr,
                  dynamic_range_db=dr_db, linearity_error_percent=lin, saturation_photons=psat,
                  fit_points=int(len(x)), warnings=warnings)


def configured(sensor: Sensor, m: Measurement) -> dict:
    """Return the values the configuration implies for each EMVA figure (for comparison).

    The temporal dark noise includes the dark-current shot noise at the shortest exposure; DSNU
    includes row and column offsets; saturation is the full well or the ADC top.
    """
    c = sensor.config
    qe = list(np.atleast_1d(np.asarray(c.quantum_efficiency, dtype=np.float64)))
    t0 = float(m.exposure_s[0])
    sigma_d = math.sqrt(c.read_noise_e**2 + c.dark_current_at_temp_e_per_s * t0)
    sat = expected_saturation_e(sensor)
    return {
        "conversion_gain_dn_per_e": c.conversion_gain_dn_per_e,
        "quantum_efficiency": qe,
        "temporal_dark_noise_e": sigma_d,
        "dsnu_e": math.sqrt(c.dsnu_e**2 + c.row_fpn_e**2 + c.column_fpn_e**2),
        "prnu_percent": c.prnu_percent,
        "saturation_capacity_e": sat,
        "snr_max": math.sqrt(sat),
    }


COMPARE = (
    ("conversion_gain_dn_per_e", "K", "DN/e⁻"),
    ("quantum_efficiency", "η", ""),
    ("temporal_dark_noise_e", "temporal dark noise σ_d", "e⁻"),
    ("dsnu_e", "DSNU", "e⁻"),
    ("prnu_percent", "PRNU", "%"),
    ("saturation_capacity_e", "saturation capacity μ_e.sat", "e⁻"),
    ("snr_max", "SNR_max", ""),
)


def _fmt(v):
    if isinstance(v, list):
        return " / ".join(_fmt(x) for x in v)
    return f"{v:.4g}"


def comparison_rows(result: Result, conf: dict):
    """Return ``(label, unit, configured, recovered, error %)`` rows."""
    rows = []
    for key, label, unit in COMPARE:
        got = getattr(result, key)
        want = conf[key]
        g = np.atleast_1d(got)
        w = np.atleast_1d(want)
        if len(w) == 1 and len(g) > 1:
            w = np.repeat(w, len(g))
        if len(g) == 1 and len(w) > 1:
            g = np.repeat(g, len(w))
        err = [100.0 * (a - b) / b if b else float("nan") for a, b in zip(g, w)]
        rows.append((label, unit, want, got, err))
    return rows


def markdown(sensor: Sensor, m: Measurement, result: Result) -> str:
    """Return the markdown report: configured vs recovered, and the derived figures."""
    conf = configured(sensor, m)
    ch = ", ".join(result.channels)
    lines = [f"# EMVA 1288 photon transfer: {sensor.config.name or 'sensor'}", "",
             f"Region {m.roi[1]}×{m.roi[0]} pixels, {len(m.photons)} exposures "
             f"({m.exposure_s[0]:.4g}–{m.exposure_s[-1]:.4g} s) with a dark pair each, "
             f"{m.spatial_frames}-frame stacks for DSNU/PRNU; channels: {ch}.", "",
             "| figure | unit | configured | recovered | error % |", "|---|---|---|---|---|"]
    for label, unit, want, got, err in comparison_rows(result, conf):
        lines.append(f"| {label} | {unit} | {_fmt(want)} | {_fmt(got)} | "
                     f"{' / '.join(f'{e:+.1f}' for e in err)} |")
    lines += ["", "| derived figure | value |", "|---|---|",
              f"| SNR_max (dB) | {_fmt(result.snr_max_db)} |",
              f"| absolute sensitivity threshold (photons) | "
              f"{_fmt(result.absolute_sensitivity_threshold_photons)} |",
              f"| dynamic range (ratio) | {_fmt(result.dynamic_range)} |",
              f"| dynamic range (dB) | {_fmt(result.dynamic_range_db)} |",
              f"| linearity error (max, 5–95 %) (%) | {_fmt(result.linearity_error_percent)} |",
              f"| saturation (photons) | {_fmt(result.saturation_photons)} |"]
    if result.warnings:
        lines += [""] + [f"> warning: {w}" for w in result.warnings]
    lines += ["", "Configured σ_d includes dark-current shot noise at the shortest exposure; "
              "configured saturation is the full well or the ADC top, whichever is lower.", ""]
    return "\n".join(lines)


def to_json(sensor: Sensor, m: Measurement, result: Result) -> dict:
    """Return a JSON-ready report: configured, recovered, and the per-level statistics."""
    return {
        "sensor": sensor.config.to_dict(),
        "seed": sensor.seed,
        "roi": list(m.roi),
        "configured": configured(sensor, m),
        "recovered": asdict(result),
        "levels": {
            "photons": m.photons.tolist(), "exposure_s": m.exposure_s.tolist(),
            "mean_dn": m.mean.tolist(), "var_dn2": m.var.tolist(),
            "dark_mean_dn": m.dark_mean.tolist(), "dark_var_dn2": m.dark_var.tolist(),
        },
    }


def plot(m: Measurement, result: Result, out_dir: Path, title: str = "") -> list[Path]:
    """Write ``ptc.png`` (photon transfer) and ``snr.png`` (SNR vs photons); return the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    colors = {"mono": "k", "r": "tab:red", "g": "tab:green", "b": "tab:blue"}
    k = result.conversion_gain_dn_per_e
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=90)
    for i, ch in enumerate(m.channels):
        sig = m.mean[i] - m.dark_mean[i]
        ax.plot(sig, m.var[i] - m.dark_var[i], "o", ms=3, color=colors[ch], label=ch)
        s = int(np.argmax(m.var[i]))
        ax.axvline(sig[s], color=colors[ch], ls=":", lw=0.8)
    xmax = float(np.max(m.mean - m.dark_mean))
    xx = np.linspace(0, xmax, 50)
    ax.plot(xx, k * xx, "-", color="0.5", lw=1, label=f"fit K = {k:.4g} DN/e⁻")
    ax.set_xlabel("μ_y − μ_y.dark (DN)")
    ax.set_ylabel("σ²_y − σ²_y.dark (DN²)")
    ax.set_title(f"Photon transfer {title}".strip())
    ax.legend(fontsize=8)
    fig.tight_layout()
    p1 = out_dir / "ptc.png"
    fig.savefig(p1)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=90)
    for i, ch in enumerate(m.channels):
        sig = m.mean[i] - m.dark_mean[i]
        snr = sig / np.sqrt(np.maximum(m.var[i], 1e-12))
        ok = (sig > 0) & (np.arange(len(sig)) <= int(np.argmax(m.var[i])))
        ax.loglog(m.photons[ok], snr[ok], "o", ms=3, color=colors[ch], label=f"measured {ch}")
        eta = result.quantum_efficiency[i]
        pp = np.logspace(math.log10(max(m.photons[0] / 3, 0.1)), math.log10(m.photons[-1]), 100)
        sd2 = result.temporal_dark_noise_e**2 + QUANT_VAR_DN2 / k**2
        theo = eta * pp / np.sqrt(sd2 + eta * pp)
        theo[pp > result.saturation_photons[i]] = np.nan
        ax.loglog(pp, theo, "-", color=colors[ch], lw=0.8)
        ax.loglog(pp, np.sqrt(pp), ":", color="0.6", lw=0.8)
        ax.axvline(result.absolute_sensitivity_threshold_photons[i], color=colors[ch], ls="--",
                   lw=0.6)
    ax.set_xlabel("μ_p (photons per pixel)")
    ax.set_ylabel("SNR")
    ax.set_title(f"SNR {title}  (dotted: ideal √μ_p)".strip())
    ax.legend(fontsize=8)
    fig.tight_layout()
    p2 = out_dir / "snr.png"
    fig.savefig(p2)
    plt.close(fig)
    return [p1, p2]


def run(sensor: Sensor, out_dir, levels=48, spatial_frames=16, roi=(128, 128), progress=None):
    """Measure, analyse and write ``ptc.json``, ``ptc.md``, ``ptc.png``, ``snr.png``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = measure(sensor, levels=levels, spatial_frames=spatial_frames, roi=roi, progress=progress)
    result = analyse(m)
    (out_dir / "ptc.json").write_text(json.dumps(to_json(sensor, m, result), indent=1))
    (out_dir / "ptc.md").write_text(markdown(sensor, m, result))
    plot(m, result, out_dir, sensor.config.name)
    return m, result

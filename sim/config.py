"""Sensor configuration: the YAML keys, their units and allowed ranges, and validation.

A sensor YAML describes a camera in EMVA 1288 terms. Every key is checked on load; an unknown key,
a value of the wrong type or a value out of range raises :class:`~adcforge.errors.ConfigError`
naming the file, the key, the value and the allowed range. Optional keys that are absent take the
documented default that switches the feature off (zero); nothing else is defaulted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from adcforge.errors import ConfigError
from adcforge.yamlfile import load_yaml

CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
CHANNELS = ("r", "g", "b")


@dataclass(frozen=True)
class Key:
    """One YAML key: its type, unit, allowed closed range and whether it is required."""

    name: str
    kind: str  # "int", "float", "qe", "str", "cfa", "opt_float"
    unit: str
    lo: float | None = None
    hi: float | None = None
    required: bool = True
    default: Any = None
    doc: str = ""


KEYS: tuple[Key, ...] = (
    Key("width", "int", "pixels", 1, 65536, doc="active columns"),
    Key("height", "int", "pixels", 1, 65536, doc="active rows"),
    Key("pixel_pitch_um", "float", "µm", 0.1, 100.0, doc="pixel pitch (square pixels)"),
    Key("quantum_efficiency", "qe", "e⁻/photon", 0.0, 1.0,
        doc="η; a scalar, or per channel (list [r, g, b] or map {r:, g:, b:}) with a CFA"),
    Key("full_well_e", "float", "e⁻", 1.0, 1e7, doc="full-well capacity"),
    Key("conversion_gain_dn_per_e", "float", "DN/e⁻", 1e-4, 100.0,
        doc="overall system gain K of the fine ADC"),
    Key("read_noise_e", "float", "e⁻ rms", 0.0, 1000.0, doc="temporal read noise (Gaussian)"),
    Key("dark_current_e_per_s", "float", "e⁻/s", 0.0, 1e6,
        doc="mean dark current at dark_current_ref_temp_c"),
    Key("dark_current_ref_temp_c", "float", "°C", -200.0, 200.0,
        doc="temperature at which dark_current_e_per_s holds"),
    Key("dark_current_doubling_c", "float", "°C", 0.5, 50.0,
        doc="temperature rise that doubles the dark current"),
    Key("temperature_c", "float", "°C", -200.0, 200.0, doc="operating temperature"),
    Key("dsnu_e", "float", "e⁻ rms", 0.0, 1e5, doc="dark signal non-uniformity (fixed offset map)"),
    Key("prnu_percent", "float", "%", 0.0, 50.0, doc="photo-response non-uniformity (gain map)"),
    Key("black_level_dn", "float", "DN", 0.0, 65535.0, doc="offset added before the ADC"),
    Key("adc_bits", "int", "bits", 8, 16, doc="fine ADC resolution (the sample word)"),
    Key("exposure_s", "float", "s", 1e-9, 3600.0, doc="default exposure time"),
    # optional non-idealities (absent = off)
    Key("cfa", "cfa", "", required=False, default=None,
        doc="colour filter array pattern (RGGB, BGGR, GRBG, GBRG); needs per-channel QE"),
    Key("row_fpn_e", "float", "e⁻ rms", 0.0, 1e4, required=False, default=0.0,
        doc="fixed row offset pattern"),
    Key("column_fpn_e", "float", "e⁻ rms", 0.0, 1e4, required=False, default=0.0,
        doc="fixed column offset pattern"),
    Key("hot_pixel_fraction", "float", "", 0.0, 0.1, required=False, default=0.0,
        doc="fraction of pixels with elevated dark current"),
    Key("hot_pixel_dark_current_e_per_s", "float", "e⁻/s", 0.0, 1e7, required=False, default=0.0,
        doc="dark current of a hot pixel at dark_current_ref_temp_c"),
    Key("comparator_offset_dn", "float", "DN rms", 0.0, 10.0, required=False, default=0.0,
        doc="per-threshold Gaussian offset of the fine ADC's comparators"),
    Key("gain_nonlinearity_percent", "float", "%", 0.0, 20.0, required=False, default=0.0,
        doc="gain compression at ADC full scale (quadratic)"),
    Key("poisson_gaussian_above_e", "opt_float", "e⁻", 1.0, 1e9, required=False, default=None,
        doc="fast mode: Gaussian instead of Poisson where the mean exceeds this (absent = exact)"),
    Key("name", "str", "", required=False, default=""),
    Key("source", "str", "", required=False, default="", doc="where the values come from"),
    Key("notes", "str", "", required=False, default=""),
)
KEY_BY_NAME = {k.name: k for k in KEYS}


@dataclass(frozen=True)
class SensorConfig:
    """A validated sensor description; see :data:`KEYS` for names, units and ranges."""

    width: int
    height: int
    pixel_pitch_um: float
    quantum_efficiency: float | tuple[float, float, float]
    full_well_e: float
    conversion_gain_dn_per_e: float
    read_noise_e: float
    dark_current_e_per_s: float
    dark_current_ref_temp_c: float
    dark_current_doubling_c: float
    temperature_c: float
    dsnu_e: float
    prnu_percent: float
    black_level_dn: float
    adc_bits: int
    exposure_s: float
    cfa: str | None = None
    row_fpn_e: float = 0.0
    column_fpn_e: float = 0.0
    hot_pixel_fraction: float = 0.0
    hot_pixel_dark_current_e_per_s: float = 0.0
    comparator_offset_dn: float = 0.0
    gain_nonlinearity_percent: float = 0.0
    poisson_gaussian_above_e: float | None = None
    name: str = ""
    source: str = ""
    notes: str = ""

    @property
    def max_dn(self) -> int:
        """Largest code of the fine ADC, ``2**adc_bits - 1``."""
        return 2**self.adc_bits - 1

    @property
    def dark_current_at_temp_e_per_s(self) -> float:
        """Mean dark current at ``temperature_c`` in e⁻/s (doubling law)."""
        return self.dark_current_e_per_s * temperature_factor(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the YAML mapping (per-channel QE as a map)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "quantum_efficiency" and isinstance(value, tuple):
                value = dict(zip(CHANNELS, value))
            out[f.name] = value
        return out


def temperature_factor(cfg: SensorConfig) -> float:
    """Return the dark-current multiplier ``2**((T - T_ref) / T_doubling)``."""
    return 2.0 ** ((cfg.temperature_c - cfg.dark_current_ref_temp_c) / cfg.dark_current_doubling_c)


def _where(origin: str, key: str) -> str:
    return f"{origin}: key '{key}'"


def _range_text(key: Key) -> str:
    return f"{key.lo:g}..{key.hi:g}" + (f" {key.unit}" if key.unit else "")


def _number(origin: str, key: Key, value: Any, integer: bool, label: str | None = None) -> float:
    label = label or key.name
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{_where(origin, label)}: {value!r} is not {kind} "
                          f"(allowed {_range_text(key)})")
    if integer and isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"{_where(origin, label)}: {value!r} is not an integer "
                              f"(allowed {_range_text(key)})")
        value = int(value)
    if not math.isfinite(value) or not key.lo <= value <= key.hi:
        raise ConfigError(f"{_where(origin, label)}: {value!r} is out of range "
                          f"(allowed {_range_text(key)})")
    return int(value) if integer else float(value)


def _check_value(origin: str, key: Key, value: Any) -> Any:
    if key.kind == "int":
        return _number(origin, key, value, integer=True)
    if key.kind == "float":
        return _number(origin, key, value, integer=False)
    if key.kind == "opt_float":
        return None if value is None else _number(origin, key, value, integer=False)
    if key.kind == "str":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ConfigError(f"{_where(origin, key.name)}: {value!r} is not a string")
        return value
    if key.kind == "cfa":
        if value is None:
            return None
        if not isinstance(value, str) or value.upper() not in CFA_PATTERNS:
            raise ConfigError(f"{_where(origin, key.name)}: {value!r} is not a CFA pattern "
                              f"(allowed {', '.join(CFA_PATTERNS)})")
        return value.upper()
    if key.kind == "qe":
        if isinstance(value, dict):
            extra = sorted(set(map(str, value)) - set(CHANNELS))
            missing = [c for c in CHANNELS if c not in value]
            if extra or missing:
                raise ConfigError(f"{_where(origin, key.name)}: per-channel map must have exactly "
                                  f"the keys r, g, b (got {sorted(map(str, value))})")
            return tuple(_number(origin, key, value[c], False, f"{key.name}.{c}")
                         for c in CHANNELS)
        if isinstance(value, (list, tuple)):
            if len(value) != 3:
                raise ConfigError(f"{_where(origin, key.name)}: per-channel list must have 3 "
                                  f"values [r, g, b] (got {len(value)})")
            return tuple(_number(origin, key, v, False, f"{key.name}[{i}]")
                         for i, v in enumerate(value))
        return _number(origin, key, value, integer=False)
    raise AssertionError(key.kind)


def validate(raw: Any, origin: str = "<dict>") -> SensorConfig:
    """Validate a sensor mapping and return a :class:`SensorConfig`.

    ``origin`` names the file (or other source) in error messages. Raises
    :class:`~adcforge.errors.ConfigError` for unknown keys, missing required keys, values of the
    wrong type or out of range, and inconsistent combinations.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: a sensor description must be a YAML mapping of keys to "
                          f"values (got {type(raw).__name__})")
    unknown = sorted(str(k) for k in raw if k not in KEY_BY_NAME)
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(map(repr, unknown))} "
                          f"(allowed: {', '.join(k.name for k in KEYS)})")
    values: dict[str, Any] = {}
    for key in KEYS:
        if key.name not in raw:
            if key.required:
                raise ConfigError(f"{origin}: missing key '{key.name}' ({key.doc}; "
                                  f"{_range_text(key)})")
            values[key.name] = key.default
            continue
        values[key.name] = _check_value(origin, key, raw[key.name])
    cfg = SensorConfig(**values)
    per_channel = isinstance(cfg.quantum_efficiency, tuple)
    if per_channel and cfg.cfa is None:
        raise ConfigError(f"{_where(origin, 'cfa')}: per-channel quantum_efficiency needs a colour "
                          f"filter array; add cfa: RGGB (or {', '.join(CFA_PATTERNS[1:])})")
    if cfg.cfa is not None and not per_channel:
        raise ConfigError(f"{_where(origin, 'quantum_efficiency')}: cfa {cfg.cfa} needs a "
                          f"per-channel quantum_efficiency {{r:, g:, b:}}")
    if cfg.cfa is not None and (cfg.width % 2 or cfg.height % 2):
        raise ConfigError(f"{origin}: a colour sensor (cfa {cfg.cfa}) needs even width and height "
                          f"(got {cfg.width}x{cfg.height})")
    if cfg.black_level_dn > cfg.max_dn:
        raise ConfigError(f"{_where(origin, 'black_level_dn')}: {cfg.black_level_dn:g} is above "
                          f"the ADC's largest code (allowed 0..{cfg.max_dn} DN for adc_bits "
                          f"{cfg.adc_bits})")
    if cfg.hot_pixel_fraction > 0 and cfg.hot_pixel_dark_current_e_per_s <= 0:
        raise ConfigError(f"{_where(origin, 'hot_pixel_dark_current_e_per_s')}: hot_pixel_fraction "
                          f"{cfg.hot_pixel_fraction:g} needs a dark current above 0 e⁻/s")
    return cfg


def load_sensor_yaml(path) -> dict[str, Any]:
    """Read a sensor description (a YAML mapping) from ``path``; errors name the file."""
    raw, source = load_yaml(path, "sensor file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a sensor description must be a YAML mapping of keys to values")
    return raw


def describe_keys() -> str:
    """Return a markdown table of the YAML keys (name, unit, range, meaning)."""
    rows = ["| key | unit | allowed | required | meaning |", "|---|---|---|---|---|"]
    for k in KEYS:
        allowed = f"{k.lo:g} .. {k.hi:g}" if k.lo is not None else ""
        if k.kind == "cfa":
            allowed = ", ".join(CFA_PATTERNS)
        rows.append(f"| `{k.name}` | {k.unit} | {allowed} | {'yes' if k.required else 'no'} | "
                    f"{k.doc} |")
    return "\n".join(rows)


class ConfigGeometry:
    """Frame size and ADC word of an object that holds a ``config`` (a :class:`SensorConfig`):
    shared by the numpy sensor and its torch backend."""

    @property
    def width(self) -> int:
        """Active columns."""
        return self.config.width

    @property
    def height(self) -> int:
        """Active rows."""
        return self.config.height

    @property
    def adc_bits(self) -> int:
        """Fine ADC resolution in bits."""
        return self.config.adc_bits

    @property
    def max_dn(self) -> int:
        """Largest fine-ADC code, ``2**adc_bits - 1``."""
        return self.config.max_dn

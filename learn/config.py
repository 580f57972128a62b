"""Training configuration: defaults, YAML loading, validation, command-line overrides.

A configuration is a nested mapping (YAML). Every key is listed in :data:`DEFAULTS`; an unknown
key, a wrong type or a value out of range raises :class:`~adcforge.errors.ConfigError` naming the
file, the key, the value and what is allowed. ``photons`` is the mean photon count per pixel at
white: a number, or ``[lo, hi]`` to draw it log-uniformly per training batch
(``train.photons_per: batch``, as in Algorithm 1 of the task-guided paper) or per image
(``image``); the calibration capture and the test set draw it per image.
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from pathlib import Path
from typing import Any

from adcforge.errors import ConfigError
from adcforge.yamlfile import load_yaml

from .quantizers import DECODERS, INITS, METHODS, check_thresholds

NETWORKS = ("linear", "cnn")
DEVICES = ("cpu", "cuda", "auto")

DEFAULTS: dict[str, Any] = {
    "name": "digits",
    "data": {"dataset": "digits", "seed": 0},
    "sensor": {"preset": "phone", "seed": 0},
    "photons": 10.0,
    "quantizer": {
        "method": "learned",
        "bits": 2,
        "init": "quantile",
        "threshold_param": "absolute",
        "ste_window": "auto",
        "decoder": "embedding",
        "channels": 1,
        "decode_width": 8,
        "temperature": [1.0, 0.05],
        "thresholds": None,
    },
    "network": {
        "kind": "linear",
        "exponent_bits": 3,
        "guard_bits": 2,
        "output_bits": 24,
        "conv_channels": 8,
        "hidden_channels": 16,
        "asq_bits": 0,
        "bitshift_norm": False,
        "post_bitshift_norm": False,
    },
    "train": {
        "epochs": 40,
        "batch_size": 64,
        "lr_thresholds": 1e-4,
        "lr_network": 1e-3,
        "freeze_epochs": 4,
        "threshold_warmup_epochs": 0,
        "seed": 0,
        "device": "cpu",
        "threads": 1,
        "eval_every": 1,
        "photons_per": "batch",
    },
}

_TYPES = {
    "name": str,
    "data.dataset": str, "data.seed": int,
    "sensor.preset": str, "sensor.seed": int,
    "quantizer.method": str, "quantizer.bits": int, "quantizer.init": str,
    "quantizer.threshold_param": str, "quantizer.ste_window": str,
    "quantizer.decoder": str, "quantizer.channels": int, "quantizer.decode_width": int,
    "network.kind": str, "network.exponent_bits": int, "network.guard_bits": int,
    "network.output_bits": int, "network.conv_channels": int, "network.hidden_channels": int,
    "network.asq_bits": int, "network.bitshift_norm": bool, "network.post_bitshift_norm": bool,
    "train.epochs": int, "train.batch_size": int, "train.lr_thresholds": float,
    "train.lr_network": float, "train.freeze_epochs": int,
    "train.threshold_warmup_epochs": int, "train.seed": int, "train.device": str,
    "train.threads": int, "train.eval_every": int, "train.photons_per": str,
}
_RANGES = {
    "quantizer.bits": (1, 8), "quantizer.channels": (1, 16), "quantizer.decode_width": (2, 12),
    "network.exponent_bits": (1, 4), "network.guard_bits": (0, 8), "network.output_bits": (2, 32),
    "network.conv_channels": (1, 64), "network.hidden_channels": (1, 256),
    "network.asq_bits": (0, 8),
    "train.epochs": (1, 100000), "train.batch_size": (1, 65536), "train.freeze_epochs": (0, 100000),
    "train.threshold_warmup_epochs": (0, 100000),
    "train.threads": (1, 256), "train.eval_every": (1, 100000),
    "train.lr_thresholds": (0.0, 10.0), "train.lr_network": (0.0, 10.0),
}
_CHOICES = {
    "quantizer.method": METHODS, "quantizer.init": INITS, "quantizer.decoder": DECODERS,
    "quantizer.threshold_param": ("absolute", "relative", "quantile"),
    "quantizer.ste_window": ("auto", "gap", "noise"),
    "network.kind": NETWORKS, "train.device": DEVICES, "train.photons_per": ("batch", "image"),
}


def default_config() -> dict:
    """Return a fresh copy of the bundled default configuration (digits, 2 bits, 10 photons)."""
    return copy.deepcopy(DEFAULTS)


def config_path(name: str) -> Path:
    """Return the path of a bundled config (``learn/configs/<name>.yaml``)."""
    return Path(str(resources.files("learn") / "configs" / f"{name}.yaml"))


def bundled_configs() -> dict[str, Path]:
    """Return the bundled configs (``learn/configs/*.yaml``) by name."""
    return {p.stem: p for p in sorted(config_path("default").parent.glob("*.yaml"))}


def _merge(base: dict, over: dict, where: str, source: str) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        key = f"{where}.{k}" if where else str(k)
        if k not in base:
            allowed = ", ".join(sorted(base))
            raise ConfigError(f"{source}: unknown key '{key}'; allowed keys"
                              f"{' in ' + where if where else ''}: {allowed}")
        if isinstance(base[k], dict):
            if not isinstance(v, dict):
                raise ConfigError(f"{source}: key '{key}' must be a mapping, got {v!r}")
            out[k] = _merge(base[k], v, key, source)
        else:
            out[k] = v
    return out


def _get(cfg: dict, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _set(cfg: dict, key: str, value) -> None:
    node = cfg
    parts = key.split(".")
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def validate(cfg: dict, source: str = "<config>") -> dict:
    """Return a validated, complete copy of ``cfg`` (missing keys take their defaults)."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{source}: a training config must be a mapping, got "
                          f"{type(cfg).__name__}")
    out = _merge(DEFAULTS, cfg, "", source)
    for key, typ in _TYPES.items():
        v = _get(out, key)
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
            _set(out, key, v)
        if typ is int and isinstance(v, float) and v.is_integer():
            v = int(v)
            _set(out, key, v)
        if (isinstance(v, bool) and typ is not bool) or not isinstance(v, typ):
            raise ConfigError(f"{source}: key '{key}': got {v!r}; expected {typ.__name__}")
        if key in _RANGES:
            lo, hi = _RANGES[key]
            if not lo <= v <= hi:
                raise ConfigError(f"{source}: key '{key}': got {v!r}; allowed range is "
                                  f"{lo}..{hi}")
        if key in _CHOICES and v not in _CHOICES[key]:
            raise ConfigError(f"{source}: key '{key}': got {v!r}; allowed: "
                              f"{', '.join(_CHOICES[key])}")
    p = out["photons"]
    if isinstance(p, (list, tuple)):
        if len(p) != 2 or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                  for x in p) or not 0 < p[0] <= p[1]:
            raise ConfigError(f"{source}: key 'photons': got {p!r}; expected a number > 0 or "
                              f"[lo, hi] with 0 < lo <= hi")
        out["photons"] = [float(p[0]), float(p[1])]
    elif isinstance(p, bool) or not isinstance(p, (int, float)) or not p > 0:
        raise ConfigError(f"{source}: key 'photons': got {p!r}; expected a number > 0 "
                          f"(mean photons per pixel at white) or [lo, hi]")
    else:
        out["photons"] = float(p)
    t = out["quantizer"]["temperature"]
    if (not isinstance(t, (list, tuple)) or len(t) != 2
            or not all(isinstance(x, (int, float)) and x > 0 for x in t)):
        raise ConfigError(f"{source}: key 'quantizer.temperature': got {t!r}; expected "
                          f"[start, end], both > 0 (annealed geometrically)")
    out["quantizer"]["temperature"] = [float(t[0]), float(t[1])]
    q = out["quantizer"]
    if q["method"] == "fixed":
        if q["thresholds"] is None:
            raise ConfigError(f"{source}: method 'fixed' needs key 'quantizer.thresholds': a list "
                              f"of {2 ** q['bits'] - 1} increasing integers (the ladder)")
        check_thresholds(q["thresholds"], 2 ** q["bits"], 2**32)
    elif q["thresholds"] is not None:
        raise ConfigError(f"{source}: key 'quantizer.thresholds' goes with method 'fixed' only "
                          f"(method is {q['method']!r})")
    if q["decoder"] == "onehot" and q["bits"] > 4:
        raise ConfigError(f"{source}: key 'quantizer.decoder': 'onehot' needs 2**bits channels "
                          f"and the design file allows 16 (bits <= 4); got bits={q['bits']}")
    if out["train"]["freeze_epochs"] > out["train"]["epochs"]:
        out["train"]["freeze_epochs"] = out["train"]["epochs"]
    return out


def load_config(config: dict | str | os.PathLike | None) -> dict:
    """Load a config from a mapping, a YAML path or a bundled name (``None``: the default)."""
    if config is None:
        return validate({}, "<default config>")
    if isinstance(config, dict):
        return validate(config, "<config>")
    raw, source = load_yaml(config, "training config", bundled=bundled_configs())
    return validate(raw or {}, source)


def apply_overrides(cfg: dict, data=None, method=None, bits=None, photons=None, epochs=None,
                    seed=None) -> dict:
    """Return ``cfg`` with the command-line overrides applied, validated again."""
    cfg = copy.deepcopy(cfg)
    if data is not None:
        cfg["data"]["dataset"] = str(data)
    if method is not None:
        cfg["quantizer"]["method"] = method
    if bits is not None:
        cfg["quantizer"]["bits"] = bits
    if photons is not None:
        cfg["photons"] = photons
    if epochs is not None:
        cfg["train"]["epochs"] = epochs
    if seed is not None:
        cfg["train"]["seed"] = seed
    return validate(cfg, "<config with overrides>")

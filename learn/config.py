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
import re
from importlib import resources
from pathlib import Path
from typing import Any

from adcforge.errors import ConfigError
from adcforge.yamlfile import load_yaml

from .methods import METHODS
from .quant import (DECODERS, ESTIMATORS, INITS, TASK_WEIGHTS, THRESHOLD_PARAMS, WINDOWS,
                    check_thresholds)

NETWORKS = ("auto", "linear", "cnn", "cnn3")
NETWORK_CHANNELS = {"cnn": (8, 16), "cnn3": (16, 32)}  # what 0 (the default) means, per kind
STARTS = INITS
DEVICES = ("cpu", "cuda", "auto")

DEFAULTS: dict[str, Any] = {
    "name": "digits",
    "data": {"dataset": "digits", "seed": 0, "val_fraction": 0.2, "size": None},
    "sensor": {"preset": "phone", "seed": 0},
    "photons": 10.0,
    "quantizer": {
        "method": "learned",
        "bits": 2,
        "init": "quantile",
        "starts": "auto",
        "task_weight": "fisher",
        "estimator": "auto",
        "window_anneal": "auto",
        "threshold_param": "auto",
        "ste_window": "auto",
        "decoder": "embedding",
        "channels": 1,
        "decode_width": 8,
        "temperature": [1.0, 0.05],
        "thresholds": None,
    },
    "network": {
        "kind": "auto",
        "exponent_bits": 3,
        "guard_bits": 2,
        "output_bits": 24,
        "conv_channels": 0,
        "hidden_channels": 0,
        "asq_bits": 0,
        "bitshift_norm": False,
        "post_bitshift_norm": False,
    },
    "train": {
        "epochs": 40,
        "batch_size": 64,
        "lr_thresholds": 1e-4,
        "lr_thresholds_dn": 1.0,
        "start_epochs": 2,
        "start_selection": "halving",
        "finish_start": True,
        "hold_lossless": True,
        "val_captures": 1,
        "task_start_epochs": 3,
        "lr_network": 1e-3,
        "lr_decay": "cosine",
        "freeze_epochs": 4,
        "threshold_warmup_epochs": 1,
        "seed": 0,
        "device": "cpu",
        "threads": 1,
        "eval_every": 1,
        "photons_per": "batch",
    },
}

_TYPES = {
    "name": str,
    "data.dataset": str, "data.seed": int, "data.val_fraction": float,
    "sensor.preset": str, "sensor.seed": int,
    "quantizer.method": str, "quantizer.bits": int, "quantizer.init": str,
    "quantizer.threshold_param": str, "quantizer.ste_window": str, "quantizer.estimator": str,
    "quantizer.task_weight": str,
    "quantizer.decoder": str, "quantizer.channels": int, "quantizer.decode_width": int,
    "network.kind": str, "network.exponent_bits": int, "network.guard_bits": int,
    "network.output_bits": int, "network.conv_channels": int, "network.hidden_channels": int,
    "network.asq_bits": int, "network.bitshift_norm": bool, "network.post_bitshift_norm": bool,
    "train.epochs": int, "train.batch_size": int, "train.lr_thresholds": float,
    "train.lr_thresholds_dn": float, "train.start_epochs": int, "train.task_start_epochs": int,
    "train.lr_network": float, "train.freeze_epochs": int,
    "train.threshold_warmup_epochs": int, "train.seed": int, "train.device": str,
    "train.threads": int, "train.eval_every": int, "train.photons_per": str,
    "train.lr_decay": str, "train.start_selection": str, "train.finish_start": bool,
    "train.hold_lossless": bool, "train.val_captures": int,
}
_RANGES = {
    "quantizer.bits": (1, 8), "quantizer.channels": (1, 16), "quantizer.decode_width": (2, 12),
    "network.exponent_bits": (1, 4), "network.guard_bits": (0, 8), "network.output_bits": (2, 32),
    "network.conv_channels": (0, 64), "network.hidden_channels": (0, 256),
    "network.asq_bits": (0, 8),
    "train.epochs": (1, 100000), "train.batch_size": (1, 65536), "train.freeze_epochs": (0, 100000),
    "train.threshold_warmup_epochs": (0, 100000),
    "train.threads": (1, 256), "train.eval_every": (1, 100000),
    "train.lr_thresholds": (0.0, 10.0), "train.lr_network": (0.0, 10.0),
    "train.lr_thresholds_dn": (0.0, 1000.0), "train.start_epochs": (0, 100000),
    "train.task_start_epochs": (1, 100000), "data.val_fraction": (0.01, 0.5),
    "train.val_captures": (1, 64),
}
_CHOICES = {
    "quantizer.method": METHODS, "quantizer.decoder": DECODERS,
    "quantizer.threshold_param": ("auto", *THRESHOLD_PARAMS),
    "quantizer.estimator": ("auto", *ESTIMATORS), "quantizer.task_weight": TASK_WEIGHTS,
    "quantizer.ste_window": ("auto", *WINDOWS),
    "network.kind": NETWORKS, "train.device": DEVICES, "train.photons_per": ("batch", "image"),
    "train.lr_decay": ("cosine", "none"), "train.start_selection": ("halving", "once"),
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
    st = q["starts"]
    if st != "auto" and (not isinstance(st, (list, tuple)) or not st
                         or any(x not in STARTS for x in st) or len(set(st)) != len(st)):
        raise ConfigError(f"{source}: key 'quantizer.starts': got {st!r}; expected 'auto' or a "
                          f"list of distinct starts from: {', '.join(STARTS)}")
    if st != "auto":
        q["starts"] = list(st)
    if q["init"] not in STARTS:
        raise ConfigError(f"{source}: key 'quantizer.init': got {q['init']!r}; allowed: "
                          f"{', '.join(STARTS)}")
    wa = q["window_anneal"]
    if wa not in ("auto", None) and (
            not isinstance(wa, (list, tuple)) or len(wa) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in wa)
            or not 0 < wa[1] <= wa[0] <= 1):
        raise ConfigError(f"{source}: key 'quantizer.window_anneal': got {wa!r}; expected "
                          f"'auto', null or [start, end] with 0 < end <= start <= 1 (fractions "
                          f"of the sample range)")
    if isinstance(wa, (list, tuple)):
        q["window_anneal"] = [float(wa[0]), float(wa[1])]
    size = out["data"]["size"]
    if size is not None:
        if isinstance(size, str) and re.fullmatch(r"\d+x\d+", size):
            size = [int(v) for v in size.split("x")]
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096
                           for v in size)):
            raise ConfigError(f"{source}: key 'data.size': got {size!r}; expected null (image "
                              f"folders: the most common size) or [height, width] (or "
                              f"'HxW'), each in 1..4096")
        out["data"]["size"] = [int(size[0]), int(size[1])]
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


LEARNED_DEFAULTS = {"starts": ["quantile", "uniform", "task"], "estimator": "normal",
                    "window_anneal": None, "threshold_param": "dn"}
"""What ``auto`` means for method ``learned``; the other learned-threshold methods (``bitwise``,
``gumbel``) resolve ``auto`` to one start (``quantizer.init``), their own relaxation (no
estimator, no annealed window) and the ``absolute`` parameterisation."""


def resolve_auto(cfg: dict, height: int, width: int) -> dict:
    """Return a copy of a validated config with every ``auto`` that depends on the method or the
    data resolved: ``network.kind`` (``linear`` for images of at most 8×8, else ``cnn3``) and
    the learned-threshold keys of :data:`LEARNED_DEFAULTS`."""
    cfg = copy.deepcopy(cfg)
    q, n = cfg["quantizer"], cfg["network"]
    if n["kind"] == "auto":
        n["kind"] = "linear" if height * width <= 64 else "cnn3"
    conv, hidden = NETWORK_CHANNELS.get(n["kind"], (8, 16))
    n["conv_channels"] = n["conv_channels"] or conv
    n["hidden_channels"] = n["hidden_channels"] or hidden
    learned = q["method"] == "learned"
    if q["starts"] == "auto":
        q["starts"] = list(LEARNED_DEFAULTS["starts"]) if learned else [q["init"]]
    if q["estimator"] == "auto":
        q["estimator"] = LEARNED_DEFAULTS["estimator"] if learned else "box"
    if q["window_anneal"] == "auto":
        anneal = LEARNED_DEFAULTS["window_anneal"]
        q["window_anneal"] = list(anneal) if learned and anneal is not None else None
    if q["threshold_param"] == "auto":
        q["threshold_param"] = LEARNED_DEFAULTS["threshold_param"] if learned else "absolute"
    return cfg


def load_config(config: dict | str | os.PathLike | None) -> dict:
    """Load a config from a mapping, a YAML path or a bundled name (``None``: the default)."""
    if config is None:
        return validate({}, "<default config>")
    if isinstance(config, dict):
        return validate(config, "<config>")
    raw, source = load_yaml(config, "training config", bundled=bundled_configs())
    return validate(raw or {}, source)


def apply_overrides(cfg: dict, data=None, method=None, bits=None, photons=None, epochs=None,
                    seed=None, network=None) -> dict:
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
    if network is not None:
        cfg["network"]["kind"] = network
    return validate(cfg, "<config with overrides>")

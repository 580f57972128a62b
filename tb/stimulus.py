"""Stimulus batches for the co-simulation: exhaustive sweeps, random streams, sensor frames and
worst cases, each with the golden model's expected results.

A batch config is a dict: ``name``, ``stim`` (``exhaustive``, ``random``, ``sensor``,
``extremes``), ``n`` (samples, or inferences for ``mode: outputs``), ``mode`` (``codes`` or
``outputs``), ``valid_p``/``ready_p`` (input valid and output ready probabilities), ``seed``.
"""

from __future__ import annotations

import numpy as np

from sim.samples import sensor_samples

from .targets import PipelineTarget, PostMultiplierTarget


def sample_for_code(design, code: int) -> int:
    """Return the smallest sample that the ladder maps to ``code``."""
    return 0 if code == 0 else design.thresholds[code - 1]


def make_batch(target, cfg: dict) -> dict:
    """Return ``stim`` (packed words), ``inputs``, ``expected`` rows, ``unpack`` and ``mode``."""
    rng = np.random.default_rng(cfg.get("seed", 1))
    kind, mode = cfg["stim"], cfg.get("mode", "codes")
    if isinstance(target, PostMultiplierTarget):
        w, e = target.width, target.exponent_bits
        a, s, n = np.meshgrid(np.arange(-(2 ** (w - 1)), 2 ** (w - 1)), [-1, 0, 1],
                              np.arange(2**e), indexing="ij")
        a, s, n = a.ravel(), s.ravel(), n.ravel()
        keep = ~((s == 0) & (n != 0))  # zero weights carry exponent 0
        a, s, n = a[keep], s[keep], n[keep]
        if kind == "random":
            idx = rng.integers(0, len(a), size=cfg["n"])
            a, s, n = a[idx], s[idx], n[idx]
        return {"stim": target.pack(a, s, n), "inputs": np.stack([a, s, n], axis=1),
                "expected": target.expected(a, s, n)[:, None],
                "unpack": lambda raw: target.unpack(raw)[:, None], "mode": "codes", "unit": 1,
                "outs_per_unit": 1}

    assert isinstance(target, PipelineTarget)
    d = target.design
    top = 2**d.input_bits
    lanes = target.lanes
    if mode == "outputs":
        spi, n = d.samples_per_inference, cfg["n"]
        if kind == "random":
            samples = rng.integers(0, top, size=(n, spi))
        elif kind == "extremes":
            table = d.decode.table
            lo = sample_for_code(d, int(np.argmin(table.min(axis=1))))
            hi = sample_for_code(d, int(np.argmax(table.max(axis=1))))
            patterns = [np.full(spi, lo), np.full(spi, hi), np.resize([lo, hi], spi),
                        np.resize([hi, lo], spi)]
            samples = np.array([patterns[k % 4] for k in range(n)])
        else:
            raise ValueError(f"unknown stimulus {kind!r} for MAC outputs")
        exp = target.reference(samples)["outputs"].reshape(-1, 1)
        # one word per result (one lane), or per inference (lanes: all its results at once)
        unit, outs = (spi, d.mac.outputs) if lanes == 1 else (spi // lanes, 1)
        return {"stim": target.pack(samples.ravel()), "samples": samples.ravel(),
                "inputs": np.repeat(samples, d.mac.outputs, axis=0),
                "expected": exp, "unpack": lambda raw: target.unpack_outputs(raw)[:, None],
                "mode": "outputs", "unit": unit, "outs_per_unit": outs}

    if kind == "exhaustive":
        # every input value on every lane: lane k of beat b carries (b + k * top / lanes) % top
        beats = np.arange(top)
        samples = ((beats[:, None] + np.arange(lanes)[None, :] * (top // lanes)) % top).ravel()
    elif kind == "random":
        samples = rng.integers(0, top, size=-(-cfg["n"] // lanes) * lanes)
    elif kind == "sensor":
        samples, _ = sensor_samples(d, cfg["n"], seed=cfg.get("seed", 1), scene="levels")
        samples = samples[:len(samples) // lanes * lanes]
    else:
        raise ValueError(f"unknown stimulus {kind!r}")
    ref = target.reference_codes(samples)
    expected = np.concatenate([ref["codes"][:, None], ref["values"]], axis=1)

    def unpack(raw):
        codes, values = target.unpack_codes(raw)
        return np.concatenate([codes[:, None], values], axis=1)

    return {"stim": target.pack(samples), "samples": samples, "inputs": samples,
            "expected": expected, "unpack": unpack, "mode": "codes", "unit": 1,
            "outs_per_unit": 1}

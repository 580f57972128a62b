"""Plots (PNG, matplotlib Agg): thresholds over the sample histogram, training curves,
accuracy against bits."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_thresholds(stats, initial, final, path: Path, title: str = "") -> Path:
    """Histogram of training samples (DN, log counts) with the initial (dashed) and learned
    (solid) integer thresholds — the analysis of Table 3 of the task-guided paper."""
    plt = _plt()
    lo = min([stats.lo] + list(final) + list(initial))
    hi = max([stats.hi] + list(final) + list(initial))
    pad = max(2, (hi - lo) // 20)
    lo, hi = max(0, lo - pad), min(stats.max_dn, hi + pad)
    v = np.arange(lo, hi + 1)
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    ax.bar(v, stats.counts[lo:hi + 1], width=1.0, color="0.7", label="sensor samples")
    ax.set_yscale("log")
    for i, t in enumerate(initial):
        ax.axvline(t - 0.5, color="tab:blue", ls="--", lw=0.8,
                   label="initial thresholds" if i == 0 else None)
    for i, t in enumerate(final):
        ax.axvline(t - 0.5, color="tab:red", lw=1.2,
                   label="exported thresholds" if i == 0 else None)
    ax.set_xlabel("sample (DN); a line at t - 1/2 means x >= t")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_training(history: dict, path: Path) -> Path:
    """Loss and accuracies per epoch."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3), dpi=110)
    e = history["epoch"]
    a1.plot(e, history["loss"], color="tab:red")
    a1.set_xlabel("epoch")
    a1.set_ylabel("training loss")
    a2.plot(e, history["train_accuracy"], label="train (float, noisy)")
    if "val_accuracy" in history:
        a2.plot(e, history["val_accuracy"], label="validation (integer model)")
    else:
        a2.plot(e, history["test_accuracy_hard"], label="test (integer model)")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_accuracy_vs_bits(rows: list[dict], path: Path, title: str) -> Path:
    """``rows``: dicts with method, bits, mean, std (one light level, one dataset)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    methods = sorted({r["method"] for r in rows})
    for m in methods:
        rs = sorted((r for r in rows if r["method"] == m), key=lambda r: r["bits"])
        if m == "fp":
            ax.axhline(rs[0]["mean"], color="k", ls=":", label="fp")
            continue
        ax.errorbar([r["bits"] for r in rs], [r["mean"] for r in rs],
                    yerr=[r["std"] for r in rs], marker="o", ms=3, capsize=2, label=m)
    ax.set_xlabel("ADC bits")
    ax.set_ylabel("test accuracy (golden model)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

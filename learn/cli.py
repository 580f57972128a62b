"""Command line of the learn stage: ``adcforge train``, ``adcforge compare``, ``adcforge bench
train``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .methods import METHODS


def with_sets(cfg: dict, sets) -> dict:
    """Return ``cfg`` with ``KEY=VALUE`` settings applied (values parsed as YAML); a malformed
    item or a key under no section is a ConfigError naming it. The caller validates the result
    (with the other command-line overrides, so that --method fixed and its thresholds go
    together)."""
    import copy

    import yaml

    from adcforge.errors import ConfigError

    cfg = copy.deepcopy(cfg)
    for item in sets:
        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=8")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                value = float(value)
            except ValueError:
                pass
        node, parts = cfg, key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"--set {item!r}: unknown key {key.strip()!r}")
            node = node[part]
        node[parts[-1]] = value
    return cfg


def register(main, bench):
    """Add the learn commands to the ``adcforge`` group and its ``bench`` group."""
    main.add_command(train_cmd)
    main.add_command(compare_cmd)
    bench.add_command(bench_train_cmd)


@click.command("train")
@click.argument("config", required=False)
@click.option("-o", "--out", "out", required=True, type=click.Path(file_okay=False),
              help="output folder: design.yaml, metrics.json, thresholds.png, training.png")
@click.option("--data", help="dataset: digits, hdr, scenes, or an ImageFolder directory")
@click.option("--method", help=", ".join(METHODS) + " (fixed: with --set "
                               "quantizer.thresholds=[...])")
@click.option("--bits", type=int, help="ADC code bits, 1..8")
@click.option("--size", metavar="HxW", help="resize image-folder images to height x width "
                                            "(default: the folder's most common size)")
@click.option("--photons", type=float, help="mean photons per pixel at white")
@click.option("--epochs", type=int, help="training epochs")
@click.option("--seed", type=int, help="training seed (init, noise, shuffling)")
@click.option("--network", help="task network: auto (linear up to 8x8, else cnn3), linear, cnn, "
                                "cnn3")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="set any config key (repeatable), e.g. --set train.lr_thresholds=1e-3 or "
                   "--set quantizer.thresholds=[380,450,530]; values are YAML, validated like "
                   "the file")
@click.option("--resume", is_flag=True, help="continue from OUT/.checkpoint if present")
@click.option("--quiet", is_flag=True, help="no progress bar")
def train_cmd(config, out, data, method, bits, size, photons, epochs, seed, network, sets,
              resume, quiet):
    """Train a learned ADC and its POST layer on the simulated sensor; export the design file.

    Without CONFIG: the bundled default task (digits, phone sensor, 10 photons, learned 2-bit
    ADC, POST classifier). The reported test accuracy is measured through the golden model on
    the exported design.yaml.
    """
    from .config import apply_overrides, load_config
    from .train import train

    sets = ([f"data.size={size}"] if size else []) + list(sets)
    cfg = apply_overrides(with_sets(load_config(config), sets), data=data, method=method,
                          bits=bits, photons=photons, epochs=epochs, seed=seed, network=network)
    m = train(cfg, out, progress=not quiet, resume=resume)
    where = "golden model" if "golden" in m["measured_through"] else "float model"
    click.echo(f"{m['method']} {m['bits']} bit, {m['photons']} photons: test accuracy "
               f"{m['test_accuracy']:.4f} ({where}); {m['wall_seconds']:.1f} s")
    for f in ("design.yaml", "metrics.json", "thresholds.png", "training.png"):
        click.echo(f"  {Path(out) / f}")


@click.command("compare")
@click.argument("config", required=False)
@click.option("-o", "--out", "out", required=True, type=click.Path(file_okay=False))
@click.option("--jobs", "-j", default=1, show_default=True,
              help="parallel worker processes (one thread each)")
@click.option("--cached-only", is_flag=True,
              help="train nothing: report the runs already cached in OUT/.cache")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="train on an existing Dask cluster (workers need only this package)")
@click.option("--cluster", default=None, metavar="local:N",
              help="train on a Dask LocalCluster of N worker processes on this machine")
@click.option("--quiet", is_flag=True)
def compare_cmd(config, out, jobs, cached_only, scheduler, cluster, quiet):
    """Compare methods × bits × light levels × seeds (bundled default: learn/configs/compare.yaml).

    Writes results.md (mean ± std), results.csv, accuracy-vs-bits plots per light level and
    robustness.md. Finished runs are cached in OUT/.cache: rerunning continues.
    """
    from .compare import compare

    if scheduler and cluster:
        raise click.UsageError("give one of --scheduler and --cluster")
    if cluster:
        from .cluster import parse_cluster
        parse_cluster(cluster)  # a malformed value fails before any work
    res = compare(config, out, progress=not quiet, jobs_n=jobs, cached_only=cached_only,
                  scheduler=scheduler, cluster=cluster)
    click.echo(f"{len(res['rows'])} runs in {res['seconds']:.0f} s: "
               f"{Path(out) / 'results.md'}")
    if res["failed"]:
        click.echo(f"{len(res['failed'])} runs failed (not cached; a rerun retries them): "
                   f"{', '.join(res['failed'][:5])}", err=True)
        raise SystemExit(1)


@click.command("train")
@click.option("--device", default="cpu", type=click.Choice(["cpu", "cuda", "auto"]))
@click.option("--steps", default=200, help="timed training steps per batch size")
@click.option("--skip-default", is_flag=True, help="do not time the default train config")
def bench_train_cmd(device, steps, skip_default):
    """Print training samples/s (sensor + quantizer + network) and the default config's time."""
    import torch
    import torch.nn.functional as F

    from .config import load_config
    from .train import Task, _device, build_model, sample_stats, train

    devices = [device]
    if device == "cpu" and torch.cuda.is_available():
        devices.append("cuda")
    for dev in devices:
        for method in ("learned", "bitwise", "uniform"):
            cfg = load_config(None)
            cfg["quantizer"]["method"] = method
            task = Task(cfg, _device(dev))
            model = build_model(cfg, task, sample_stats(task, cfg))
            opt = torch.optim.Adam(model.parameters(), 1e-3)
            g = torch.Generator(device=task.device).manual_seed(0)
            for bs in (64, 1024):
                idx = torch.arange(bs, device=task.device) % len(task.train_x)
                for i in range(steps + 10):
                    if i == 10:
                        if task.device.type == "cuda":
                            torch.cuda.synchronize()
                        t = time.perf_counter()
                    dn = task.capture(task.train_x[idx], g)
                    loss = F.cross_entropy(model(dn), task.train_y[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                if task.device.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t
                click.echo(f"{dev:4s} {method:8s} batch {bs:5d}: {steps * bs / dt:10.0f} "
                           f"samples/s ({torch.get_num_threads()} threads)")
    if not skip_default:
        t = time.perf_counter()
        m = train(None, None, progress=False)
        click.echo(f"default train config (digits, {m['epochs']} epochs, CPU): "
                   f"{time.perf_counter() - t:.1f} s wall, test accuracy {m['test_accuracy']:.4f}")

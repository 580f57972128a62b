"""Throughput of the sensor model (``adcforge bench sim``), side by side with ESA's Pyxel.

Figures are megapixels per second for one ``size × size`` frame with every stage on (the
machine-vision preset plus row/column FPN, hot pixels, comparator offsets and gain nonlinearity),
best of ``repeats`` runs, on numpy and torch (CPU, and CUDA when present). Pyxel runs the same
stages (illumination, Poisson shot noise, QE, dark current with Poisson noise, PRNU, full well,
charge-to-voltage, Gaussian read noise, amplifier, ADC) on the same frame size and light level,
in-process when ``pyxel`` imports, otherwise in the Python given by ``--pyxel-python`` or the
environment variable ``ADCFORGE_PYXEL_PYTHON``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from .sensor import Sensor, load_sensor

PYXEL_HINT = ("Pyxel not found: `pip install 'adcforge[bench]'` (or `pip install pyxel-sim` into "
              "another venv and pass --pyxel-python /path/to/venv/bin/python, or set "
              "ADCFORGE_PYXEL_PYTHON)")


def bench_sensor(size: int = 2048, seed: int = 0, **overrides) -> Sensor:
    """Return the benchmark sensor: machine-vision preset, ``size²``, every optional stage on."""
    params = dict(width=size, height=size, row_fpn_e=1.0, column_fpn_e=1.0,
                  hot_pixel_fraction=1e-3, hot_pixel_dark_current_e_per_s=500.0,
                  comparator_offset_dn=0.2, gain_nonlinearity_percent=1.0)
    params.update(overrides)
    return load_sensor("machine-vision", seed=seed, **params)


def machine_info() -> dict:
    """Return the machine's core count, CPU model, load and library versions."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cores": os.cpu_count(), "cpu": cpu, "load_average_1min": round(load[0], 2),
            "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _best(fn, repeats: int, npix: int) -> tuple[float, float]:
    """Return (Mpix/s of the fastest run, Mpix per CPU-second of that run)."""
    fn()  # warm-up
    best, cpu = math.inf, math.inf
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall, used = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, cpu = wall, used
    return npix / best / 1e6, npix / max(cpu, 1e-9) / 1e6


def bench_numpy(sensor: Sensor, photons: float, repeats: int = 3, threads=None):
    """Return (Mpix/s, Mpix per CPU-second) of :meth:`Sensor.capture` on a flat field."""
    npix = sensor.width * sensor.height
    return _best(lambda: sensor.capture(photons, threads=threads), repeats, npix)


def bench_torch(sensor: Sensor, photons: float, device: str = "cpu", repeats: int = 3,
                batch: int = 1):
    """Return (Mpix/s, Mpix per CPU-second) of the torch backend on ``batch`` flat frames."""
    import torch

    ts = sensor.torch(device)
    x = torch.full((batch, sensor.height, sensor.width), float(photons), device=device)

    def run():
        ts.capture(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return _best(run, repeats, batch * sensor.width * sensor.height)


def bench_scene(sensor: Sensor, repeats: int = 3, seed: int = 1):
    """Return (Mpix/s, Mpix per CPU-second), numpy, on a log-uniform 0.1–30 000 photon scene."""
    rng = np.random.default_rng(seed)
    scene = np.exp(rng.uniform(math.log(0.1), math.log(3e4), (sensor.height, sensor.width)))
    npix = sensor.width * sensor.height
    return _best(lambda: sensor.capture(scene), repeats, npix)


# -- Pyxel --------------------------------------------------------------------------------------
PYXEL_SCRIPT = textwrap.dedent('''
    import json, sys, time, warnings, math
    warnings.filterwarnings("ignore")
    import pyxel
    from pyxel.pipelines import Processor
    p = json.loads(sys.argv[1])
    cfg = pyxel.load(p["config"])
    t0 = time.perf_counter()
    pyxel.run_mode(mode=cfg.running_mode, detector=cfg.detector, pipeline=cfg.pipeline)
    first = time.perf_counter() - t0
    best_mode, cpu_mode = math.inf, math.inf
    for _ in range(p["repeats"]):
        c0, t0 = time.process_time(), time.perf_counter()
        pyxel.run_mode(mode=cfg.running_mode, detector=cfg.detector, pipeline=cfg.pipeline)
        wall = time.perf_counter() - t0
        if wall < best_mode:
            best_mode, cpu_mode = wall, time.process_time() - c0
    det = cfg.detector
    proc = Processor(detector=det, pipeline=cfg.pipeline)
    best_models, cpu_models = math.inf, math.inf
    for _ in range(p["repeats"]):
        det.empty()
        c0, t0 = time.process_time(), time.perf_counter()
        proc.run_pipeline(debug=False)
        wall = time.perf_counter() - t0
        if wall < best_models:
            best_models, cpu_models = wall, time.process_time() - c0
    img = det.image.array
    n = p["size"] ** 2
    print(json.dumps({"version": pyxel.__version__, "run_mode_mpix_s": n / best_mode / 1e6,
                      "models_only_mpix_s": n / best_models / 1e6, "first_run_s": first,
                      "run_mode_mpix_per_cpu_s": n / cpu_mode / 1e6,
                      "models_only_mpix_per_cpu_s": n / cpu_models / 1e6,
                      "image_mean_dn": float(img.mean()), "image_std_dn": float(img.std())}))
''')


def pyxel_config(sensor: Sensor, photons: float) -> str:
    """Return a Pyxel YAML running the same stages as :class:`Sensor` on the same frame."""
    c = sensor.config
    volt_per_e = 1e-6
    v_max = (c.max_dn / c.conversion_gain_dn_per_e) * volt_per_e
    t = c.exposure_s
    return textwrap.dedent(f'''
        exposure:
          readout:
            times: [{t}]
            non_destructive: false
        cmos_detector:
          geometry:
            row: {c.height}
            col: {c.width}
            total_thickness: 40.0
            pixel_vert_size: {c.pixel_pitch_um}
            pixel_horz_size: {c.pixel_pitch_um}
          environment:
            temperature: {c.temperature_c + 273.15}
          characteristics:
            quantum_efficiency: {float(np.mean(c.quantum_efficiency))}
            charge_to_volt_conversion: {volt_per_e:.6e}
            pre_amplification: 1.0
            adc_voltage_range: [0.0, {v_max}]
            adc_bit_resolution: {c.adc_bits}
            full_well_capacity: {c.full_well_e}
        pipeline:
          photon_collection:
            - name: illumination
              func: pyxel.models.photon_collection.illumination
              enabled: true
              arguments:
                level: {photons / t}
            - name: shot_noise
              func: pyxel.models.photon_collection.shot_noise
              enabled: true
          charge_generation:
            - name: photoelectrons
              func: pyxel.models.charge_generation.simple_conversion
              enabled: true
              arguments:
                binomial_sampling: false
            - name: dark_current
              func: pyxel.models.charge_generation.simple_dark_current
              enabled: true
              arguments:
                dark_rate: {c.dark_current_at_temp_e_per_s}
          charge_collection:
            - name: simple_collection
              func: pyxel.models.charge_collection.simple_collection
              enabled: true
            - name: fixed_pattern_noise
              func: pyxel.models.charge_collection.fixed_pattern_noise
              enabled: true
              arguments:
                fixed_pattern_noise_factor: {c.prnu_percent / 100}
            - name: full_well
              func: pyxel.models.charge_collection.simple_full_well
              enabled: true
          charge_measurement:
            - name: simple_measurement
              func: pyxel.models.charge_measurement.simple_measurement
              enabled: true
            - name: output_node_noise
              func: pyxel.models.charge_measurement.output_node_noise
              enabled: true
              arguments:
                std_deviation: {c.read_noise_e * volt_per_e:.6e}
          readout_electronics:
            - name: simple_amplifier
              func: pyxel.models.readout_electronics.simple_amplifier
              enabled: true
            - name: simple_adc
              func: pyxel.models.readout_electronics.simple_adc
              enabled: true
    ''')


def find_pyxel_python(explicit: str | None = None) -> str | None:
    """Return a Python executable that can import pyxel, or ``None``."""
    if importlib.util.find_spec("pyxel") is not None:
        return sys.executable
    for cand in (explicit, os.environ.get("ADCFORGE_PYXEL_PYTHON")):
        if cand and Path(cand).is_file():
            return cand
    return None


def bench_pyxel(sensor: Sensor, photons: float, repeats: int = 3,
                python: str | None = None, timeout_s: float = 900) -> dict:
    """Run the Pyxel pipeline side by side; return its figures or ``{"error": why}``."""
    exe = find_pyxel_python(python)
    if exe is None:
        return {"error": PYXEL_HINT}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "pyxel_bench.yaml"
        cfg.write_text(pyxel_config(sensor, photons))
        args = json.dumps({"config": str(cfg), "repeats": repeats, "size": sensor.width})
        try:
            done = subprocess.run([exe, "-c", PYXEL_SCRIPT, args], capture_output=True, text=True,
                                  timeout=timeout_s, cwd=tmp)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": f"Pyxel run failed: {exc}"}
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
        return {"error": f"Pyxel run failed: {tail[0]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- fast mode error ----------------------------------------------------------------------------
def gaussian_mode_error(lam: float) -> dict:
    """Return the exact error of the rounded-Gaussian shot noise against Poisson at mean ``lam``.

    Total-variation distance between the two distributions, and the errors of mean, variance and
    skewness (Poisson skewness is 1/√λ; the Gaussian's is ~0), computed from the probability
    mass functions (no sampling).
    """
    from scipy import stats

    sd = math.sqrt(lam)
    k = np.arange(max(0, int(lam - 12 * sd - 5)), int(lam + 12 * sd + 6))
    p = stats.poisson.pmf(k, lam)
    q = stats.norm.cdf(k + 0.5, lam, sd) - stats.norm.cdf(k - 0.5, lam, sd)
    q[0] += stats.norm.cdf(k[0] - 0.5, lam, sd)  # clipped at 0 / lower tail mass
    q = q / q.sum()
    mean_q = float((k * q).sum())
    var_q = float(((k - mean_q) ** 2 * q).sum())
    skew_q = float(((k - mean_q) ** 3 * q).sum() / var_q**1.5)
    return {"mean_e": lam, "tv_distance": float(0.5 * np.abs(p - q).sum()),
            "mean_error_e": mean_q - lam, "variance_rel_error": var_q / lam - 1.0,
            "skewness_poisson": 1 / sd, "skewness_gaussian_mode": skew_q}


def _row(backend: str, mode: str, figures) -> dict:
    return {"backend": backend, "mode": mode, "mpix_s": figures[0],
            "mpix_per_cpu_s": figures[1]}


def run(size: int = 2048, photons: float = 5000.0, repeats: int = 3, devices=None,
        pyxel_python: str | None = None, with_pyxel: bool = True, fast_above: float | None = None,
        progress=None) -> dict:
    """Run the benchmark; return a JSON-ready dict of figures and the machine.

    Each row has ``mpix_s`` (wall clock, best run) and ``mpix_per_cpu_s`` (the same run's pixels
    per CPU-second summed over threads), which depends much less on what else the machine runs.
    """
    import torch

    say = progress or (lambda msg: None)
    out = {"machine": machine_info(), "size": size, "photons": photons, "repeats": repeats,
           "results": []}
    sensor = bench_sensor(size)
    say("numpy (exact Poisson)")
    out["results"].append(_row("numpy", "exact", bench_numpy(sensor, photons, repeats)))
    say("numpy, one thread")
    out["results"].append(_row("numpy, 1 thread", "exact",
                               bench_numpy(sensor, photons, repeats, threads=1)))
    say("numpy on a scene")
    out["results"].append(_row("numpy, scene 0.1–30k photons", "exact",
                               bench_scene(sensor, repeats)))
    devices = devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    threads = torch.get_num_threads()
    for dev in devices:
        say(f"torch {dev}")
        name = f"torch {dev}" + (f", {threads} threads" if dev == "cpu" else "")
        out["results"].append(_row(name, "exact", bench_torch(sensor, photons, dev, repeats)))
        if dev == "cpu" and threads > 1:
            # on a shared machine torch's spinning OpenMP threads can lose to one thread
            torch.set_num_threads(1)
            try:
                say("torch cpu, 1 thread")
                out["results"].append(_row("torch cpu, 1 thread", "exact",
                                           bench_torch(sensor, photons, dev, repeats)))
            finally:
                torch.set_num_threads(threads)
    for dev in devices:  # the training shapes of learn/
        for n, hw, preset in ((256, 8, "phone"), (32, 64, "machine-vision")):
            say(f"torch {dev} batch {n}x{hw}x{hw}")
            small = load_sensor(preset, width=hw, height=hw)
            figures = bench_torch(small, 0.2 * photons, dev, max(repeats, 5), batch=n)
            row = _row(f"torch {dev} batch {n}x{hw}x{hw} ({preset})", "exact", figures)
            row["ms_per_batch"] = n * hw * hw / figures[0] / 1e3
            out["results"].append(row)
    if fast_above is not None:
        fast = bench_sensor(size, poisson_gaussian_above_e=fast_above)
        mode = f"gaussian above {fast_above:g} e-"
        say(f"numpy fast mode ({mode})")
        out["results"].append(_row("numpy", mode, bench_numpy(fast, photons, repeats)))
        for dev in devices:
            out["results"].append(_row(f"torch {dev}", mode,
                                       bench_torch(fast, photons, dev, repeats)))
        out["fast_mode_error"] = [gaussian_mode_error(m) for m in
                                  sorted({fast_above, 10 * fast_above})]
    if with_pyxel:
        say("Pyxel (same stages, same frame)")
        out["pyxel"] = bench_pyxel(sensor, photons, repeats, pyxel_python)
        if "error" not in out["pyxel"]:
            # the machine's load drifts: time the exact numpy engine again after Pyxel, keep best
            say("numpy again (after Pyxel)")
            again = bench_numpy(sensor, photons, repeats)
            if again[0] > out["results"][0]["mpix_s"]:
                out["results"][0] = _row("numpy", "exact", again)
    return out


def report(res: dict) -> str:
    """Return the benchmark as a plain-text table."""
    m = res["machine"]
    lines = [f"machine: {m['cores']} cores ({m['cpu']}), load {m['load_average_1min']}, "
             f"numpy {m['numpy']}, torch {m['torch']} ({m['torch_threads']} threads)"
             + (f", CUDA {m['cuda']}" if m["cuda"] else ""),
             f"frame: {res['size']}x{res['size']}, every stage on, flat field "
             f"{res['photons']:g} photons/pixel, best of {res['repeats']}", ""]
    pyx = res.get("pyxel", {})
    ref = pyx.get("run_mode_mpix_s")
    ref2 = pyx.get("models_only_mpix_s")
    head = f"{'backend':42s} {'mode':24s} {'Mpix/s':>7s} {'Mpix/CPU-s':>10s}"
    if ref:
        head += "  ×Pyxel(run_mode)  ×Pyxel(models)  ×Pyxel per CPU-s (models)"
    lines.append(head)
    for r in res["results"]:
        line = f"{r['backend']:42s} {r['mode']:24s} {r['mpix_s']:7.2f} {r['mpix_per_cpu_s']:10.2f}"
        if ref:
            line += (f"  {r['mpix_s'] / ref:16.1f}  {r['mpix_s'] / ref2:14.1f}"
                     f"  {r['mpix_per_cpu_s'] / pyx['models_only_mpix_per_cpu_s']:25.1f}")
        if "ms_per_batch" in r:
            line += f"   ({r['ms_per_batch']:.2f} ms per batch)"
        lines.append(line)
    if ref:
        lines.append(f"{'Pyxel ' + pyx['version'] + ' run_mode':42s} {'exact, 4 draws/pixel':24s} "
                     f"{ref:7.2f} {pyx['run_mode_mpix_per_cpu_s']:10.2f}")
        lines.append(f"{'Pyxel ' + pyx['version'] + ' models only':42s} "
                     f"{'exact, 4 draws/pixel':24s} {ref2:7.2f} "
                     f"{pyx['models_only_mpix_per_cpu_s']:10.2f}")
    elif "error" in pyx:
        lines.append(f"Pyxel: {pyx['error']}")
    for e in res.get("fast_mode_error", []):
        lines.append(f"fast mode at λ = {e['mean_e']:g} e-: TV distance {e['tv_distance']:.2e}, "
                     f"mean error {e['mean_error_e']:+.2e} e-, variance error "
                     f"{100 * e['variance_rel_error']:+.3f} %, skewness "
                     f"{e['skewness_gaussian_mode']:.3f} vs Poisson {e['skewness_poisson']:.3f}")
    return "\n".join(lines)

"""Sensor samples for a design: the one source of simulated stimulus for cosim, HIL and scoring.

Every path from the sensor to a design's input goes through :func:`adcforge.design.sensor_to_samples`
(the DN → sample-word rule of the design format). Three kinds of stimulus:

- :func:`sensor_samples` with ``scene="ramp"``: frames of a horizontal × vertical ramp of mean
  ``photons`` per pixel, so that a run covers dark and bright samples (``hil``'s default);
- :func:`sensor_samples` with ``scene="levels"``: flat frames at 2, 20, 200 and 2000 photons per
  pixel, drawn at random (``cosim``'s sensor stimulus);
- :func:`task_frames`: a classifier design's own test set, rebuilt from its provenance and
  rendered through its sensor, so that a board's outputs can be scored against the labels.

A design whose POST layer is the whole classifier (``network: linear`` in its provenance: one
inference per image, one output per class) is scored by ``argmax`` of the outputs, ties to the
lowest index, as ``learn`` does. Other designs need the host-side tail network, which the design
file does not carry: :func:`task_frames` then returns ``None`` and :func:`why_no_task` says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adcforge.design import Design, sensor_to_samples

SCENES = ("ramp", "levels")
LEVELS_PHOTONS = (2.0, 20.0, 200.0, 2000.0)


def sensor_samples(design: Design, n: int, *, photons: float = 20.0, sensor: str = "phone",
                   seed: int = 0, frame: int = 64, scene: str = "ramp") -> tuple[np.ndarray, str]:
    """Return ``n`` samples of simulated sensor frames and a line saying where they came from.

    ``photons`` is the mean photons per pixel of the ``ramp`` scene (ignored by ``levels``);
    frames are ``frame`` × ``frame`` pixels of preset ``sensor`` seeded with ``seed``.
    """
    from . import load_sensor

    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; choose one of {', '.join(SCENES)}")
    s = load_sensor(sensor, seed=seed, width=frame, height=frame)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:frame, 0:frame] / max(frame - 1, 1)
    ramp = photons * (2.0 * xx) * (0.5 + yy)
    frames = []
    for _ in range(math.ceil(n / (frame * frame))):
        scene_photons = ramp if scene == "ramp" else np.full((frame, frame),
                                                             float(rng.choice(LEVELS_PHOTONS)))
        frames.append(s.capture(scene_photons).ravel())
    dn = np.concatenate(frames)[:n] if frames else np.zeros(0, dtype=np.int64)
    shift = f"{'>>' if s.adc_bits >= design.input_bits else '<<'} {abs(s.adc_bits - design.input_bits)}"
    light = (f"{photons:g} photons/pixel mean (ramp)" if scene == "ramp" else
             f"flat frames at {', '.join(f'{p:g}' for p in LEVELS_PHOTONS)} photons/pixel")
    return (sensor_to_samples(dn, s.adc_bits, design.input_bits),
            f"sensor '{sensor}' ({s.adc_bits}-bit DN, {frame}x{frame} frames, seed {seed}), "
            f"{light}; sample = DN {shift}")


PHOTON_GRID = tuple(float(p) for p in np.round(np.geomspace(1.0, 1e5, 31), 2))


def covering_photons(design: Design, n: int, *, sensor: str = "phone", seed: int = 0,
                     frame: int = 64) -> tuple[float, int]:
    """Return the lowest light of :data:`PHOTON_GRID` (mean photons per pixel of the ``ramp``
    scene) whose ``n`` samples (as :func:`sensor_samples` renders them) exercise every code of
    the design's ladder, and the codes they exercise; when no light reaches them all, the light
    that exercises the most."""
    from adcforge.golden import code_coverage

    best = (PHOTON_GRID[0], 0)
    for photons in PHOTON_GRID:
        s, _ = sensor_samples(design, n, photons=photons, sensor=sensor, seed=seed, frame=frame)
        seen = code_coverage(design, s)["codes_seen"]
        if seen > best[1]:
            best = (photons, seen)
        if seen == design.levels:
            break
    return best


@dataclass
class TaskFrames:
    samples: np.ndarray  # [N, samples_per_inference] integer samples
    labels: np.ndarray  # [N]
    dataset: str
    photons: float


def why_no_task(design: Design) -> str | None:
    """Return why a design's task accuracy cannot be measured from its outputs, or None."""
    p = design.provenance or {}
    if design.mac is None:
        return "the design has no POST layer, so its outputs are codes, not class scores"
    if "dataset" not in p or "sensor" not in p:
        return "the design's provenance names no dataset and sensor"
    if p.get("network") != "linear":
        return (f"the design's POST layer feeds a host-side network ({p.get('network')!r}) that "
                "the design file does not carry")
    classes = p.get("classes")
    if classes is not None and len(classes) != design.mac.outputs:
        return "the POST layer's outputs are not one per class"
    return None


def task_frames(design: Design, photons: float | None = None,
                n: int | None = None) -> TaskFrames | None:
    """Render the design's test set through its sensor; ``None`` when :func:`why_no_task`."""
    if why_no_task(design) is not None:
        return None
    from . import load_sensor
    from .data import load_dataset

    p = design.provenance
    data_seed = p.get("data_seed", 0)
    size = tuple(p["data_size"]) if p.get("data_size") else None
    images, labels, _ = load_dataset(p["dataset"], split="test", seed=data_seed, size=size)
    if n is not None:
        images, labels = images[:n], labels[:n]
    h, w = images.shape[1:]
    if h * w * design.channels != design.mac.inputs:
        return None
    sensor_cfg = p["sensor"]
    sensor = load_sensor(sensor_cfg["preset"], seed=sensor_cfg.get("seed", 0), width=w,
                         height=h)
    if photons is None:
        trained = p.get("photons", 10.0)
        # A light range trained log-uniformly: score at its geometric centre.
        photons = float(np.sqrt(trained[0] * trained[1])) if isinstance(trained, list) else trained
    photons = float(photons)
    frames = np.stack([sensor.capture(img * photons) for img in images])
    samples = sensor_to_samples(frames, sensor.adc_bits, design.input_bits).reshape(len(images),
                                                                                    h * w)
    return TaskFrames(samples=samples, labels=np.asarray(labels), dataset=p["dataset"],
                      photons=photons)

"""The task a design was trained for, rebuilt from its provenance: test images rendered through
the same sensor, so that a board's outputs can be scored against the labels.

A design whose POST layer is the whole classifier (``network: linear`` in its provenance: one
inference per image, one output per class) is scored by ``argmax`` of the outputs, ties to the
lowest index, as ``learn`` does. Other designs need the host-side tail network, which the design
file does not carry: :func:`task_frames` then returns ``None`` and says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .design import Design


def sensor_to_samples(dn: np.ndarray, adc_bits: int, input_bits: int) -> np.ndarray:
    """Map the sensor's ``adc_bits`` DN to the ADC's ``input_bits`` sample word.

    The sample keeps the DN's most significant bits: ``dn >> (adc_bits - input_bits)`` when the
    sensor has more bits, ``dn << (input_bits - adc_bits)`` when it has fewer; then clipped to
    ``[0, 2**input_bits - 1]``.
    """
    dn = np.asarray(dn, dtype=np.int64)
    shift = adc_bits - input_bits
    x = dn >> shift if shift >= 0 else dn << -shift
    return np.clip(x, 0, 2**input_bits - 1)


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
    from sim import load_sensor
    from sim.data import load_dataset

    p = design.provenance
    data_seed = p.get("data_seed", 0)
    images, labels, _ = load_dataset(p["dataset"], split="test", seed=data_seed)
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


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of inferences whose ``argmax`` (lowest index among ties) is the label."""
    outputs = np.asarray(outputs).reshape(len(labels), -1)
    return float((np.argmax(outputs, axis=1) == np.asarray(labels)).mean())

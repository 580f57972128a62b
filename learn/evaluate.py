"""Re-measure a trained model through the golden model under other conditions (light level,
sensor parameters): the robustness experiments."""

from __future__ import annotations

import numpy as np
import torch

from .model import golden_outputs, predict
from .train import TrainResult, _generator


def golden_accuracy(result: TrainResult, photons=None, sensor_overrides: dict | None = None,
                    seed: int = 12345) -> float:
    """Accuracy of the exported design (golden model + host tail) on the test set captured at
    ``photons`` (default: the training light) by the sensor with ``sensor_overrides`` (e.g.
    ``{"read_noise_e": 5.0}``; same silicon seed). ``fp`` runs are scored with the float model."""
    task = result.task
    sensor = task.sensor
    if sensor_overrides:
        sensor = sensor.with_config(**sensor_overrides)
    ts = sensor.torch(task.device)
    g = _generator(task.device, seed, "robustness")
    images = torch.as_tensor(task.test_images, device=task.device)
    white = task.white(len(images), g, photons)
    dn = ts.capture(images * white, generator=g)
    model = result.model.eval()
    if result.design is None:
        with torch.no_grad():
            pred = predict(model(dn))
    else:
        x = dn.cpu().numpy().astype(np.int64)
        pred = predict(model.logits_from_outputs(result.design,
                                                 golden_outputs(result.design, x, model.kernel)))
    return float((pred == task.test_labels).mean())

"""sim: a photon-accurate image-sensor model in EMVA 1288 terms (numpy and torch backends).

    >>> from sim import load_sensor
    >>> sensor = load_sensor("phone", width=8, height=8)
    >>> frame = sensor.capture(100.0)          # uint16 DN, (8, 8)
    >>> ts = sensor.torch("cpu")               # batched torch backend, same fixed patterns

See docs/sim.md for the model, the YAML keys and the presets.
"""

from .config import KEYS, SensorConfig, validate
from .illumination import lux_from_photons, photons_from_lux
from .sensor import Sensor, list_presets, load_sensor
from .stages import STAGES

__all__ = [
    "KEYS",
    "STAGES",
    "Sensor",
    "SensorConfig",
    "list_presets",
    "load_sensor",
    "lux_from_photons",
    "photons_from_lux",
    "validate",
]

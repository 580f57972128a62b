"""The batched torch backend of the sensor model (CPU or CUDA), for training.

:class:`TorchSensor` runs the stages of :mod:`sim.stages` in the same order, on float32 tensors of
shape ``[..., height, width]``, with the fixed-pattern maps of the numpy :class:`~sim.Sensor` it
was made from, and temporal noise from a :class:`torch.Generator`.
"""

from __future__ import annotations

import torch

from .config import ConfigGeometry
from .poisson_torch import poisson_torch


class TorchSensor(ConfigGeometry):
    """Torch view of a :class:`~sim.Sensor`: same configuration, same fixed patterns.

    ``capture(photons, generator=None)`` takes mean photons per pixel ``[..., height, width]``
    and returns float32 DN (integer values ``0..max_dn``) of the same shape. Without a generator
    it uses its own, seeded from the sensor's seed (never the global one).
    """

    def __init__(self, sensor, device="cpu"):
        c = sensor.config
        self.sensor = sensor
        self.config = c
        self.device = torch.device(device)
        f32 = dict(dtype=torch.float32, device=self.device)
        self.response_map = torch.as_tensor(sensor.response_map, **f32)
        self.dark_map = torch.as_tensor(sensor.dark_map, **f32)
        self.dsnu_map = torch.as_tensor(sensor.dsnu_map, **f32)
        self.row_offsets = (None if sensor.row_offsets is None
                            else torch.as_tensor(sensor.row_offsets, **f32))
        self.column_offsets = (None if sensor.column_offsets is None
                               else torch.as_tensor(sensor.column_offsets, **f32))
        self.thresholds = (None if sensor.thresholds is None
                           else torch.as_tensor(sensor.thresholds, **f32).contiguous())
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(sensor.seed + 0x5EED)
        self._uniform_dark = bool(torch.all(self.dark_map == self.dark_map.flatten()[0]))

    def mean_electrons(self, photons: torch.Tensor, exposure_s: float | None = None):
        """Return mean electrons per pixel (photo-electrons with PRNU, plus dark), float32."""
        t = self.config.exposure_s if exposure_s is None else float(exposure_s)
        photons = torch.as_tensor(photons, dtype=torch.float32, device=self.device)
        if photons.shape[-2:] != (self.height, self.width):
            raise ValueError(f"photons must be shaped [..., {self.height}, {self.width}]; got "
                             f"{tuple(photons.shape)}")
        if self._uniform_dark:
            return photons * self.response_map + float(self.dark_map.flatten()[0]) * t
        return torch.addcmul(self.dark_map * t, photons, self.response_map)

    @torch.no_grad()
    def capture(self, photons: torch.Tensor, generator: torch.Generator | None = None,
                exposure_s: float | None = None) -> torch.Tensor:
        """Capture frames: mean photons ``[..., H, W]`` → DN float32 (integers 0..max_dn)."""
        c = self.config
        g = self.generator if generator is None else generator
        mean = self.mean_electrons(photons, exposure_s)
        e = poisson_torch(mean, g, c.poisson_gaussian_above_e)
        e = e.add_(self.dsnu_map).clamp_(max=c.full_well_e)
        if c.read_noise_e > 0:
            noise = torch.randn(e.shape, generator=g, device=e.device, dtype=e.dtype)
            e.add_(noise, alpha=c.read_noise_e)
        if self.row_offsets is not None:
            e.add_(self.row_offsets)
        if self.column_offsets is not None:
            e.add_(self.column_offsets)
        dn = e.mul_(c.conversion_gain_dn_per_e)
        if c.gain_nonlinearity_percent > 0:
            beta = c.gain_nonlinearity_percent / 100.0
            dn = dn * (1.0 - beta * dn.clamp(min=0.0) / c.max_dn)
        dn = dn.add_(c.black_level_dn)
        if self.thresholds is None:
            return dn.round_().clamp_(0, c.max_dn)
        return torch.searchsorted(self.thresholds, dn.contiguous(), right=True).to(torch.float32)

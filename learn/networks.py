"""Host-side task networks that follow the POST layer (float, trained jointly).

``cnn3`` (:class:`PooledTail`): after the hardware's 3×3 POST convolution, ReLU and 2×2 max
pooling, then two 3×3 convolution stages (padding 1, BatchNorm, ReLU; the first followed by 2×2
max pooling), global mean and max pooling and a linear classifier. With 16 POST channels and
32/32 host channels it is the default for images larger than 8×8.
"""

from __future__ import annotations

import torch
from torch import nn


def _init_uniform(m: nn.Module, generator: torch.Generator | None) -> None:
    with torch.no_grad():
        bound = 1.0 / float(m.weight[0].numel()) ** 0.5
        m.weight.copy_((torch.rand(m.weight.shape, generator=generator) * 2 - 1) * bound)
        m.bias.zero_()


class PooledTail(nn.Module):
    """``[N, in_channels, H, W]`` POST outputs → logits ``[N, classes]``: ReLU, max pool 2,
    conv 3×3 → ``hidden``, BN, ReLU, max pool 2 (when the map is at least 2×2), conv 3×3 →
    ``hidden``, BN, ReLU, global mean ‖ max, linear. Seeded by ``generator``."""

    def __init__(self, in_channels: int, hidden: int, classes: int,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.lin = nn.Linear(2 * hidden, classes)
        for m in (self.conv1, self.conv2, self.lin):
            _init_uniform(m, generator)

    @staticmethod
    def _pool(h: torch.Tensor) -> torch.Tensor:
        return nn.functional.max_pool2d(h, 2) if min(h.shape[-2:]) >= 2 else h

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        h = self._pool(torch.relu(y))
        h = self._pool(torch.relu(self.bn1(self.conv1(h))))
        h = torch.relu(self.bn2(self.conv2(h)))
        return self.lin(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1))

"""A third-party colorgan plugin, as a plugin author would write it (see the README)."""

import torch
from torch import nn

from colorgan.registry import GENERATORS


@GENERATORS.register("demo-gen")
class DemoGenerator(nn.Module):
    """A one-layer generator that only exists to prove plugins work."""

    size_multiple = 1

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(in_channels + cond_dim, out_channels, 3, padding=1)
        self.width = width

    def check_size(self, size: int) -> None:
        pass

    def forward(self, sketch, cond):
        maps = cond[:, :, None, None].expand(-1, -1, *sketch.shape[-2:])
        return torch.tanh(self.conv(torch.cat([sketch, maps], 1)))

"""Small building blocks shared by generators and discriminators."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from colorgan.registry.instance_norm import InstanceNorm2d

NORMS = ("batch", "instance", "group", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """The normalisation a component's `norm` option names, for `channels` feature maps."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return InstanceNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(32, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm: expected one of {', '.join(NORMS)}, got {kind!r}")


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """pix2pix initialisation: conv weights ~ N(0, std), norm scales ~ N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # Spectral norm (a parametrization) keeps the raw weight under `original`.
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            nn.init.normal_(weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def condition_maps(cond: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Broadcast a (B, D) condition vector to (B, D, H, W) maps, as the seed concatenates them."""
    return cond[:, :, None, None].expand(-1, -1, height, width)

"""`projection`: projection discriminator (Miyato & Koyama 2018), condition by inner product."""

from __future__ import annotations

import torch
from torch import nn

from colorgan.registry import DISCRIMINATORS
from colorgan.registry.discriminators.patchgan import (
    check_int,
    check_trunk_options,
    finish,
    min_size,
    pad_to,
    patch_trunk,
)


@DISCRIMINATORS.register("projection")
class ProjectionDiscriminator(nn.Module):
    """Projection discriminator: PatchGAN trunk on (image, sketch), condition by inner product.

    logits[b, 0, y, x] = w . f(y, x) + c + <f(y, x), V cond[b]>, where f is the trunk's feature
    map over concat(image, sketch) (no condition maps), w a 1x1 conv and V = nn.Linear(cond_dim,
    C, bias=False) the learned projection of the condition vector.

    Options:
      layers (int, default 3), base_channels (int, default 64), max_channels (int, default 512):
        the trunk, as in `patchgan` (C = min(base_channels * 2**layers, max_channels)).
      norm (spectral | batch | instance | group | none, default spectral): spectral = spectral
        norm on every conv and on the projection, no norm layer.

    Returns a (B, 1, h, w) logit map (inputs below 3 * 2**layers px are zero-padded up to it).
    """

    def __init__(
        self,
        image_channels: int,
        sketch_channels: int,
        cond_dim: int,
        layers: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        norm: str = "spectral",
    ) -> None:
        super().__init__()
        check_trunk_options(layers, base_channels, max_channels, norm)
        self.cond_dim = check_int(cond_dim, "cond_dim", 0)
        self.layers = layers
        mods, channels = patch_trunk(image_channels + sketch_channels, layers, base_channels, max_channels, norm)
        self.trunk = nn.Sequential(*mods)
        self.linear = nn.Conv2d(channels, 1, 1)
        self.projection = nn.Linear(cond_dim, channels, bias=False) if cond_dim > 0 else None
        finish(self, norm)

    def forward(self, image: torch.Tensor, sketch: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        features = self.trunk(pad_to(torch.cat([image, sketch], dim=1), min_size(self.layers)))
        logits = self.linear(features)
        if self.projection is None:
            return logits
        if cond is None or cond.dim() != 2 or cond.shape[1] != self.cond_dim:
            got = None if cond is None else tuple(cond.shape)
            raise ValueError(f"cond: expected shape (B, {self.cond_dim}), got {got}")
        embedded = self.projection(cond.to(features.dtype))  # (B, C)
        return logits + (features * embedded[:, :, None, None]).sum(dim=1, keepdim=True)

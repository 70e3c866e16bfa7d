"""`multiscale`: pix2pixHD's multi-scale discriminator, PatchGANs on an image pyramid."""

from __future__ import annotations

import torch
from torch import nn

from colorgan.registry import DISCRIMINATORS
from colorgan.registry.discriminators.patchgan import PatchGAN, check_int


@DISCRIMINATORS.register("multiscale")
class MultiScaleDiscriminator(nn.Module):
    """pix2pixHD multi-scale discriminator: `scales` PatchGANs, input halved between scales.

    Options:
      scales (int, default 3): number of PatchGANs; scale k sees image and sketch average-pooled
        k times (AvgPool 3x3, stride 2, padding 1, count_include_pad=False).
      layers, base_channels, max_channels, norm: passed to every PatchGAN (see `patchgan`).

    Returns a list of (B, 1, h_k, w_k) logit maps, finest scale first; the GAN losses average
    over the list.
    """

    def __init__(
        self,
        image_channels: int,
        sketch_channels: int,
        cond_dim: int,
        scales: int = 3,
        layers: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_int(scales, "scales")
        self.discriminators = nn.ModuleList(
            PatchGAN(image_channels, sketch_channels, cond_dim, layers, base_channels, max_channels, norm)
            for _ in range(scales)
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, image: torch.Tensor, sketch: torch.Tensor, cond: torch.Tensor | None) -> list[torch.Tensor]:
        outputs = []
        for k, discriminator in enumerate(self.discriminators):
            if k:
                image, sketch = self.downsample(image), self.downsample(sketch)
            outputs.append(discriminator(image, sketch, cond))
        return outputs

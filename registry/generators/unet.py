"""The pix2pix U-Net (Isola et al. 2017), with the depth, widths, norm and conditioning as options."""

from __future__ import annotations

import torch
from torch import nn

from colorgan.registry import GENERATORS
from colorgan.registry.generators.common import (
    GeneratorBase,
    check_positive_int,
    check_probability,
    modulation,
)
from colorgan.registry.layers import init_weights, norm_layer

DROPOUT_LEVELS = 3  # pix2pix: dropout in the three decoder blocks just outside the innermost one


class _Up(nn.Module):
    """One decoder level: ReLU, 4x4 stride-2 transposed conv, norm, FiLM or SpatialFiLM, dropout."""

    def __init__(self, cin: int, cout: int, norm: str, dropout: float, film: nn.Module | None) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=norm == "none")
        self.norm = norm_layer(norm, cout)
        self.film = film
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None, sketch: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(torch.relu(x)))
        if self.film is not None:
            x = self.film(x, cond, sketch)
        return self.dropout(x)


@GENERATORS.register("unet")
class UNet(GeneratorBase):
    """pix2pix U-Net: stride-2 conv encoder, mirrored transposed-conv decoder, skip connections.

    The seed's network is `depth: 8, base_channels: 64, max_channels: 512` at 256 px: pix2pix's
    `unet_256` with the condition maps concatenated to the sketch (layer for layer the same shapes).

    Options:
      depth (int, 8): stride-2 downsamplings; image sizes must be multiples of 2**depth.
      base_channels (int, 64): channels of the first level; level i has min(base * 2**i, max).
      max_channels (int, 512): channel cap.
      norm (batch|instance|group|none, batch): normalisation; as in pix2pix the first encoder
        conv and the innermost (bottleneck) conv have none.
      dropout (float, 0.5): dropout in the three decoder blocks just outside the innermost one
        (where pix2pix puts it; the noise source of pix2pix). 0 turns it off.
      condition (concat|film|spade, concat): concat the condition maps to the sketch at the input,
        or modulate every decoder level (x * (1 + gamma) + beta) with FiLM (per channel) or
        SpatialFiLM (per pixel, from the sketch and the condition: SPADE-style).
      fill (none|regions|auto, none): `regions`: in eval mode every closed region of the sketch takes
        one colour, the median of the network's output there (flat-coloured art; region_fill);
        `auto`: training chooses from its training set whether its art suits that.
      test_flip (bool, false): in eval mode, average the output with that of the mirrored sketch
        (mirrored back): test-time augmentation for a model trained with `data.augment.hflip`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cond_dim: int,
        depth: int = 8,
        base_channels: int = 64,
        max_channels: int = 512,
        norm: str = "batch",
        dropout: float = 0.5,
        condition: str = "concat",
        fill: str = "none",
        test_flip: bool = False,
    ) -> None:
        super().__init__(condition, fill, test_flip)
        self.in_channels, self.out_channels, self.cond_dim = in_channels, out_channels, cond_dim
        self.depth = check_positive_int("depth", depth)
        check_positive_int("base_channels", base_channels)
        check_positive_int("max_channels", max_channels)
        dropout = check_probability("dropout", dropout)
        self.size_multiple = self.min_size = 2**depth

        chans = [min(base_channels * 2**i, max_channels) for i in range(depth)]
        first = in_channels + (cond_dim if condition == "concat" else 0)
        self.down = nn.ModuleList()
        for i in range(depth):
            normed = 0 < i < depth - 1
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(
                nn.Conv2d(first if i == 0 else chans[i - 1], chans[i], 4, 2, 1, bias=not normed or norm == "none")
            )
            if normed:
                layers.append(norm_layer(norm, chans[i]))
            self.down.append(nn.Sequential(*layers))

        # up[i] undoes down[i]: it takes level i's output (concatenated with the level below's
        # decoder output, except at the innermost) and gives level i-1's channels.
        self.up = nn.ModuleList()
        for i in range(1, depth):
            cin = chans[i] if i == depth - 1 else 2 * chans[i]
            drop = dropout if depth - 1 - DROPOUT_LEVELS <= i < depth - 1 else 0.0
            self.up.append(_Up(cin, chans[i - 1], norm, drop, modulation(condition, cond_dim, in_channels, chans[i - 1], 2**i)))
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(chans[0] if depth == 1 else 2 * chans[0], out_channels, 4, 2, 1),
            nn.Tanh(),
        )
        init_weights(self)

    def describe(self) -> str:
        return f"unet depth {self.depth}"

    def draw(self, sketch: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x, cond = self._inputs(sketch, cond)
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        for i in range(self.depth - 1, 0, -1):  # up[i - 1] is level i
            if i < self.depth - 1:
                x = torch.cat([skips[i], x], dim=1)
            x = self.up[i - 1](x, cond, sketch)
        if self.depth > 1:
            x = torch.cat([skips[0], x], dim=1)
        return self.head(x)

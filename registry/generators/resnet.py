"""The pix2pix / CycleGAN ResNet generator (Johnson et al. 2016), `resnet_6blocks` / `resnet_9blocks`."""

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


class _ResBlock(nn.Module):
    """x + (pad, conv3x3, norm, ReLU, [dropout], pad, conv3x3, norm)(x), reflection padding."""

    def __init__(self, channels: int, norm: str, dropout: float) -> None:
        super().__init__()
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@GENERATORS.register("resnet")
class ResnetGenerator(GeneratorBase):
    """pix2pix/CycleGAN ResNet generator: 7x7 stem, 2 downsamples, residual blocks, 2 upsamples.

    pix2pix's `resnet_9blocks` (blocks: 9) and `resnet_6blocks` (blocks: 6). Image sizes must be
    multiples of 4, at least 8.

    Options:
      blocks (int, 9): residual blocks at 1/4 resolution (pix2pix uses 6 or 9).
      base_channels (int, 64): stem channels; the blocks run at 4 * base_channels.
      norm (batch|instance|group|none, instance): normalisation after every conv but the head.
      dropout (float, 0.0): dropout inside each residual block.
      condition (concat|film|spade, concat): concat the condition maps to the sketch at the input,
        or modulate each residual block's output and each upsampling level with FiLM (per
        channel) or SpatialFiLM (per pixel, from the sketch and the condition: SPADE-style).
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
        blocks: int = 9,
        base_channels: int = 64,
        norm: str = "instance",
        dropout: float = 0.0,
        condition: str = "concat",
        fill: str = "none",
        test_flip: bool = False,
    ) -> None:
        super().__init__(condition, fill, test_flip)
        self.in_channels, self.out_channels, self.cond_dim = in_channels, out_channels, cond_dim
        self.blocks = check_positive_int("blocks", blocks)
        check_positive_int("base_channels", base_channels)
        dropout = check_probability("dropout", dropout)
        self.size_multiple, self.min_size = 4, 8  # reflection padding needs the 1/4 maps >= 2x2
        bias = norm == "none"
        c = base_channels
        first = in_channels + (cond_dim if condition == "concat" else 0)

        self.stem = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(first, c, 7, bias=bias), norm_layer(norm, c), nn.ReLU()
        )
        self.down = nn.Sequential(
            nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), norm_layer(norm, 2 * c), nn.ReLU(),
            nn.Conv2d(2 * c, 4 * c, 3, 2, 1, bias=bias), norm_layer(norm, 4 * c), nn.ReLU(),
        )  # fmt: skip
        self.res = nn.ModuleList(_ResBlock(4 * c, norm, dropout) for _ in range(blocks))
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(m, m // 2, 3, 2, 1, output_padding=1, bias=bias), norm_layer(norm, m // 2))
            for m in (4 * c, 2 * c)
        )
        res_film = [modulation(condition, cond_dim, in_channels, 4 * c, 4) for _ in range(blocks)]
        up_film = [modulation(condition, cond_dim, in_channels, m // 2, scale) for m, scale in ((4 * c, 2), (2 * c, 1))]
        self.res_film = nn.ModuleList(res_film) if res_film[0] is not None else None
        self.up_film = nn.ModuleList(up_film) if up_film[0] is not None else None
        self.head = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(c, out_channels, 7), nn.Tanh())
        init_weights(self)

    def describe(self) -> str:
        return f"resnet ({self.blocks} blocks)"

    def draw(self, sketch: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x, cond = self._inputs(sketch, cond)
        x = self.down(self.stem(x))
        for i, block in enumerate(self.res):
            x = block(x)
            if self.res_film is not None:
                x = self.res_film[i](x, cond, sketch)
        for i, up in enumerate(self.up):
            x = up(x)
            if self.up_film is not None:
                x = self.up_film[i](x, cond, sketch)
            x = torch.relu(x)
        return self.head(x)

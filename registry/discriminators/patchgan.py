"""`patchgan`: pix2pix's 70x70 PatchGAN over image, sketch and condition maps (the seed's D).

Also the conv trunk and option checks that `multiscale` and `projection` build on.
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from colorgan.registry import DISCRIMINATORS
from colorgan.registry.layers import NORMS, condition_maps, init_weights, norm_layer

D_NORMS = NORMS + ("spectral",)


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_trunk_options(layers: Any, base_channels: Any, max_channels: Any, norm: Any) -> None:
    """ValueError for a bad `layers` / `base_channels` / `max_channels` / `norm` option."""
    check_int(layers, "layers")
    check_int(base_channels, "base_channels")
    check_int(max_channels, "max_channels")
    if max_channels < base_channels:
        raise ValueError(f"max_channels ({max_channels}) must be >= base_channels ({base_channels})")
    if norm not in D_NORMS:
        raise ValueError(f"norm: expected one of {', '.join(D_NORMS)}, got {norm!r}")


def patch_trunk(in_channels: int, layers: int, base_channels: int, max_channels: int, norm: str) -> tuple[list[nn.Module], int]:
    """pix2pix NLayerDiscriminator without its last conv: modules and their output channels.

    `layers` 4x4 stride-2 convs (no norm on the first), then one 4x4 stride-1 conv, each followed
    by LeakyReLU(0.2); padding 1 everywhere; widths base * 2**n capped at max_channels. Convs
    followed by a batch/instance/group norm have no bias (the norm's shift replaces it).
    """
    def width(n: int) -> int:
        return min(base_channels * 2**n, max_channels)

    has_norm = norm in NORMS and norm != "none"
    mods: list[nn.Module] = [
        nn.Conv2d(in_channels, width(0), 4, stride=2, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    for n in range(1, layers + 1):
        stride = 2 if n < layers else 1
        mods.append(nn.Conv2d(width(n - 1), width(n), 4, stride=stride, padding=1, bias=not has_norm))
        if has_norm:
            mods.append(norm_layer(norm, width(n)))
        mods.append(nn.LeakyReLU(0.2, inplace=True))
    return mods, width(layers)


def finish(module: nn.Module, norm: str) -> nn.Module:
    """pix2pix init N(0, 0.02), then spectral norm on every conv / linear when norm == spectral.

    Spectral norm goes on after the init: its parametrization reads the initialised weight.
    """
    init_weights(module)
    if norm == "spectral":
        for m in list(module.modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                spectral_norm(m)
    return module


def min_size(layers: int) -> int:
    """Smallest input side for which the trunk plus a 4x4 stride-1 conv still give a 1x1 map."""
    return 3 * 2**layers


def pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (centred) an input smaller than `size` on a side, so tiny scales still give a map."""
    h, w = x.shape[-2:]
    dh, dw = max(0, size - h), max(0, size - w)
    if dh == 0 and dw == 0:
        return x
    return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))


def with_condition(x: torch.Tensor, cond: torch.Tensor | None, cond_dim: int) -> torch.Tensor:
    """concat(x, condition maps), checking that cond is (B, cond_dim)."""
    if cond_dim == 0:
        return x
    if cond is None or cond.dim() != 2 or cond.shape[1] != cond_dim:
        got = None if cond is None else tuple(cond.shape)
        raise ValueError(f"cond: expected shape (B, {cond_dim}), got {got}")
    return torch.cat([x, condition_maps(cond.to(x.dtype), x.shape[-2], x.shape[-1])], dim=1)


@DISCRIMINATORS.register("patchgan")
class PatchGAN(nn.Module):
    """pix2pix 70x70 PatchGAN over concat(image, sketch, condition maps) (the seed's discriminator).

    Options:
      layers (int, default 3): stride-2 convs; 3 gives the 70x70 receptive field.
      base_channels (int, default 64): width of the first conv, doubled per layer.
      max_channels (int, default 512): cap on the width.
      norm (batch | instance | group | none | spectral, default batch): norm after every conv but
        the first and last; spectral = spectral norm on every conv and no norm layer.

    Returns a (B, 1, h, w) logit map. Inputs smaller than 3 * 2**layers px are zero-padded up to it,
    so the map is always at least 1x1.
    """

    def __init__(
        self,
        image_channels: int,
        sketch_channels: int,
        cond_dim: int,
        layers: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_trunk_options(layers, base_channels, max_channels, norm)
        self.cond_dim = check_int(cond_dim, "cond_dim", 0)
        self.layers = layers
        in_channels = image_channels + sketch_channels + cond_dim
        mods, channels = patch_trunk(in_channels, layers, base_channels, max_channels, norm)
        mods.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*mods)
        finish(self, norm)

    def forward(self, image: torch.Tensor, sketch: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        x = with_condition(torch.cat([image, sketch], dim=1), cond, self.cond_dim)
        return self.model(pad_to(x, min_size(self.layers)))

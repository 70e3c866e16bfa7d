"""What every built-in generator shares: input checks, image-size checks, conditioning.

A generator takes `(sketch, cond)` and says which image sizes it can take (`size_multiple`,
`check_size`). The condition enters in one of three ways (the `condition` option):

- `concat`: the (B, cond_dim) vector is broadcast to maps and concatenated to the sketch at the
  input, as the seed does;
- `film`: every decoder level is modulated, `x * (1 + gamma) + beta`, with `(gamma, beta)` from a
  per-level `Linear(cond_dim -> 2 * channels)` (feature-wise linear modulation, Perez et al. 2018):
  one scale and shift per channel, the same at every pixel;
- `spade`: the same modulation with `(gamma, beta)` maps, computed at every level from the sketch
  (pooled to the level's size) and the condition (SPADE, Park et al. 2019, with the sketch as its
  layout): what the condition does can differ from one part of the drawing to another.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from colorgan.errors import ColorganError
from colorgan.registry.generators.region_fill import FILL_MODES, fill_regions, sketch_regions
from colorgan.registry.layers import condition_maps

CONDITION_MODES = ("concat", "film", "spade")
SPADE_HIDDEN = 32  # channels of the layer that reads the sketch and the condition, at every level


class GeneratorOptionError(ColorganError, ValueError):
    """A generator option or an image size the network cannot take (a `ValueError` too)."""


def check_choice(name: str, value: object, choices: tuple) -> object:
    """`value` if it is one of `choices` (`condition`, `fill`, `test_flip`), else a one-line error."""
    if isinstance(value, bool) != isinstance(choices[0], bool) or value not in choices:
        shown = ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)
        raise GeneratorOptionError(f"{name}: expected one of {shown}, got {value!r}")
    return value


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GeneratorOptionError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def check_probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise GeneratorOptionError(f"{name}: expected a number in [0, 1), got {value!r}")
    return float(value)


def sizes_that_fit(size: int, multiple: int, minimum: int) -> list[int]:
    """The nearest sizes at or above `minimum` that are multiples of `multiple` (one or two)."""
    below = (size // multiple) * multiple
    if below < minimum:
        return [minimum]
    if below == size:  # it fits the multiple, so it was too small; `minimum` is the answer
        return [minimum]
    return [below, below + multiple]


def size_problem(size: int, multiple: int, minimum: int, network: str) -> str | None:
    """Why image `size` does not fit `network` (naming the nearest sizes that do), or None.

    Pure arithmetic, so recipe validation asks it without building the generator.
    """
    if size % multiple == 0 and size >= minimum:
        return None
    fits = " or ".join(str(s) for s in sizes_that_fit(size, multiple, minimum))
    least = f" of at least {minimum}" if minimum > multiple else ""
    return f"image size {size} does not fit {network}: use a multiple of {multiple}{least}, e.g. {fits}"


class FiLM(nn.Module):
    """Feature-wise linear modulation: `x * (1 + gamma) + beta`, `(gamma, beta) = Linear(cond)`.

    With pix2pix initialisation (weights N(0, 0.02), bias 0) it starts close to the identity.
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, sketch: torch.Tensor | None = None) -> torch.Tensor:
        """`sketch` is accepted so every modulation is called alike; FiLM does not read it."""
        gamma, beta = self.linear(cond)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


class SpatialFiLM(nn.Module):
    """SPADE-style modulation: `x * (1 + gamma) + beta` with `(gamma, beta)` maps from the sketch
    averaged down to `x`'s size (`scale`: the level's reduction, a fixed pool that ONNX exports)
    and the condition maps, through conv3x3 -> ReLU -> conv3x3.

    FiLM gives a decoder level one scale and shift per channel for the whole picture, so the
    network must itself route "skin is medium-dark" to the pixels that are skin. Here the scale and
    shift are drawn from the sketch's layout at each level. On the Twemoji set's unseen characters
    it learns faster than FiLM (skin accuracy and PSNR after 18 epochs), but ends the 10 minutes
    with no more accuracy (README, Benchmarks). Starts close to the identity (pix2pix initialisation, as FiLM).
    """

    def __init__(self, cond_dim: int, sketch_channels: int, channels: int, scale: int,
                 hidden: int = SPADE_HIDDEN) -> None:
        super().__init__()
        self.scale = scale
        self.shared = nn.Sequential(nn.Conv2d(sketch_channels + cond_dim, hidden, 3, 1, 1), nn.ReLU())
        self.maps = nn.Conv2d(hidden, 2 * channels, 3, 1, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, sketch: torch.Tensor) -> torch.Tensor:
        if self.scale > 1:
            sketch = F.avg_pool2d(sketch, self.scale)
        layout = torch.cat([sketch, condition_maps(cond, *sketch.shape[-2:])], dim=1)
        gamma, beta = self.maps(self.shared(layout)).chunk(2, dim=1)
        return x * (1 + gamma) + beta


def modulation(condition: str, cond_dim: int, sketch_channels: int, channels: int, scale: int) -> nn.Module | None:
    """The module that conditions a level of `channels`, `scale` times smaller than the sketch,
    under the `condition` option: FiLM, SpatialFiLM, or None (`concat`, or no conditions)."""
    if not cond_dim or condition == "concat":
        return None
    if condition == "spade":
        return SpatialFiLM(cond_dim, sketch_channels, channels, scale)
    return FiLM(cond_dim, channels)


class GeneratorBase(nn.Module):
    """Input and size checks, and the eval-mode options every built-in generator shares (`fill`,
    `test_flip`, checked in `__init__`); subclasses implement `draw` and set the attributes below."""

    in_channels: int
    cond_dim: int
    condition: str
    fill: str
    test_flip: bool
    size_multiple: int = 1
    min_size: int = 1

    def __init__(self, condition: str = "concat", fill: str = "none", test_flip: bool = False) -> None:
        """Check and keep the options every built-in generator takes (a plugin may pass none)."""
        super().__init__()
        self.condition = check_choice("condition", condition, CONDITION_MODES)
        self.fill = check_choice("fill", fill, FILL_MODES)
        self.test_flip = check_choice("test_flip", test_flip, (False, True))

    def describe(self) -> str:
        """How the size errors name this network, e.g. 'unet depth 6'."""
        return type(self).__name__

    def check_size(self, size: int) -> None:
        """Raise `ValueError` naming the nearest sizes that work when `size` does not."""
        problem = size_problem(size, self.size_multiple, self.min_size, self.describe())
        if problem:
            raise GeneratorOptionError(problem)

    def draw(self, sketch: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The network itself: `(sketch, cond)` -> image in [-1, 1]. Subclasses implement it."""
        raise NotImplementedError

    def forward(self, sketch: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """`draw`, then in eval mode the options that act on what it drew (`test_flip`, `fill`).

        Training sees the raw drawing: the fill was measured to teach less when trained through
        (see region_fill), and mirroring in training is `data.augment.hflip`'s work.
        """
        image = self.draw(sketch, cond)
        if self.training:
            return image
        if self.test_flip:
            image = (image + self.draw(sketch.flip(-1), cond).flip(-1)) / 2
        if self.fill == "regions":
            image = fill_regions(image, sketch_regions(sketch))
        elif self.fill == "auto":
            raise GeneratorOptionError("fill: auto is decided by training from its training set "
                                       "(colorgan.build.resolve_fill); set none or regions to use an untrained generator")
        return image

    def _inputs(self, sketch: torch.Tensor, cond: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Check shapes (Python ints only, no device sync); return (network input, cond or None).

        With `concat` the network input is the sketch with the condition maps appended.
        """
        if sketch.dim() != 4 or sketch.shape[1] != self.in_channels:
            raise GeneratorOptionError(
                f"sketch: expected shape (B, {self.in_channels}, H, W), got {tuple(sketch.shape)}"
            )
        height, width = sketch.shape[-2], sketch.shape[-1]
        self.check_size(height)
        if width != height:
            self.check_size(width)
        if self.cond_dim == 0:
            return sketch, None
        if cond is None or cond.dim() != 2 or cond.shape[1] != self.cond_dim or cond.shape[0] != sketch.shape[0]:
            got = None if cond is None else tuple(cond.shape)
            raise GeneratorOptionError(
                f"cond: expected shape ({sketch.shape[0]}, {self.cond_dim}), got {got}"
            )
        cond = cond.to(sketch.dtype)
        if self.condition == "concat":
            return torch.cat([sketch, condition_maps(cond, height, width)], dim=1), cond
        return sketch, cond

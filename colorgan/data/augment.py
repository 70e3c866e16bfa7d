"""Training-time augmentation that keeps every condition true, on a batch already on the device.

A character mirrored, moved or rescaled a little keeps its colours, and a sketch drawn with
thicker lines is the same character. So these show a generator more shapes of character without
ever pairing a sketch with colours its conditions do not ask for, which is what generalising to
characters it has never seen needs (issue 11). Sketch and target move together; only the sketch's
line weight changes alone.

Every draw comes from the device's RNG, which checkpoints save, so a resumed run stays exact.
Moved and rescaled images take their edge pixels where they uncover the canvas (icons have a
plain background there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from colorgan.recipe import Augment


def _mirror(sketch: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mirror = (torch.rand(len(sketch), device=sketch.device) < 0.5)[:, None, None, None]
    return torch.where(mirror, sketch.flip(-1), sketch), torch.where(mirror, target.flip(-1), target)


def _move(sketch: torch.Tensor, target: torch.Tensor, scale: float, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One random zoom and translation per image, the same for its sketch and its target."""
    n, device = len(sketch), sketch.device
    zoom = 1.0 + scale * (2 * torch.rand(n, device=device) - 1)
    offset = shift * 2 * (2 * torch.rand(n, 2, device=device) - 1)  # the grid spans [-1, 1]: 2 per size
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
    theta[:, :, 2] = offset
    grid = F.affine_grid(theta, list(sketch.shape), align_corners=False)

    def warp(images: torch.Tensor) -> torch.Tensor:
        return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)

    return warp(sketch), warp(target)


def _thicken(sketch: torch.Tensor, most: int) -> torch.Tensor:
    """Each sketch's dark lines grown by 0..`most` pixels (a min-filter, 3 x 3 per pixel)."""
    grow = torch.randint(0, most + 1, (len(sketch),), device=sketch.device)[:, None, None, None]
    out, grown = sketch, sketch
    for px in range(1, most + 1):
        grown = -F.max_pool2d(-grown, 3, stride=1, padding=1)
        out = torch.where(grow >= px, grown, out)
    return out


def augment(sketch: torch.Tensor, target: torch.Tensor, cfg: Augment) -> tuple[torch.Tensor, torch.Tensor]:
    """A float batch (B, C, H, W) in [-1, 1] changed as the recipe's `data.augment` asks."""
    if cfg.hflip:
        sketch, target = _mirror(sketch, target)
    if cfg.scale or cfg.shift:
        sketch, target = _move(sketch, target, cfg.scale, cfg.shift)
    if cfg.line_weight:
        sketch = _thicken(sketch, cfg.line_weight)
    return sketch, target

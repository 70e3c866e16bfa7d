"""Training-time augmentation that keeps every condition true, on a batch already on the device.

A mirrored character keeps its colours, and so does a character gently bent (`warp`) or turned
(`rotate`): they show a generator new shapes of character without ever pairing a sketch with
colours its conditions do not ask for. Sketch, target and the condition regions change together.

`warp` is an elastic deformation (Simard et al. 2003; the U-Net paper's augmentation for small
data): random displacements at a 5 x 5 grid of control points (standard deviation `warp` pixels),
interpolated bicubically into a smooth field, on half the pairs. It bends a character's hair, face
and clothes while keeping it where and as large as the set draws it, which matters on Twemoji,
whose characters are always centred at one size: moving and rescaling whole pairs (with line-weight
jitter of the sketch) lost on its unseen characters and is not offered (README, Benchmarks).
`rotate` turns the same half about the image centre by a uniform angle of up to that many degrees
either way (it too keeps the character centred and its size).

Every draw comes from the device's RNG, which checkpoints save, so a resumed run stays exact. The
grid is built for every row and used where a row was drawn to change: picking the rows out first
would need their number on the host, a wait for the device at every step (and no CUDA graph).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from colorgan.recipe import Augment

WARP_CONTROL_POINTS = 5  # per side: displacements vary over about a fifth of the image
WARPED_SHARE = 0.5  # of the pairs; the others are seen as drawn


def augment(images: dict[str, torch.Tensor], cfg: Augment) -> dict[str, torch.Tensor]:
    """Float batches (B, C, H, W) of the same rows (sketch, target, condition regions), changed
    alike as the recipe's `data.augment` asks."""
    first = next(iter(images.values()))
    if cfg.hflip:
        mirror = (torch.rand(len(first), device=first.device) < 0.5)[:, None, None, None]
        images = {k: torch.where(mirror, x.flip(-1), x) for k, x in images.items()}
    if cfg.warp > 0 or cfg.rotate > 0:
        grid = warp_grid(first, cfg.warp, cfg.rotate)
        bent = (torch.rand(len(first), device=first.device) < WARPED_SHARE)[:, None, None, None]
        images = {k: torch.where(bent, F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border",
                                                     align_corners=True), x)
                  for k, x in images.items()}
    return images


def warp_grid(like: torch.Tensor, pixels: float, degrees: float = 0.0) -> torch.Tensor:
    """A (B, H, W, 2) `grid_sample` grid for `like`'s batch: a turn about the centre by up to
    `degrees` either way, bent by a smooth random field whose displacements at the control points
    have standard deviation `pixels`."""
    batch, _, height, width = like.shape
    device = like.device
    control = torch.randn(batch, 2, WARP_CONTROL_POINTS, WARP_CONTROL_POINTS, device=device) * pixels
    field = F.interpolate(control, size=(height, width), mode="bicubic", align_corners=True)
    # Pixels -> grid units per axis with Python numbers: a host tensor could not enter a CUDA graph.
    field = torch.stack([field[:, 0] * (2 / max(width - 1, 1)), field[:, 1] * (2 / max(height - 1, 1))], dim=-1)
    theta = torch.eye(2, 3, device=device).expand(batch, 2, 3)
    if degrees > 0:
        angle = (torch.rand(batch, device=device) * 2 - 1) * math.radians(degrees)
        cos, sin = angle.cos(), angle.sin()
        zero = torch.zeros_like(angle)
        theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)
    identity = F.affine_grid(theta, [batch, 1, height, width], align_corners=True)
    return identity + field

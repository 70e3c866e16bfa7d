"""Training-time augmentation that keeps every condition true, on a batch already on the device.

A mirrored character keeps its colours, so mirroring shows a generator more shapes of character
without ever pairing a sketch with colours its conditions do not ask for. Sketch and target (and
anything stacked on the target, such as the condition regions) change together.

Every draw comes from the device's RNG, which checkpoints save, so a resumed run stays exact.
Moving and rescaling pairs (with line-weight jitter of the sketch) were tried for issue 11 and
lost on unseen Twemoji characters (README, Benchmarks), so they are not offered.
"""

from __future__ import annotations

import torch

from colorgan.recipe import Augment


def augment(sketch: torch.Tensor, target: torch.Tensor, cfg: Augment) -> tuple[torch.Tensor, torch.Tensor]:
    """A float batch (B, C, H, W) changed as the recipe's `data.augment` asks."""
    if cfg.hflip:
        mirror = (torch.rand(len(sketch), device=sketch.device) < 0.5)[:, None, None, None]
        sketch, target = torch.where(mirror, sketch.flip(-1), sketch), torch.where(mirror, target.flip(-1), target)
    return sketch, target

"""Training-time augmentation that keeps every condition true, on a batch already on the device.

A mirrored character keeps its colours, so mirroring shows a generator more shapes of character
without ever pairing a sketch with colours its conditions do not ask for. Sketch, target and the
condition regions change together.

Every draw comes from the device's RNG, which checkpoints save, so a resumed run stays exact.
Moving and rescaling pairs (with line-weight jitter of the sketch) were tried for issue 11 and
lost on unseen Twemoji characters (README, Benchmarks), so they are not offered.
"""

from __future__ import annotations

import torch

from colorgan.recipe import Augment


def augment(images: dict[str, torch.Tensor], cfg: Augment) -> dict[str, torch.Tensor]:
    """Float batches (B, C, H, W) of the same rows (sketch, target, condition regions), changed
    alike as the recipe's `data.augment` asks."""
    if cfg.hflip:
        first = next(iter(images.values()))
        mirror = (torch.rand(len(first), device=first.device) < 0.5)[:, None, None, None]
        images = {k: torch.where(mirror, x.flip(-1), x) for k, x in images.items()}
    return images

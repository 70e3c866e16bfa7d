"""Validation during training: the held-out split's L1 and PSNR, logged as `val_*`."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from colorgan.data import make_collate
from colorgan.recipe import Recipe

LOWER_IS_BETTER = frozenset({"val_l1"})


@torch.no_grad()
def validate_generator(generator, dataset, device, recipe: Recipe, batch_size: int = 32) -> dict[str, float]:
    """Mean L1 (in [-1, 1] units, as the training loss) and PSNR (on [0, 1]) over `dataset`."""
    was_training = generator.training
    generator.eval()
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=make_collate(generator.encode))
    l1_sum, psnr_sum, n = 0.0, 0.0, 0
    for batch in loader:
        fake, _ = generator(batch["sketch"].to(device), batch["cond"].to(device))
        fake, target = fake.float(), batch["target"].to(device).float()
        l1_sum += (fake - target).abs().mean(dim=(1, 2, 3)).sum().item()
        mse = (((fake - target) / 2) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        psnr_sum += (10 * torch.log10(1.0 / mse)).sum().item()
        n += fake.shape[0]
    generator.train(was_training)
    return {"val_l1": l1_sum / n, "val_psnr": psnr_sum / n}

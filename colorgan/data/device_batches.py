"""Training batches gathered on the device: the loader hands out row numbers, never images.

Collating images on the host cost more than a GPU step (a 16 x 256 px batch: ~150 ms of Python
and float conversion on one core, then a pageable copy), so the whole decoded training set — uint8,
each distinct image once, the built-in icons at 256 px are ~80 MB — is moved to the device once,
with every row's encoded conditions; a batch is then one gather and one uint8 -> float there.

The order of rows still comes from a torch DataLoader over row numbers, which Accelerate shards
across processes, seeds and fast-forwards on resume exactly as it did the image loader: same
sampler, same batches, bit-identical runs on the CPU. A set too large for a quarter of the GPU's
free memory stays in pinned host memory and is copied per batch without blocking.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch.utils.data import Dataset

from colorgan.data.augment import augment
from colorgan.data.dataset import ColorDataset, StackedRows
from colorgan.data.images import uint8_to_float
from colorgan.recipe import Augment


class RowNumbers(Dataset):
    """0..N-1: what the training DataLoader samples, shuffles and shards."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i: int) -> int:
        return i


def condition_regions(rows: StackedRows, threshold: int = 8) -> torch.Tensor:
    """(S, 1, H, W) uint8, per sketch (character): 1 where its ground truth differs between its rows
    by more than `threshold` levels in some channel — the pixels whose colour the conditions set
    (skin and hair in Twemoji, hair and shirt in the icons); what the `region` objective weighs."""
    targets = rows.targets.index_select(0, rows.target_of_row).to(torch.int16)
    index = rows.sketch_of_row[:, None, None, None].expand_as(targets)
    shape = (len(rows.sketches), *targets.shape[1:])
    hi = torch.full(shape, -1, dtype=torch.int16).scatter_reduce(0, index, targets, "amax")
    lo = torch.full(shape, 256, dtype=torch.int16).scatter_reduce(0, index, targets, "amin")
    return ((hi - lo) > threshold).any(dim=1, keepdim=True).to(torch.uint8)


class DeviceBatches:
    """A ColorDataset's rows on `device`: `batch(rows)` -> {"sketch", "target", "cond"} tensors,
    plus "region" (`condition_regions` of each row's character, as 0/1 floats) when `regions` is
    set: only an objective that weighs them (`Objective.needs_region`) pays for them."""

    def __init__(self, dataset: ColorDataset, encode: Callable[[Sequence[Mapping[str, str]]], torch.Tensor],
                 device: torch.device, changes: Augment | None = None, regions: bool = False) -> None:
        rows = dataset.stacked()
        tensors = {"sketches": rows.sketches, "targets": rows.targets, "sketch_of_row": rows.sketch_of_row,
                   "target_of_row": rows.target_of_row, "cond": encode(rows.conditions)}
        if regions:
            tensors["regions"] = condition_regions(rows)
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        home = device if device.type == "cpu" or size < torch.cuda.mem_get_info(device)[0] / 4 else torch.device("cpu")
        self.device, self.home, self.changes = device, home, changes or Augment()
        self.tensors = {k: (t.to(home) if home.type != "cpu" or device.type == "cpu" else t.pin_memory())
                        for k, t in tensors.items()}

    def __len__(self) -> int:
        return len(self.tensors["sketch_of_row"])

    def batch(self, rows: torch.Tensor, augmented: bool = True) -> dict[str, Any]:
        """The rows' tensors on the device, changed by the recipe's augmentation unless
        `augmented` is false (no random draw then: the RNG stream of training is untouched)."""
        t = self.tensors
        rows = rows.to(t["cond"].device, non_blocking=True)
        sketch_ids = t["sketch_of_row"].index_select(0, rows)
        sketch = t["sketches"].index_select(0, sketch_ids)
        target = t["targets"].index_select(0, t["target_of_row"].index_select(0, rows))
        cond = t["cond"].index_select(0, rows)
        move = {"device": self.device, "non_blocking": True}
        images = {"sketch": uint8_to_float(sketch.to(**move)), "target": uint8_to_float(target.to(**move))}
        if "regions" in t:
            images["region"] = t["regions"].index_select(0, sketch_ids).to(**move).float()
        batch = augment(images, self.changes if augmented else Augment())
        batch["cond"] = cond.to(**move)
        return batch

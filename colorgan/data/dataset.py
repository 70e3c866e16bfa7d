"""The torch Dataset over Metadata.csv rows, and the collate function that encodes conditions.

Every distinct image file is decoded once, when the dataset is built (a sketch is shared by all
its colourings), and kept as uint8 (a quarter of float32's memory); an epoch then does no PIL work
and no file I/O, which matters more than anything else for small images on CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch
from torch.utils.data import Dataset

from colorgan.data.images import Fit, image_channels, load_sketch, load_target, to_uint8, uint8_to_float
from colorgan.data.metadata import image_path
from colorgan.data.schema import ConditionSchema
from colorgan.errors import DataError


class ColorDataset(Dataset):
    """Rows of a Metadata.csv frame as `{"sketch", "target", "conditions", "index"}` items.

    `frame` holds the rows to serve (e.g. `full.iloc[train_rows]`); an item's `index` is the row's
    label in that frame, i.e. its position in the full Metadata.csv frame.
    """

    def __init__(
        self,
        root: Path,
        frame: pd.DataFrame,
        schema: ConditionSchema,
        image_size: int = 64,
        sketch_channels: int = 1,
        keep_alpha: bool = False,
        fit: Fit = "pad",
    ) -> None:
        self.root = Path(root)
        self.schema = schema
        self.image_size = image_size
        self.sketch_channels = sketch_channels
        self.target_channels = image_channels(keep_alpha)
        self.indices = [int(i) for i in frame.index]
        self.pairs = list(zip(frame["input"], frame["output"]))
        self.conditions = [
            dict(zip(schema.names, values))
            for values in frame[schema.names].itertuples(index=False, name=None)
        ]
        self._sketches = {
            p: to_uint8(load_sketch(self._path(p), image_size, sketch_channels, fit))
            for p in dict.fromkeys(frame["input"])
        }
        self._targets = {
            p: to_uint8(load_target(self._path(p), image_size, keep_alpha, fit))
            for p in dict.fromkeys(frame["output"])
        }

    def _path(self, relative: str) -> Path:
        try:
            return image_path(self.root, relative)
        except DataError as err:
            raise DataError(f"{self.root}: image {err}") from None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        sketch, target = self.pairs[i]
        return {
            "sketch": uint8_to_float(self._sketches[sketch]),
            "target": uint8_to_float(self._targets[target]),
            "conditions": dict(self.conditions[i]),
            "index": self.indices[i],
        }


    def stacked(self) -> "StackedRows":
        """Every row's images and conditions as whole tensors (distinct images stored once)."""
        sketch_ids = {p: k for k, p in enumerate(self._sketches)}
        target_ids = {p: k for k, p in enumerate(self._targets)}
        return StackedRows(
            sketches=torch.stack(list(self._sketches.values())),
            targets=torch.stack(list(self._targets.values())),
            sketch_of_row=torch.tensor([sketch_ids[s] for s, _ in self.pairs], dtype=torch.long),
            target_of_row=torch.tensor([target_ids[t] for _, t in self.pairs], dtype=torch.long),
            conditions=self.conditions,
        )


@dataclass
class StackedRows:
    """A dataset as tensors: uint8 images, each row's image numbers, and the rows' conditions."""

    sketches: torch.Tensor       # (S, C, H, W) uint8, each distinct sketch once
    targets: torch.Tensor        # (T, C, H, W) uint8
    sketch_of_row: torch.Tensor  # (N,) long
    target_of_row: torch.Tensor  # (N,) long
    conditions: list[dict[str, str]]


class Collate:
    """Batches items and encodes their conditions host-side with the condition encoder.

    A class rather than a closure so DataLoader workers started with `spawn` can pickle it.
    """

    def __init__(self, encode: Callable[[list[Mapping[str, str]]], torch.Tensor]) -> None:
        self.encode = encode

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        conditions = [item["conditions"] for item in items]
        return {
            "sketch": torch.stack([item["sketch"] for item in items]),
            "target": torch.stack([item["target"] for item in items]),
            "cond": self.encode(conditions),
            "conditions": conditions,
            "index": torch.tensor([item["index"] for item in items], dtype=torch.long),
        }


def make_collate(encode: Callable[[list[Mapping[str, str]]], torch.Tensor]) -> Collate:
    """The DataLoader `collate_fn` for a condition encoder's host-side `encode`."""
    return Collate(encode)

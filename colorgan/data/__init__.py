"""Datasets: Metadata.csv folders, the condition schema, splits and the built-in icon set.

`load_dataset(recipe.data, recipe.seed)` is the one call training needs. The other public names
are re-exported lazily, so that importing `colorgan.data.schema` (as the registry does) does not
pull in pandas and Pillow.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from colorgan.data.dataset import ColorDataset
    from colorgan.data.schema import ConditionSchema
    from colorgan.recipe import DataConfig

BUILTIN_ICONS = "builtin:icons"

_EXPORTS = {
    "ConditionSchema": "schema",
    "read_metadata": "metadata",
    "ColorDataset": "dataset",
    "make_collate": "dataset",
    "split_frame": "splits",
    "draw_icons": "icons",
    "builtin_path": "icons",
    "check_dataset": "check",
    "CheckReport": "check",
    "MAX_PIXELS": "images",
    "fit_image": "images",
    "unfit_image": "images",
    "content_box": "images",
    "to_pil": "images",
    "to_tensor": "images",
}
__all__ = ["BUILTIN_ICONS", "DataBundle", "load_dataset", "resolve_data_path", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"colorgan.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'colorgan.data' has no attribute {name!r}")


@dataclass
class DataBundle:
    """A loaded dataset: the full frame and schema, and the two datasets the split made."""

    root: Path
    frame: pd.DataFrame
    schema: ConditionSchema
    train: ColorDataset
    test: ColorDataset
    train_rows: list[int]
    test_rows: list[int]


def resolve_data_path(cfg: DataConfig) -> Path:
    """The dataset folder `data.path` names; `builtin:icons` is drawn into the cache if needed."""
    if cfg.path == BUILTIN_ICONS:
        from colorgan.data.icons import builtin_path

        return builtin_path(cfg.icons, cfg.image_size)
    return Path(cfg.path).expanduser()


def load_dataset(cfg: DataConfig, seed: int) -> DataBundle:
    """Read, validate, split and decode the dataset of a recipe's `data` section."""
    from colorgan.data.dataset import ColorDataset
    from colorgan.data.metadata import read_metadata
    from colorgan.data.splits import split_frame

    root = resolve_data_path(cfg)
    frame, schema = read_metadata(root)
    train_rows, test_rows = split_frame(frame, schema, cfg.holdout, seed)

    def subset(rows: list[int]) -> ColorDataset:
        return ColorDataset(root, frame.iloc[rows], schema, cfg.image_size, cfg.sketch_channels,
                            cfg.keep_alpha, cfg.fit)

    return DataBundle(root, frame, schema, subset(train_rows), subset(test_rows), train_rows, test_rows)

"""Experiment trackers through Accelerate: `metrics.jsonl` always, W&B and TensorBoard on request.

W&B never prompts and never fails for lack of a login: `log.wandb_mode: auto` (the default) runs
online only when credentials are configured (WANDB_API_KEY or a netrc entry), offline otherwise,
with its files inside the run folder.
"""

from __future__ import annotations

import json
import math
import netrc
import os
from pathlib import Path
from typing import Any

import numpy as np
from accelerate.tracking import GeneralTracker

from colorgan.errors import RecipeError
from colorgan.recipe import Recipe

KNOWN = ("jsonl", "wandb", "tensorboard")


class JsonlTracker(GeneralTracker):
    """One JSON object per logged step, appended to RUN/metrics.jsonl (always on)."""

    name = "jsonl"
    requires_logging_directory = False

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    @property
    def tracker(self) -> Path:
        return self.path

    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        record = {"step": step, **{k: _plain(v) for k, v in values.items()}}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _plain(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null (the NaN guard reports them separately)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def tracker_setup(recipe: Recipe, run: Path) -> tuple[list[Any], dict[str, dict[str, Any]]]:
    """`log_with` and `init_kwargs` for `Accelerator` / `init_trackers`."""
    unknown = [t for t in recipe.log.with_ if t not in KNOWN]
    if unknown:
        raise RecipeError(f"log.with: unknown tracker {unknown[0]!r}; known: {', '.join(KNOWN)}")
    log_with: list[Any] = [JsonlTracker(run / "metrics.jsonl")]
    init_kwargs: dict[str, dict[str, Any]] = {}
    if "tensorboard" in recipe.log.with_:
        log_with.append("tensorboard")
    if "wandb" in recipe.log.with_:
        mode = recipe.log.wandb_mode
        if mode == "auto":
            mode = "online" if wandb_has_credentials() else "offline"
        log_with.append("wandb")
        init_kwargs["wandb"] = {"mode": mode, "dir": str(run), "name": run.name,
                                "settings": {"silent": True}}
    return log_with, init_kwargs


def log_image(accelerator, key: str, image, step: int) -> None:
    """Send a PIL image to the trackers that take images (jsonl records the file instead)."""
    for tracker in accelerator.trackers:
        if tracker.name == "wandb":
            tracker.log_images({key: [image]}, step=step)
        elif tracker.name == "tensorboard":
            tracker.writer.add_image(key, np.asarray(image.convert("RGB")), step, dataformats="HWC")

"""Shared test set-up: a private icon cache, offline W&B, and a tiny recipe that trains in seconds."""

import copy
import os

import pytest
import yaml


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory):
    """Built-in icons drawn once per session into a temp cache; W&B never goes online."""
    os.environ["COLORGAN_CACHE"] = str(tmp_path_factory.mktemp("colorgan-cache"))
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_SILENT"] = "true"
    os.environ.pop("WANDB_API_KEY", None)
    yield


TINY = {
    "name": "tiny",
    "seed": 0,
    "data": {"path": "builtin:icons", "image_size": 32, "icons": {"characters": 2}},
    "condition": {"type": "onehot"},
    "generator": {"type": "unet", "depth": 5, "base_channels": 8, "max_channels": 32,
                  "norm": "instance", "dropout": 0.0},
    "discriminator": {"type": "patchgan", "layers": 2, "base_channels": 8, "norm": "instance"},
    "loss": {"type": "lsgan"},
    # fp32: exactness tests (accumulation = a larger batch within 1e-5) need it on any CPU.
    "train": {"max_steps": 6, "epochs": None, "batch_size": 4, "mixed_precision": "no",
              "log_every": 2, "sample_every": 3,
              "eval_every": 3, "checkpoint_every": 3, "keep_checkpoints": 2},
}


@pytest.fixture
def tiny_recipe():
    """A deep copy of the tiny recipe dict, to adjust per test."""
    return copy.deepcopy(TINY)


@pytest.fixture
def write_recipe(tmp_path):
    def write(data, name="recipe.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return path

    return write

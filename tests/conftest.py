"""Shared test set-up: a private icon cache, offline W&B, a tiny recipe that trains in seconds, and
the CPU for everything but the `gpu` tests.

Many tests compare weights bit for bit, which only the CPU guarantees, so this process (and the
subprocesses it starts) never sees a GPU. Tests marked `gpu` start `colorgan` in a subprocess with
the GPU visible again (`gpu_env`), and are skipped where there is none.
"""

import copy
import os
import shutil
import subprocess
import sys

import hypothesis
import pytest
import yaml

# Property tests draw the same examples on every CI run (a new random failure belongs in a
# development session, not in a landing); locally they explore new ones each time.
hypothesis.settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")

# The GPUs this run was given, kept in the environment so that pytest-xdist's workers, which
# inherit the hidden value below, still know them.
os.environ.setdefault("COLORGAN_TESTS_VISIBLE_GPUS", os.environ.get("CUDA_VISIBLE_DEVICES", "<all>"))
_VISIBLE_GPUS = os.environ["COLORGAN_TESTS_VISIBLE_GPUS"]
os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before anything initialises CUDA


def _gpu_environment() -> dict[str, str]:
    env = dict(os.environ)
    if _VISIBLE_GPUS == "<all>":
        env.pop("CUDA_VISIBLE_DEVICES")
    else:
        env["CUDA_VISIBLE_DEVICES"] = _VISIBLE_GPUS
    return env


def _has_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    probe = [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"]
    return subprocess.run(probe, env=_gpu_environment(), capture_output=True, text=True).stdout.strip() == "True"


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if gpu_items and not _has_gpu():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch here)")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture
def gpu_env():
    """The environment for a subprocess that may use the GPU (this process runs on the CPU)."""
    return _gpu_environment()


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

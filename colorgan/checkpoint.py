"""The model file: one self-describing `.safetensors` holding the generator and its condition encoder.

Metadata (`colorgan.*` keys, JSON strings) carries the resolved recipe, the condition schema, the
image size and channels and a format version, so a model file alone rebuilds its modules through
the registries. Loading never unpickles: safetensors holds only tensors and strings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from colorgan.data.schema import ConditionSchema
from colorgan.errors import ColorganError, ModelFileError
from colorgan.recipe import Recipe, from_dict

FORMAT_VERSION = 1
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".ckpt")


def export(generator: torch.nn.Module, recipe: Recipe, schema: ConditionSchema, path: str | Path) -> Path:
    """Write the generator (with its condition encoder) and its description; atomic (temp + rename)."""
    path = Path(path)
    metadata = {
        "colorgan.format_version": json.dumps(FORMAT_VERSION),
        "colorgan.recipe": json.dumps(recipe.to_dict()),
        "colorgan.schema": json.dumps(schema.to_dict()),
        "colorgan.image_size": json.dumps(recipe.data.image_size),
        "colorgan.channels": json.dumps(
            {"sketch": recipe.data.sketch_channels, "image": 4 if recipe.data.keep_alpha else 3}
        ),
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in generator.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ColorganError(f"{path}: cannot write model file ({err.strerror or err})") from None
    return path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The decoded `colorgan.*` metadata of a model file, or a ModelFileError saying why not."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelFileError(
            f"{path}: pickle-based model files are refused (they can run code); use a colorgan .safetensors file"
        )
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"{path}: not a readable safetensors file ({err})") from None
    if "colorgan.format_version" not in raw:
        raise ModelFileError(f"{path}: a safetensors file, but not a colorgan model (no colorgan.* metadata)")
    try:
        meta = {k.removeprefix("colorgan."): json.loads(v) for k, v in raw.items() if k.startswith("colorgan.")}
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: damaged colorgan metadata ({err})") from None
    if not isinstance(meta["format_version"], int) or meta["format_version"] > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {meta['format_version']} is newer than this colorgan reads "
            f"({FORMAT_VERSION}); upgrade colorgan"
        )
    return meta


def load(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the generator from a model file: `(ConditionalGenerator in eval mode, recipe, schema)`."""
    from colorgan.build import build_generator

    path = Path(path)
    meta = read_metadata(path)
    try:
        recipe = from_dict(meta["recipe"])
        schema = ConditionSchema.from_mapping(meta["schema"])
    except (ColorganError, KeyError, AttributeError, TypeError) as err:
        raise ModelFileError(f"{path}: damaged colorgan metadata ({err})") from None
    try:
        from colorgan.registry.plugins import load_recipe_plugins

        load_recipe_plugins(recipe.plugins)
        generator = build_generator(recipe, schema)
    except ColorganError as err:
        raise ModelFileError(f"{path}: cannot rebuild the model: {err} (is the plugin that provides it installed?)") from None
    try:
        state = load_file(str(path), device=str(device))
        generator.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as err:
        raise ModelFileError(f"{path}: damaged or truncated model weights ({str(err).splitlines()[0]})") from None
    return generator.to(device).eval(), recipe, schema

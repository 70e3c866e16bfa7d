"""The model file: one self-describing `.safetensors` holding the generator and its condition encoder.

Metadata (`colorgan.*` keys, JSON strings) carries the resolved recipe, the condition schema, the
image size and channels and a format version (`colorgan.model_file` writes it and checks it), so a
model file alone rebuilds its modules through the registries. Loading never unpickles: safetensors
holds only tensors and strings.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from colorgan import ema
from colorgan.data.schema import ConditionSchema
from colorgan.errors import ColorganError, ModelFileError, shown
from colorgan.model_file import describe, read_metadata, validate_model_file
from colorgan.recipe import Recipe, from_dict


def export(generator: torch.nn.Module, recipe: Recipe, schema: ConditionSchema, path: str | Path) -> Path:
    """Write the generator (with its condition encoder) and its description; atomic (temp + rename)."""
    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in generator.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=describe(recipe, schema))
        os.replace(tmp, path)
    except (OSError, SafetensorError) as err:
        from colorgan.run_state import write_failure

        tmp.unlink(missing_ok=True)
        reason = write_failure(err, path.parent)
        if reason is None:
            raise
        raise ColorganError(f"{path}: cannot write model file ({reason})") from None
    return path


def load(path: str | Path, device: str | torch.device = "cpu", max_model_gb: float | None = None):
    """Rebuild the generator from a model file: `(ConditionalGenerator in eval mode, recipe, schema)`.

    Everything the file says is checked first (`validate_model_file`, with the memory budget
    `max_model_gb`); only then is anything built or read beyond the header.
    """
    from colorgan.build import build_generator

    path = Path(path)
    model = validate_model_file(path, max_model_gb)
    # A model file may come from anyone: the modules its recipe lists under `plugins:` are NOT
    # imported (that would run code a stranger named). Components come from what is registered
    # already: built-ins, installed entry-point plugins, and modules this process imported itself.
    # Nor is a `pretrained` weights path read: the file's own weights replace them, and a stranger
    # could name any large file on this machine.
    built = dataclasses.replace(model.recipe, generator={k: v for k, v in model.recipe.generator.items()
                                                         if k != "pretrained"})
    try:
        generator = build_generator(built, model.schema)
    except (ColorganError, TypeError, ValueError) as err:  # installed components refusing the options
        raise ModelFileError(f"{shown(path)}: damaged colorgan metadata: the embedded recipe does not "
                             f"build ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    try:
        state = load_file(str(path), device=str(device))
        generator.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as err:
        raise ModelFileError(f"{shown(path)}: damaged or truncated model weights ({str(err).splitlines()[0]})") from None
    return generator.to(device).eval(), model.recipe, model.schema


# --- exporting from a run folder ----------------------------------------------------------------


def _copy_model_file(source: Path, out: Path) -> Path:
    """Copy an existing model file (checked first) to `out`, atomically."""
    import shutil

    read_metadata(source)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ColorganError(f"{out}: cannot write model file ({err.strerror or err})") from None
    return out


def _strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes (DDP `module.`, torch.compile `_orig_mod.`) from state-dict keys."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def checkpoint_weights(folder: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The generator weights of a training checkpoint and where they came from: the EMA's
    (`ema.safetensors`) when the run kept one, else the ConditionalGenerator Accelerate saved
    first (`model.safetensors`)."""
    averaged = (folder / ema.FILE).is_file()
    weights_file = folder / (ema.FILE if averaged else "model.safetensors")
    if not weights_file.is_file():
        raise ModelFileError(f"{folder}: no model.safetensors in this checkpoint folder")
    try:
        weights = _strip_prefixes(load_file(str(weights_file)))
    except (SafetensorError, OSError) as err:
        raise ModelFileError(f"{weights_file}: damaged checkpoint weights ({err})") from None
    return weights, f"{weights_file.name} (EMA)" if averaged else weights_file.name


def export_from_run(source: str | Path, out: str | Path) -> Path:
    """Write a model file from a run folder, a checkpoint folder (or copy a model file).

    A run folder gives its `model.safetensors` if training finished, else its latest checkpoint.
    A checkpoint folder (`RUN/checkpoints/step-N`) is rebuilt from `RUN/recipe.yaml`, the
    condition schema training saved in `RUN/schema.json` (or, for older runs, read again from the
    recipe's dataset) and the checkpoint's generator weights (EMA weights when the run kept one).
    """
    import yaml

    from colorgan.build import build_generator
    from colorgan.data import resolve_data_path
    from colorgan.data.metadata import read_metadata as read_dataset
    from colorgan.run_state import _STEP_DIR, latest_checkpoint

    source, out = Path(source), Path(out)
    if source.is_file():
        return _copy_model_file(source, out)
    if not source.is_dir():
        raise ColorganError(f"{source}: not found (expected a run folder, a checkpoint folder or a model file)")
    if (source / "recipe.yaml").is_file():
        run = source
        if (run / "model.safetensors").is_file():
            return _copy_model_file(run / "model.safetensors", out)
        folder = latest_checkpoint(run)
        if folder is None:
            raise ColorganError(f"{run}: no model.safetensors and no checkpoint (checkpoints/step-*) to export")
    elif _STEP_DIR.match(source.name) and (source.parent.parent / "recipe.yaml").is_file():
        run, folder = source.parent.parent, source
    else:
        raise ColorganError(
            f"{source}: not a run folder (no recipe.yaml) nor a checkpoint folder (RUN/checkpoints/step-N)"
        )
    try:
        recipe = from_dict(yaml.safe_load((run / "recipe.yaml").read_text()) or {})
    except yaml.YAMLError as err:
        raise ColorganError(f"{run / 'recipe.yaml'}: not valid YAML ({err})") from None
    from colorgan.registry.plugins import load_recipe_plugins

    load_recipe_plugins(recipe.plugins)
    root = run / "schema.json"
    if root.is_file():
        schema = ConditionSchema.from_mapping(json.loads(root.read_text()))
    else:
        root = resolve_data_path(recipe.data)
        _, schema = read_dataset(root)
    generator = build_generator(recipe, schema)
    state, origin = checkpoint_weights(folder)
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelFileError(
            f"{folder / origin.split()[0]}: the weights do not fit the generator rebuilt from "
            f"{run / 'recipe.yaml'} and the schema of {root} (has the dataset changed since training?): "
            f"{str(err).splitlines()[0]}"
        ) from None
    return export(generator, recipe, schema, out)

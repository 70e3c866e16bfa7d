"""The run folder and its training checkpoints.

`RUN/checkpoints/step-NNNNNN/` is written by `accelerator.save_state` under a temporary name and
renamed when complete, so a crash mid-write never leaves a half checkpoint that looks like the
latest: only `step-*` folders count, `.tmp-*` leftovers are ignored and removed on the next save.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from colorgan.errors import ColorganError
from colorgan.objective import reads_discriminator
from colorgan.recipe import COMPONENT_SECTIONS, Recipe

_STEP_DIR = re.compile(r"^step-(\d+)$")

# Failures that are the storage's, not colorgan's: full, over quota, read-only, file too large, no
# permission, a name too long, a symlink loop, a path through a file, a device error.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM,
                            errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.EIO})
_NEARLY_FULL = 1 << 20  # bytes: what a failed write leaves free on a full disk is about nothing
_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how Rust libraries (safetensors) quote an errno

# Recipe keys whose change makes a checkpoint unusable: they decide the modules' shapes.
MODEL_KEYS = tuple(COMPONENT_SECTIONS) + ("data.image_size", "data.sketch_channels", "data.keep_alpha")


class Progress:
    """Where training is: saved with every checkpoint (`register_for_checkpointing`)."""

    def __init__(self) -> None:
        self.step = 0
        self.epoch = 0
        self.batches_in_epoch = 0
        self.best: float | None = None
        self.seconds = 0.0  # training time before this checkpoint, for `train.max_minutes`

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "batches_in_epoch": self.batches_in_epoch,
                "best": self.best, "seconds": self.seconds}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.batches_in_epoch, self.best = int(state["batches_in_epoch"]), state["best"]
        self.seconds = float(state.get("seconds", 0.0))  # checkpoints written before it was kept: none counted


def checkpoint_dirs(run: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints, oldest first."""
    folder = run / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(found)


def latest_checkpoint(run: Path) -> Path | None:
    dirs = checkpoint_dirs(run)
    return dirs[-1][1] if dirs else None


def resolve_resume(run: Path, resume: str) -> Path:
    """`latest` or a path -> a checkpoint folder, or a one-line error."""
    if resume == "latest":
        found = latest_checkpoint(run)
        if found is None:
            raise ColorganError(f"{run}: no checkpoint to resume from (checkpoints/step-* is empty)")
        return found
    path = Path(resume)
    if not _STEP_DIR.match(path.name) or not path.is_dir():
        raise ColorganError(
            f"--resume {resume}: not a checkpoint folder (expected RUN/checkpoints/step-N, 'latest' or 'auto')")
    return path


# Files every checkpoint holds (Accelerate's names): the generator's weights and its optimizer.
_REQUIRED = ("model.safetensors", "optimizer.bin")
DISCRIMINATOR_FILE = "model_1.safetensors"  # Accelerate's name for the second prepared model (`Trainer`)


def check_checkpoint(folder: Path, discriminated: bool = True) -> None:
    """Refuse a checkpoint with a missing or cut-short file, naming it, before the run folder is touched.

    `discriminated`: the resuming recipe's objective reads a discriminator, so the checkpoint must
    hold one; a run whose objective read none built none (`build_parts`) and saved none.

    Accelerate's `load_state` would find it half-way through a resume, after the run's recipe and
    run info were rewritten, with a zip-library message that names no file. Safetensors files
    check their header against their length; torch.save files are zips whose directory is at the
    end, so a truncated one has none.
    """
    import zipfile

    from safetensors import SafetensorError, safe_open

    for name in _REQUIRED:
        if not (folder / name).is_file():
            raise ColorganError(f"{folder / name}: missing: the checkpoint is incomplete; {_earlier(folder)}")
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            if file.suffix == ".safetensors":
                with safe_open(str(file), framework="pt"):
                    pass
            elif file.suffix in (".bin", ".pkl", ".pt"):
                with zipfile.ZipFile(file):
                    pass
        except (SafetensorError, zipfile.BadZipFile, OSError, ValueError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else "truncated or corrupt"
            raise ColorganError(f"{file}: damaged checkpoint file ({reason}); {_earlier(folder)}") from None
    # after the damage checks: a damaged file is the checkpoint's fault, this one the recipe's
    if discriminated and not (folder / DISCRIMINATOR_FILE).is_file():
        raise ColorganError(
            f"{folder / DISCRIMINATOR_FILE}: missing: the run trained no discriminator (its objective read none), "
            "and this recipe's objective reads one (a gan term); resume with the run's objective or start a new run")


def _earlier(folder: Path) -> str:
    """What to do instead of resuming from a damaged checkpoint `folder`."""
    run = folder.parent.parent
    earlier = [p for _, p in checkpoint_dirs(run) if p.name < folder.name]
    if earlier:
        return f"resume from an earlier one with --resume {earlier[-1]}"
    return "there is no earlier checkpoint (start the run again with --overwrite)"


def save_checkpoint(accelerator, run: Path, step: int, keep: int,
                    also: Callable[[Path], None] | None = None) -> Path:
    """Save the full training state for `step` atomically, then keep only the newest `keep`.

    `also(folder)` writes what Accelerate does not hold (the EMA) into the folder on the main
    process, before the folder gets its final name."""
    folder = run / "checkpoints"
    final = folder / f"step-{step:06d}"
    tmp = folder / f".tmp-step-{step:06d}"
    try:
        if accelerator.is_main_process:
            folder.mkdir(parents=True, exist_ok=True)
            for leftover in folder.glob(".tmp-*"):  # what a save killed mid-write left
                shutil.rmtree(leftover, ignore_errors=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp), safe_serialization=True)
        if also is not None and accelerator.is_main_process:
            also(tmp)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            for _, old in checkpoint_dirs(run)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    except Exception as err:
        reason = write_failure(err, folder)
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        if reason is None:
            raise  # not a storage problem: a bug, keep its traceback
        raise ColorganError(
            f"{final}: cannot write checkpoint ({reason}); "
            f"the last complete one is {latest_checkpoint(run) or 'none'}"
        ) from None
    accelerator.wait_for_everyone()
    return final


def write_failure(err: BaseException, folder: Path) -> str | None:
    """Why a write into `folder` failed, in words, when the cause is the storage; else None.

    OSError says so itself. The writers of a checkpoint do not all pass it on: safetensors wraps it
    in its own error ("... No space left on device (os error 28)"), torch.save raises RuntimeError
    ("unexpected pos ...") and says nothing more. The first counts by its errno, whatever space is
    left (a checkpoint larger than the whole disk leaves it half empty); the second when the disk
    has (next to) no space left.
    """
    if isinstance(err, OSError):
        return err.strerror or str(err)
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    code = _OS_ERROR.search(str(err))
    if code and int(code.group(1)) in STORAGE_ERRNOS:
        return f"{os.strerror(int(code.group(1)))}; {first}"
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return None
    if free < _NEARLY_FULL:
        return f"No space left on device: {free} bytes free; {first}"
    return None


def model_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Keys of MODEL_KEYS whose values differ between two plain recipes, `old` being the run's.

    A component option that `new` leaves to `auto` matches what the run chose for it (its saved
    recipe holds the choice, `generator.fill` for one): resuming, training decides it again from
    the same data.
    """

    def get(data: dict[str, Any], dotted: str) -> Any:
        for part in dotted.split("."):
            data = data.get(part) if isinstance(data, dict) else None
        return data

    def as_chosen(run_value: Any, value: Any) -> Any:
        if not (isinstance(run_value, dict) and isinstance(value, dict)):
            return value
        return {key: run_value.get(key, v) if v == "auto" else v for key, v in value.items()}

    return [k for k in MODEL_KEYS if get(old, k) != as_chosen(get(old, k), get(new, k))]


def prepare_run_folder(run: Path, recipe: Recipe, resume: str | None, overwrite: bool) -> Path | None:
    """Check the run folder against what was asked; return the checkpoint to resume, if any.

    A folder holding another run is never written over silently: it needs --resume or --overwrite.
    `auto` (for `torchrun --max-restarts`, whose restarted workers repeat the same command) is
    `latest` when the run has a checkpoint and `--overwrite` when it has none yet: an attempt that
    died before its first checkpoint left nothing to continue.
    """
    if resume == "auto":
        resume, overwrite = ("latest", overwrite) if latest_checkpoint(run) else (None, True)
    recipe_file = run / "recipe.yaml"
    if resume is not None:
        checkpoint = resolve_resume(run, resume)
        if recipe_file.is_file():
            import yaml

            try:
                old = yaml.safe_load(recipe_file.read_text()) or {}
            except (yaml.YAMLError, OSError, UnicodeDecodeError) as err:
                raise ColorganError(f"{recipe_file}: cannot read the run's recipe ({err})") from None
            if not isinstance(old, dict):
                raise ColorganError(f"{recipe_file}: not a recipe (expected a mapping)")
            diff = model_differences(old, recipe.to_dict())
            if diff:
                raise ColorganError(
                    f"{run}: cannot resume: the recipe changes the model ({', '.join(diff)}); "
                    "start a new run instead"
                )
        check_checkpoint(checkpoint, discriminated=reads_discriminator(recipe.objective))
        return checkpoint
    if run.exists() and not run.is_dir():
        raise ColorganError(f"{run}: exists and is not a folder; --out needs a run folder")
    if run.exists() and any(run.iterdir()):
        if not overwrite:
            raise ColorganError(
                f"{run}: folder already holds a run; pass --resume latest to continue it or --overwrite to replace it"
            )
        if not recipe_file.is_file() and not (run / "checkpoints").is_dir():
            raise ColorganError(f"{run}: folder is not a colorgan run; refusing to --overwrite it")
    return None


def create_run_folder(run: Path, recipe: Recipe, clear: bool = False) -> None:
    """Make the run folder and write its recipe (main process only); `clear` for --overwrite.

    A folder that cannot be made or written (read-only disk, a file in the way, disk full) is a
    one-line error naming the folder, not a traceback.
    """
    try:
        if clear:
            clear_run_folder(run)
        run.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run / "recipe.yaml", recipe.to_yaml())
    except OSError as err:
        raise ColorganError(f"{run}: cannot create the run folder ({err.strerror or err})") from None


def clear_run_folder(run: Path) -> None:
    """--overwrite: remove what an earlier run wrote (only on the main process)."""
    for name in ("checkpoints", "samples", "wandb", "tensorboard"):
        shutil.rmtree(run / name, ignore_errors=True)
    for name in ("metrics.jsonl", "recipe.yaml", "run.json", "schema.json", "model.safetensors", "best.safetensors"):
        (run / name).unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary name and rename: a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def read_run_info(run: Path) -> dict[str, Any]:
    """The run's `run.json` (world size, device, precision, ...), or {} where there is none yet or
    it cannot be read: nothing of a run depends on it but what it records of itself."""
    try:
        return json.loads((run / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics.jsonl records after `step`: a resumed run logs those steps again."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
            if line.strip() and (json.loads(line).get("step") or 0) <= step]
    write_text_atomic(path, "".join(kept))

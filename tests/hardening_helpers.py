"""Shared helpers for the hardening tests: crafted files, plugins, subprocess training, snapshots."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

from PIL import Image

# --- crafted files ------------------------------------------------------------------------------


def bomb_png(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A tiny real PNG whose IHDR claims `width` x `height` (CRC fixed up, so it parses)."""
    Image.new("L", (8, 8), 255).save(path)
    data = bytearray(path.read_bytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under `root`: kind, size, mtime — to prove nothing changed."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            found[str(path.relative_to(root))] = (st.st_mode >> 12, st.st_size, st.st_mtime_ns)
    return found


# --- plugins: modules a recipe lists under `plugins:` ----------------------------------------


SAVE_STATE_PATCH = '''
"""Test plugin: wraps Accelerator.save_state to fail on a chosen save (after writing part of it)."""
import errno
import os
import time
from pathlib import Path

from accelerate import Accelerator

MODE = {mode!r}
ON_SAVE = {on_save}
MARKER = {marker!r}
GATE = {gate!r}
_original = Accelerator.save_state
_calls = [0]


def _partial(self, output_dir, **kwargs):
    """What a save stopped half-way leaves: some files whole, one cut short, the rest missing."""
    _original(self, output_dir, **kwargs)
    files = sorted(Path(output_dir).iterdir())
    for extra in files[len(files) // 2 + 1:]:
        extra.unlink()
    weights = Path(output_dir, "model.safetensors")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def save_state(self, output_dir=None, **kwargs):
    _calls[0] += 1
    if _calls[0] != ON_SAVE:
        return _original(self, output_dir, **kwargs)
    _partial(self, output_dir, **kwargs)
    if MODE == "hang":
        Path(MARKER).write_text(output_dir)
        while True:
            time.sleep(0.1)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(output_dir, "optimizer.bin"))


if os.environ.get(GATE) == "1":  # only where the test asks for the fault (not in the resuming run)
    Accelerator.save_state = save_state
'''

GATE = "HARDENING_SAVE_FAULT"


def save_state_plugin(folder: Path, name: str, mode: str, on_save: int, marker: Path | None = None) -> str:
    """Write a plugin module `name` into `folder`; `mode` is 'hang' (marker, then sleep) or 'enospc'.

    It patches only in a process whose environment sets GATE=1, so the run that resumes after the
    fault (same recipe, same plugins list) saves normally.
    """
    (folder / f"{name}.py").write_text(
        SAVE_STATE_PATCH.format(mode=mode, on_save=on_save, marker=str(marker or ""), gate=GATE))
    return name


MARKER_PLUGIN = '''
"""Test plugin: importing it leaves a marker file (proof that something imported it)."""
from pathlib import Path
Path({marker!r}).write_text("imported")
'''


def marker_plugin(folder: Path, name: str, marker: Path) -> str:
    (folder / f"{name}.py").write_text(MARKER_PLUGIN.format(marker=str(marker)))
    return name


# --- training in a subprocess ---------------------------------------------------------------


def child_env(*extra_paths: Path) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    paths = [str(p) for p in extra_paths] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def start_training(recipe_path: Path, run: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.Popen(
        [sys.executable, "-m", "colorgan", "train", str(recipe_path), "--out", str(run), *args],
        env=env or child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def logged_steps(run: Path) -> list[int]:
    metrics = run / "metrics.jsonl"
    if not metrics.exists():
        return []
    steps = []
    for line in metrics.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line being written right now
            continue
        if "g_loss" in record:  # a loss line (d_loss only where a discriminator trains)
            steps.append(record["step"])
    return steps


def wait_until(condition, proc, what: str, timeout: float = 120) -> None:
    """Poll `condition()` until true; fail with the child's output if it exits or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"training exited ({proc.returncode}) before {what}:\n{err[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}")


def tiny_model_file(root: Path) -> Path:
    """A real (untrained) colorgan model file over a 2-character, 32 px icon dataset in `root`."""
    import copy

    from conftest import TINY

    from colorgan import checkpoint
    from colorgan import recipe as recipes
    from colorgan.build import build_generator
    from colorgan.data.icons import draw_icons
    from colorgan.data.metadata import read_metadata

    data = draw_icons(root / "data", size=32, characters=2, seed=0)
    recipe = recipes.from_dict(dict(copy.deepcopy(TINY), data={"path": str(data), "image_size": 32}))
    _, schema = read_metadata(data)
    return checkpoint.export(build_generator(recipe, schema), recipe, schema, root / "model.safetensors")

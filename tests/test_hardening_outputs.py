"""Outputs that never clobber, and storage errors that name the real cause.

The table runs one `colorgan` command per case: each must end with exit code 2, one line naming
the problem (and the path), no traceback, and no file changed, created or left behind. Then the
cases the table cannot hold: --overwrite that works, another user's folder, a real full disk.
"""

from __future__ import annotations

import copy
import errno
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import test_hardening_crash
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.run_state import write_failure
from conftest import TINY
from hardening_helpers import snapshot, tiny_model_file

small_disk = test_hardening_crash.small_disk  # the fixture: a real small tmpfs

LONG = "n" * 100_000  # a name no file system takes (ENAMETOOLONG)
OUT = "sketch-hair=crimson-shirt=olive.png"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("outputs")
    tiny_model_file(root)
    return root


class Ctx:
    """One case's folder and the inputs its command needs, all inside `tmp`."""

    def __init__(self, tmp: Path, template: Path, monkeypatch) -> None:
        self.tmp, self.template, self.monkeypatch = tmp, template, monkeypatch

    def data(self, *rows: str) -> Path:
        """A copy of the template dataset, with `rows` appended to its Metadata.csv."""
        folder = self.tmp / "data"
        if not folder.exists():
            shutil.copytree(self.template / "data", folder)
        with open(folder / "Metadata.csv", "a", encoding="utf-8") as f:
            f.writelines(row + "\n" for row in rows)
        return folder

    def train(self, data: Path, *args: str) -> list[str]:
        recipe = dict(copy.deepcopy(TINY), data={"path": str(data), "image_size": 32})
        path = self.tmp / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        return ["train", str(path), "--out", str(self.tmp / "run"), *args]

    def sample(self, *args: str, out: Path | None = None) -> list[str]:
        sketch = self.tmp / "sketch.png"
        Image.new("L", (40, 30), 255).save(sketch)
        return ["sample", str(self.template / "model.safetensors"), str(sketch), "-c", "hair=crimson",
                "-c", "shirt=olive", "--out", str(out or self.tmp / "out"), *args]

    def folder(self, name: str, files: dict[str, str]) -> Path:
        folder = self.tmp / name
        folder.mkdir(parents=True, exist_ok=True)
        for relative, text in files.items():
            (folder / relative).write_text(text)
        return folder

    def run_with_checkpoints(self, *damaged: Callable[[Path], None]) -> list[str]:
        """A run folder with one checkpoint per entry, each passed through its damage (the last is
        the latest), then `train --resume latest` on it."""
        run = self.tmp / "run"
        run.mkdir()
        recipe = dict(copy.deepcopy(TINY), data={"path": str(self.data()), "image_size": 32})
        (run / "recipe.yaml").write_text(recipes.from_dict(recipe).to_yaml())  # as training resolves it
        for i, damage in enumerate(damaged):
            step = run / "checkpoints" / f"step-{3 * (i + 1):06d}"
            step.mkdir(parents=True)
            save_file({"w": torch.zeros(64)}, str(step / "model.safetensors"))
            torch.save({"state": torch.zeros(64)}, step / "optimizer.bin")
            damage(step)
        return ["train", str(run / "recipe.yaml"), "--out", str(run), "--resume", "latest"]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def intact(step: Path) -> None:
    """A checkpoint left as it was written."""


def full_disk_after(saves: int) -> Callable[[Ctx], None]:
    """Make PIL's save fail with ENOSPC after `saves` images, as a disk filling up would."""
    def setup(ctx: Ctx) -> None:
        original = Image.Image.save
        count = [0]

        def save(self, fp, *args, **kwargs):
            count[0] += 1
            if count[0] > saves:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return original(self, fp, *args, **kwargs)

        ctx.monkeypatch.setattr(Image.Image, "save", save)
    return setup


def symlink_loop(ctx: Ctx) -> Path:
    folder = ctx.data("sketches/loop.png,colored/char-00-blue-olive.png,red,navy")
    os.symlink("loop2.png", folder / "sketches" / "loop.png")
    os.symlink("loop.png", folder / "sketches" / "loop2.png")
    return folder


@dataclass
class Case:
    id: str
    args: Callable[[Ctx], list[str]]
    expect: tuple[str, ...]
    started: bool = False  # failed after it began writing: what it wrote is gone, folders' times moved


NUL_VALUE = "sketches/char-00.png,colored/char-00-blue-olive.png,re\0d,navy"
NUL_PATH = "sketches/char\0-00.png,colored/char-00-blue-olive.png,red,navy"

CASES = [
    # --- data icons never writes into a user's folder, and never leaves half a set --------------
    Case("icons:into-a-users-folder", lambda c: ["data", "icons", str(c.folder("mine", {"notes.txt": "mine"}))],
         ("mine: folder is not empty and is not an icon set colorgan drew",)),
    Case("icons:over-a-users-metadata",
         lambda c: ["data", "icons", str(c.folder("mine", {"Metadata.csv": "input,output,hat\na,b,c\n"}))],
         ("is not an icon set colorgan drew",)),
    Case("icons:over-a-file", lambda c: ["data", "icons", str(c.folder("x", {"file": "x"}) / "file")],
         ("file: exists and is not a folder",)),
    Case("icons:disk-full", lambda c: (full_disk_after(20)(c), ["data", "icons", str(c.tmp / "new" / "icons"),
                                                               "--size", "32", "--characters", "2"])[1],
         ("new/icons: No space left on device; the icon set was not written",), started=True),
    Case("icons:name-too-long", lambda c: ["data", "icons", str(c.tmp / LONG)], ("File name too long",)),
    # --- sample replaces nothing unless asked, and a read-only file never ------------------------
    Case("sample:existing-output", lambda c: c.sample(out=c.folder("out", {OUT: "mine"})),
         (f"{OUT}: exists; pass --overwrite",)),
    Case("sample:read-only-output-even-with-overwrite",
         lambda c: (c.folder("out", {OUT: "mine"}), (c.tmp / "out" / OUT).chmod(0o444), c.sample("--overwrite"))[2],
         (f"{OUT}: exists and is read-only; colorgan never replaces a read-only file",)),
    Case("sample:a-folder-in-the-way", lambda c: (c.folder(f"out/{OUT}", {}), c.sample("--overwrite"))[1],
         (f"{OUT}: is a folder",)),
    Case("sample:out-name-too-long", lambda c: c.sample(out=c.tmp / LONG), ("File name too long", "characters)")),
    # --- a failed resume changes nothing, and names the damaged file ---------------------------
    Case("resume:truncated-optimizer", lambda c: c.run_with_checkpoints(lambda s: truncate(s / "optimizer.bin")),
         ("step-000003/optimizer.bin: damaged checkpoint file (truncated or corrupt)", "no earlier checkpoint")),
    Case("resume:truncated-weights", lambda c: c.run_with_checkpoints(lambda s: truncate(s / "model.safetensors")),
         ("step-000003/model.safetensors: damaged checkpoint file",)),
    Case("resume:missing-optimizer", lambda c: c.run_with_checkpoints(lambda s: (s / "optimizer.bin").unlink()),
         ("step-000003/optimizer.bin: missing: the checkpoint is incomplete",)),
    Case("resume:damaged-latest-names-the-earlier",
         lambda c: c.run_with_checkpoints(intact, lambda s: truncate(s / "optimizer.bin")),
         ("step-000006/optimizer.bin: damaged", "resume from an earlier one with --resume", "step-000003")),
    # --- messages that name the real cause --------------------------------------------------
    Case("report:corrupt-metrics",
         lambda c: ["report", str(c.folder("run", {"metrics.jsonl": '{"step": 1, "d_loss": 1.0}\n\x00\x00garbage\n'
                                                                    '{"step": 2, "d_loss": 0.5}\n'}))],
         ("metrics.jsonl: line 2: not a metrics record", "damaged")),
    Case("report:run-name-too-long", lambda c: ["report", str(c.tmp / LONG)], ("File name too long",)),
    Case("info:model-name-too-long", lambda c: ["info", str(c.tmp / f"{LONG}.safetensors")], ("File name too long",)),
    Case("data-check:nul-in-a-value", lambda c: ["data", "check", str(c.data(NUL_VALUE))],
         ("line 52: value for attribute 'hair' contains a NUL byte",)),
    Case("train:nul-in-a-value", lambda c: c.train(c.data(NUL_VALUE)),
         ("line 52: value for attribute 'hair' contains a NUL byte",)),
    Case("data-check:nul-in-an-image-path", lambda c: ["data", "check", str(c.data(NUL_PATH))],
         ("line 52: input path 'sketches/char\\x00-00.png' contains a NUL byte",)),
    Case("train:nul-in-an-image-path", lambda c: c.train(c.data(NUL_PATH)), ("contains a NUL byte",)),
    Case("data-check:symlink-loop", lambda c: ["data", "check", str(symlink_loop(c))],
         ("line 52: input path 'sketches/loop.png' is a symlink loop",)),
    Case("train:symlink-loop", lambda c: c.train(symlink_loop(c)), ("'sketches/loop.png' is a symlink loop",)),
    Case("data-check:dataset-is-a-symlink-loop",
         lambda c: (os.symlink("b", c.tmp / "a"), os.symlink("a", c.tmp / "b"), ["data", "check", str(c.tmp / "a")])[2],
         ("a: Too many levels of symbolic links (cannot read the dataset)",)),
    Case("data-check:path-too-long", lambda c: ["data", "check", str(c.tmp / LONG)],
         ("File name too long (cannot read the dataset)", "characters)")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_with_one_line_naming_the_path_and_nothing_changed(case, tmp_path, template, monkeypatch):
    ctx = Ctx(tmp_path / "case", template, monkeypatch)
    ctx.tmp.mkdir()
    monkeypatch.chdir(ctx.tmp)
    args = case.args(ctx)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, args)
    output = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}: {output}\n{result.exception!r}"
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and len(errors[0]) < 600, output
    for text in case.expect:
        assert text in output, f"{text!r} not in:\n{output}"
    after = snapshot(tmp_path)
    if case.started:
        before, after = ({k: v for k, v in s.items() if v[0] != 4} | {k: "folder" for k, v in s.items() if v[0] == 4}
                         for s in (before, after))
    assert after == before, "the command changed, created or left files behind"


def test_sample_overwrite_replaces_writable_outputs_only(template, tmp_path, monkeypatch):
    ctx = Ctx(tmp_path, template, monkeypatch)
    first = CliRunner().invoke(cli, ctx.sample())
    assert first.exit_code == 0, first.output
    output = tmp_path / "out" / OUT
    output.write_bytes(b"old")
    assert CliRunner().invoke(cli, ctx.sample()).exit_code == 2 and output.read_bytes() == b"old"
    again = CliRunner().invoke(cli, ctx.sample("--overwrite"))
    assert again.exit_code == 0 and output.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in output.parent.iterdir()) == [OUT]  # no temporary files left


def test_icons_draw_again_over_their_own_set(tmp_path):
    args = ["data", "icons", str(tmp_path / "icons"), "--size", "32", "--characters", "2"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    (tmp_path / "icons" / "sketches" / "char-00.png").unlink()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "icons" / "sketches" / "char-00.png").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["icons"]  # nothing left beside it


def test_icons_on_a_really_full_disk_leave_nothing(small_disk):
    disk = small_disk(64)
    result = CliRunner().invoke(cli, ["data", "icons", str(disk / "set"), "--size", "64", "--characters", "4"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{disk / 'set'}: No space left on device" in result.output
    assert list(disk.iterdir()) == []


def test_a_storage_error_wrapped_by_safetensors_counts_whatever_space_is_left(tmp_path):
    """A checkpoint larger than the whole disk: the write fails with half the disk free."""
    wrapped = RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert write_failure(wrapped, tmp_path).startswith("No space left on device; Error while serializing")
    assert write_failure(RuntimeError("unexpected pos 10 vs 5"), tmp_path) is None  # a bug, not the disk


@pytest.mark.skipif(shutil.which("setpriv") is None and os.geteuid() == 0, reason="needs setpriv to drop root")
def test_a_dataset_owned_by_another_user_is_one_line(template):
    """EACCES, for real: the dataset's Metadata.csv and one image readable by their owner only,
    read by someone else (root runs the command as `nobody`; anyone else as themselves)."""
    root = Path(tempfile.mkdtemp(prefix="colorgan-perm-"))
    try:
        root.chmod(0o755)
        data = shutil.copytree(template / "data", root / "data")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        command = [*prefix, sys.executable, "-m", "colorgan", "data", "check", str(data)]
        env = dict(os.environ, HOME=str(root))
        for private, expect in ((data / "sketches" / "char-00.png", "char-00.png: Permission denied (cannot read image)"),
                                (data / "Metadata.csv", "Metadata.csv: Permission denied (cannot read the dataset)")):
            private.chmod(0o600)
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
            assert expect in done.stdout, done.stdout
    finally:
        shutil.rmtree(root)

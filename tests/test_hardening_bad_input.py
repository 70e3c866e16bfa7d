"""The table of bad inputs: every malformed recipe, dataset, image, model file and CLI argument.

Each case runs one `colorgan` command (through Click's test runner) and must end with exit code 2,
a message that names the problem, no traceback, and no file changed, created or left behind in
the test folder (the command's own --out target included).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from colorgan.cli import cli
from conftest import TINY
from hardening_helpers import bomb_png, marker_plugin, snapshot, tiny_model_file


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A small valid dataset and a valid model file, copied into each case's folder."""
    root = tmp_path_factory.mktemp("template")
    tiny_model_file(root)
    return root


class Ctx:
    """One case's folder: helpers that set up the inputs, all inside `tmp`."""

    def __init__(self, tmp: Path, template: Path) -> None:
        self.tmp, self.template = tmp, template
        self.run = tmp / "run"           # the --out target of train: must never appear
        self.out = tmp / "out"           # the --out target of sample: must never appear

    def data(self, edit: Callable[[Path], None] | None = None) -> Path:
        folder = self.tmp / "data"
        if not folder.exists():
            shutil.copytree(self.template / "data", folder)
        if edit:
            edit(folder)
        return folder

    def csv(self, text: str) -> Path:
        return self.data(lambda d: (d / "Metadata.csv").write_text(text))

    def rows(self, *extra: str, keep: int = 50) -> Path:
        """The dataset's Metadata.csv with only its first `keep` rows, plus `extra` rows."""
        folder = self.data()
        lines = (folder / "Metadata.csv").read_text().splitlines()
        (folder / "Metadata.csv").write_text("\n".join(lines[: keep + 1] + list(extra)) + "\n")
        return folder

    def recipe_data(self, **changes) -> dict:
        data = copy.deepcopy(TINY)
        data["data"] = {"path": str(self.data()), "image_size": 32}
        for dotted, value in changes.items():
            node = data
            *parents, last = dotted.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        return data

    def recipe(self, text: str | None = None, **changes) -> Path:
        path = self.tmp / "recipe.yaml"
        path.write_text(text if text is not None else yaml.safe_dump(self.recipe_data(**changes)))
        return path

    def train(self, *args: str, **changes) -> list[str]:
        return ["train", str(self.recipe(**changes)), "--out", str(self.run), *args]

    def model(self, name: str = "model.safetensors", data: bytes | None = None) -> Path:
        path = self.tmp / name
        if data is None:
            shutil.copyfile(self.template / "model.safetensors", path)
        else:
            path.write_bytes(data)
        return path

    def sketch(self) -> Path:
        path = self.tmp / "sketch.png"
        Image.new("L", (40, 30), 255).save(path)
        return path

    def sample(self, model: Path, *args: str) -> list[str]:
        return ["sample", str(model), str(self.sketch()), "-c", "hair=crimson", "--out", str(self.out), *args]

    def fake_run(self) -> Path:
        """A run folder as training leaves it (recipe + a checkpoints folder), without training."""
        self.run.mkdir()
        (self.run / "recipe.yaml").write_text(yaml.safe_dump(self.recipe_data()))
        (self.run / "checkpoints").mkdir()
        return self.run


def model_with_metadata(ctx: Ctx, name: str, **changes: str) -> Path:
    """A copy of the valid model file with some `colorgan.*` metadata values replaced (raw JSON)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(ctx.template / "model.safetensors"), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    meta.update({f"colorgan.{k}": v for k, v in changes.items()})
    path = ctx.tmp / name
    save_file(tensors, str(path), metadata=meta)
    return path


def evil_model(ctx: Ctx) -> Path:
    """A model file whose recipe needs a component only its listed (importable!) plugin provides."""
    plugin = marker_plugin(ctx.tmp, "hardening_evil_table", ctx.tmp / "imported")
    recipe = dict(ctx.recipe_data(generator__type="evil-unet"), plugins=[plugin])
    return model_with_metadata(ctx, "m.safetensors", recipe=json.dumps(recipe))


def out_under_a_file(ctx: Ctx) -> list[str]:
    """--out below a regular file: the run folder cannot be created (what a read-only disk does too)."""
    (ctx.tmp / "afile").write_text("x")
    return ["train", str(ctx.recipe()), "--out", str(ctx.tmp / "afile" / "run")]


def truncated_model(ctx: Ctx) -> Path:
    data = (ctx.template / "model.safetensors").read_bytes()
    return ctx.model("truncated.safetensors", data[: len(data) // 2])


def plain_safetensors(ctx: Ctx) -> Path:
    import torch
    from safetensors.torch import save_file

    path = ctx.tmp / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    return path


def symlink_out(ctx: Ctx) -> Path:
    """A row naming a symlink inside the folder whose target (a real image) lies outside it."""
    outside = ctx.tmp / "outside.png"
    Image.new("RGB", (32, 32)).save(outside)
    ctx.data(lambda d: (d / "sketches" / "link.png").symlink_to(outside))
    return ctx.rows("sketches/link.png,colored/char-00-blue-olive.png,red,navy")


def replace_image(relative: str, content: Callable[[Path], None]) -> Callable[[Ctx], Path]:
    def setup(ctx: Ctx) -> Path:
        return ctx.data(lambda d: content(d / relative))
    return setup


def truncate_file(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


SKETCH = "sketches/char-00.png"
OUTPUT = "colored/char-00-blue-olive.png"


@dataclass
class Case:
    id: str
    args: Callable[[Ctx], list[str]]
    expect: tuple[str, ...]


def recipe_case(id: str, expect, text: str | None = None, **changes) -> Case:
    return Case(id, lambda c: c.train(**changes) if text is None else
                ["train", str(c.recipe(text)), "--out", str(c.run)], tuple(expect))


def data_cases(id: str, setup: Callable[[Ctx], Path], expect, train_expect=None) -> list[Case]:
    """The same broken dataset through `colorgan data check` and through `colorgan train`."""
    return [
        Case(f"data-check:{id}", lambda c: ["data", "check", str(setup(c))], tuple(expect)),
        Case(f"train:{id}", lambda c: c.train(data__path=str(setup(c))), tuple(train_expect or expect)),
    ]


HEADER = "input,output,hair,shirt"

CASES: list[Case] = [
    # --- recipes ------------------------------------------------------------------------------
    recipe_case("recipe-unknown-top-key", ["epochz: unknown key", "valid keys"], epochz=3),
    recipe_case("recipe-unknown-nested-key", ["train.epocs: unknown key", "did you mean 'epochs'"],
                train__epocs=3),
    recipe_case("recipe-wrong-type", ["train.batch_size: expected an integer, got 'four'"], train__batch_size="four"),
    recipe_case("recipe-bool-for-int", ["train.batch_size: expected an integer, got True"], train__batch_size=True),
    recipe_case("recipe-bad-enum", ["train.mixed_precision: expected one of", "'fp8'"],
                train__mixed_precision="fp8"),
    recipe_case("recipe-missing-type", ["generator.type: missing"], generator={"depth": 5}),
    recipe_case("recipe-unknown-component", ["unknown generator 'unett'", "did you mean 'unet'"],
                generator__type="unett"),
    recipe_case("recipe-unknown-option", ["generator.depthh", "has no option 'depthh'"], generator__depthh=5),
    recipe_case("recipe-framework-option", ["generator.in_channels: set by colorgan itself"],
                generator__in_channels=3),
    recipe_case("recipe-bad-option-value", ["generator", "norm", "fancy"], generator__norm="fancy"),
    recipe_case("recipe-bad-discriminator-option-value", ["discriminator", "norm", "fancy"],
                discriminator__norm="fancy"),
    recipe_case("recipe-image-size-not-fitting", ["data.image_size", "48"], data__image_size=48),
    recipe_case("recipe-image-size-out-of-range", ["data.image_size: expected an integer from 8 to 4096, got 4"], data__image_size=4),
    recipe_case("recipe-section-not-mapping", ["train: expected a mapping, got 'fast'"], train="fast"),
    recipe_case("recipe-no-length", ["train: set train.epochs or train.max_steps"], train__max_steps=None),
    recipe_case("recipe-zero-batch", ["train.batch_size: expected an integer >= 1, got 0"], train__batch_size=0),
    recipe_case("recipe-negative-lr", ["optimizer.lr", "-1.0"], optimizer={"lr": -1.0}),
    recipe_case("recipe-bad-betas", ["optimizer.betas: expected a list of 2 items", "got a list of 1"], optimizer={"betas": [0.5]}),
    recipe_case("recipe-holdout-fraction", ["data.holdout.fraction: expected a number in (0, 1), got 1.5"],
                data__holdout={"kind": "combinations", "fraction": 1.5}),
    recipe_case("recipe-holdout-kind", ["data.holdout.kind: expected one of"], data__holdout="random"),
    recipe_case("recipe-holdout-count", ["data.holdout.count: 5 characters cannot be held out of 2"],
                data__holdout={"kind": "characters", "count": 5}),
    recipe_case("recipe-unknown-tracker", ["log.with", "'mlflow'"], log={"with": ["jsonl", "mlflow"]}),
    recipe_case("recipe-missing-plugin", ["plugins: recipe plugin 'no_such_plugin_xyz' failed to import"],
                plugins=["no_such_plugin_xyz"]),
    recipe_case("recipe-bad-yaml", ["not valid YAML at line"], text="train: [1, 2\nseed: 0\n"),
    recipe_case("recipe-tab-yaml", ["not valid YAML"], text="train:\n\tepochs: 2\n"),
    recipe_case("recipe-top-level-list", ["expected a mapping at the top level"], text="- 1\n- 2\n"),
    recipe_case("recipe-python-tag", ["not valid YAML", "python/object/apply:os.system"],
                text="seed: !!python/object/apply:os.system ['echo pwned']\n"),
    Case("recipe-not-utf8", lambda c: ["train", str(c.model("recipe.yaml", b"seed: \xff\xfe\n")), "--out", str(c.run)],
         ("cannot read recipe",)),
    Case("recipe-missing-file", lambda c: ["train", str(c.tmp / "nope.yaml"), "--out", str(c.run)],
         ("nope.yaml: recipe file not found",)),
    Case("recipe-is-a-directory", lambda c: ["train", str(c.data()), "--out", str(c.run)], ("cannot read recipe",)),
    Case("recipe-check-unknown-key", lambda c: ["recipe", "check", str(c.recipe(train__epocs=1))],
         ("train.epocs: unknown key",)),
    # --- recipe values: each key's range, checked before anything is written (recipe.check_values)
    recipe_case("recipe-negative-max-steps", ["train.max_steps: expected an integer >= 1, got -5"], train__max_steps=-5),
    recipe_case("recipe-zero-epochs", ["train.epochs: expected an integer >= 1, got 0"],
                train__epochs=0, train__max_steps=None),
    Case("recipe-check-negative-max-steps", lambda c: ["recipe", "check", str(c.recipe(train__max_steps=-5))],
         ("train.max_steps: expected an integer >= 1, got -5",)),
    recipe_case("recipe-decay-start", ["train.decay_start: expected a number in [0, 1], got 1.5"], train__decay_start=1.5),
    recipe_case("recipe-holdout-fraction-zero", ["data.holdout.fraction: expected a number in (0, 1), got 0.0"],
                data__holdout={"kind": "combinations", "fraction": 0.0}),
    recipe_case("recipe-condition-dropout", ["condition.dropout: expected a number in [0, 1), got 1.0"],
                condition={"type": "onehot", "dropout": 1.0}),
    recipe_case("recipe-generator-dropout", ["generator.dropout: expected a number in [0, 1), got -0.1"],
                generator__dropout=-0.1),
    recipe_case("recipe-inf-l1-weight", ["objective[1].weight: expected a finite number, got inf"],
                train__l1_weight=float("inf")),
    recipe_case("recipe-nan-l1-weight", ["objective[1].weight: expected a finite number, got nan"],
                train__l1_weight=float("nan")),
    recipe_case("recipe-negative-l1-weight", ["objective[1].weight: expected a finite number >= 0, got -1.0"], train__l1_weight=-1.0),
    recipe_case("recipe-nan-lr", ["optimizer.lr: expected a finite number, got nan"], optimizer={"lr": float("nan")}),
    recipe_case("recipe-beta-out-of-range", ["optimizer.betas[1]: expected a number in [0, 1), got 1.0"],
                optimizer={"betas": [0.5, 1.0]}),
    recipe_case("recipe-ema-nan", ["train.ema: expected a finite number, got nan"], train__ema=float("nan")),
    recipe_case("recipe-ema-above-one", ["train.ema: expected a number in (0, 1), got 1.5"], train__ema=1.5),
    recipe_case("recipe-ema-one", ["train.ema: expected a number in (0, 1), got 1.0"], train__ema=1.0),
    recipe_case("recipe-seed-negative", ["seed: expected an integer from 0 to 4294967295, got -1"], seed=-1),
    recipe_case("recipe-seed-huge", ["seed: expected an integer from 0 to 4294967295, got 99999999999"],
                seed=99999999999),
    recipe_case("recipe-icons-seed-negative", ["data.icons.seed: expected an integer from 0 to 4294967295"],
                data__icons={"seed": -1}),
    recipe_case("recipe-icons-no-characters", ["data.icons.characters: expected an integer >= 1, got 0"],
                data__icons={"characters": 0}),
    recipe_case("recipe-holdout-count-zero", ["data.holdout.count: expected an integer >= 1, got 0"],
                data__holdout={"kind": "characters", "count": 0}),
    recipe_case("recipe-threads-negative", ["train.threads: expected an integer from 1 to 4096, got -2"],
                train__threads=-2),
    recipe_case("recipe-threads-zero", ["train.threads: expected an integer from 1 to 4096, got 0"], train__threads=0),
    recipe_case("recipe-grad-clip-negative", ["train.grad_clip: expected a number > 0, got -1.0"], train__grad_clip=-1.0),
    recipe_case("recipe-grad-clip-zero", ["train.grad_clip: expected a number > 0, got 0.0"], train__grad_clip=0.0),
    recipe_case("recipe-dist-timeout-huge", ["train.dist_timeout: expected a number in (0, 604800]"],
                train__dist_timeout=1e300),
    recipe_case("recipe-keep-best-misspelt", ["train.keep_best: expected a metric validation logs", "got 'val_l2'"],
                train__keep_best="val_l2"),
    recipe_case("recipe-keep-best-unknown-attribute", ["train.keep_best: the data has no attribute 'hat'"],
                train__keep_best="val_condition_error_hat"),
    recipe_case("recipe-keep-best-without-validation", ["train.keep_best: there is no validation"],
                train__keep_best="val_l1", data__holdout="none"),
    recipe_case("recipe-empty-data-path", ["data.path: expected a non-empty string", "got ''"], data__path=""),
    recipe_case("recipe-name-leaves-runs", ["name: expected one folder name", "got '../x'"], name="../x"),
    Case("recipe-name-leaves-runs-by-default", lambda c: ["train", str(c.recipe(name="../escaped"))],
         ("name: expected one folder name",)),
    recipe_case("recipe-name-slash", ["name: expected one folder name", "got 'a/b'"], name="a/b"),
    recipe_case("recipe-name-backslash", ["name: expected one folder name"], name="a\\b"),
    recipe_case("recipe-name-dotdot", ["name: expected one folder name", "got '..'"], name=".."),
    recipe_case("recipe-name-empty", ["name: expected one folder name", "got ''"], name=""),
    recipe_case("recipe-name-too-long", ["name: expected one folder name", "..."], name="x" * 100_000),
    recipe_case("recipe-nul-in-name", ["name: expected text without NUL bytes"], name="a\0b"),
    recipe_case("recipe-nul-in-data-path", ["data.path: expected text without NUL bytes"], data__path="data\0x"),
    recipe_case("recipe-nul-in-option", ["generator.norm: expected text without NUL bytes"], generator__norm="batch\0"),
    recipe_case("recipe-duplicate-key", ["not valid YAML at line 3: duplicate key 'epochs' (first at line 2)"],
                text="train:\n  epochs: 1\n  epochs: 2\n"),
    recipe_case("recipe-duplicate-top-key", ["line 2: duplicate key 'seed'"], text="seed: 1\nseed: 2\n"),
    recipe_case("recipe-alias", ["not valid YAML at line 2: aliases (*name) are not allowed"],
                text="a: &x 1\nseed: *x\n"),
    # "billion laughs": nine levels of aliases stand for 10**9 strings; refused before any expansion
    recipe_case("recipe-billion-laughs", ["aliases (*name) are not allowed"],
                text='a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
                    f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))),
    recipe_case("recipe-nested-too-deeply", ["not valid YAML: nested too deeply"],
                text="seed: " + "[" * 5000 + "]" * 5000 + "\n"),
    Case("override-alias", lambda c: c.train("-o", "optimizer.betas=[&b 0.5, *b]"), ("aliases (*name) are not allowed",)),
    Case("override-duplicate-key", lambda c: c.train("-o", "train={epochs: 1, epochs: 2}"), ("duplicate key 'epochs'",)),
    # --- model sizes: arithmetic on the options, never a network built to find out (model_size)
    recipe_case("recipe-huge-depth", ["generator.depth: expected an integer from 1 to 12, got 1000000000"],
                generator__depth=10**9),
    recipe_case("recipe-huge-channels", ["generator.base_channels: expected an integer from 1 to 65536, got 10000000"],
                generator__base_channels=10**7),
    recipe_case("recipe-huge-embedding", ["condition.dim: expected an integer from 1 to 65536"],
                condition={"type": "embedding", "dim": 10**7}),
    recipe_case("recipe-huge-scales", ["discriminator.scales: expected an integer from 1 to 8, got 100"],
                discriminator={"type": "multiscale", "scales": 100}),
    recipe_case("recipe-huge-timm-option", ["generator.encoder_options.depth: expected a number in [-4096, 4096]"],
                generator={"type": "timm-unet", "encoder_options": {"depth": 10**5}}),
    recipe_case("recipe-too-many-parameters", ["generator (resnet, base_channels 60000)", "parameters, more than the",
                                               "COLORGAN_MAX_PARAMETERS"],
                generator={"type": "resnet", "base_channels": 60000}),
    recipe_case("recipe-too-much-activation", ["train.batch_size 10000000 at data.image_size 32", "GB of activations",
                                               "COLORGAN_MAX_ACTIVATION_GB"], train__batch_size=10**7),
    recipe_case("recipe-group-norm-width", ["generator.norm: group norm needs channel counts below 32 or multiples"],
                generator__norm="group", generator__base_channels=48, generator__max_channels=96),
    Case("override-no-equals", lambda c: c.train("-o", "train.epochs"), ("expected key.path=value",)),
    Case("override-empty-key", lambda c: c.train("-o", "=5"), ("expected key.path=value",)),
    Case("override-bad-yaml", lambda c: c.train("-o", "train.betas=[1"), ("value is not valid YAML",)),
    Case("override-not-a-section", lambda c: c.train("-o", "seed.x=1"), ("seed is not a section",)),
    Case("override-unknown-key", lambda c: c.train("-o", "train.nope=1"), ("train.nope: unknown key",)),
    Case("override-wrong-type", lambda c: c.train("-o", "train.max_steps=many"),
         ("train.max_steps: expected an integer or null, got 'many'",)),
    # --- datasets -----------------------------------------------------------------------------
    *data_cases("missing-folder", lambda c: c.tmp / "no-such-data", ["dataset folder not found"]),
    *data_cases("missing-csv", lambda c: c.data(lambda d: (d / "Metadata.csv").unlink()),
                ["Metadata.csv: not found"]),
    *data_cases("empty-csv", lambda c: c.csv(""), ["Metadata.csv: empty file"]),
    *data_cases("header-only", lambda c: c.csv(HEADER + "\n"), ["has a header but no rows"]),
    *data_cases("missing-output-column", lambda c: c.csv("input,hair\nsketches/char-00.png,red\n"),
                ["missing column 'output'"]),
    *data_cases("no-condition-column", lambda c: c.csv(f"input,output\n{SKETCH},{OUTPUT}\n"),
                ["no condition column"]),
    *data_cases("duplicate-column", lambda c: c.csv(f"input,output,hair,hair\n{SKETCH},{OUTPUT},a,b\n"),
                ["column 'hair' appears twice"]),
    *data_cases("wrong-field-count", lambda c: c.rows(f"{SKETCH},{OUTPUT},red"),
                ["line 52: 3 fields, but the header has 4"]),
    *data_cases("not-utf8-csv", lambda c: c.data(lambda d: (d / "Metadata.csv").write_bytes(b"input,output,h\xff\n")),
                ["not UTF-8"]),
    *data_cases("missing-image", lambda c: c.rows(f"sketches/nope.png,{OUTPUT},red,navy"),
                ["line 52: input image 'sketches/nope.png' not found"]),
    *data_cases("path-escapes-with-dotdot", lambda c: c.rows(f"../recipe.yaml,{OUTPUT},red,navy"),
                ["path '../recipe.yaml' leaves the dataset folder"]),
    *data_cases("absolute-path", lambda c: c.rows(f"{SKETCH},/etc/passwd,red,navy"),
                ["path '/etc/passwd' leaves the dataset folder"]),
    *data_cases("symlink-leaves-folder", symlink_out, ["path 'sketches/link.png' leaves the dataset folder"]),
    *data_cases("conflicting-duplicates", lambda c: c.rows(f"{SKETCH},colored/char-00-crimson-olive.png,blue,olive"),
                ["same input and conditions as line", "different output"]),
    *data_cases("empty-attribute-value", lambda c: c.rows(f"{SKETCH},{OUTPUT},,olive"),
                ["line 52: empty value for attribute 'hair'"]),
    *data_cases("bad-split-value", lambda c: c.csv(f"{HEADER},split\n{SKETCH},{OUTPUT},blue,olive,validation\n"),
                ["split 'validation' is not one of train, test"]),
    *data_cases("truncated-png", replace_image(OUTPUT, truncate_file), [OUTPUT.split("/")[1], "cannot decode image"]),
    *data_cases("zero-byte-image", replace_image(SKETCH, lambda p: p.write_bytes(b"")),
                ["char-00.png: not an image Pillow can read"]),
    *data_cases("text-as-image", replace_image(SKETCH, lambda p: p.write_text("hello")),
                ["char-00.png: not an image Pillow can read"]),
    # a PNG header claiming 100000 x 100000: Pillow's own bomb guard refuses it on open
    *data_cases("decompression-bomb", replace_image(SKETCH, bomb_png),
                ["char-00.png: refused as a possible decompression bomb"]),
    # 9000 x 9000 is under Pillow's guard but over colorgan's MAX_PIXELS: refused before decoding
    *data_cases("image-over-max-pixels", replace_image(SKETCH, lambda p: bomb_png(p, 9000, 9000)),
                ["char-00.png: image is 9000x9000, more than the 67108864 pixels allowed"]),
    # datasets that are well-formed but cannot be trained on as the recipe asks
    Case("train:one-character-held-out", lambda c: c.train(data__path=str(c.rows(keep=25)),
                                                          data__holdout={"kind": "characters", "count": 1}),
         ("single character",)),
    Case("train:too-small-for-split", lambda c: c.train(data__path=str(c.rows(keep=1))),
         ("no attribute combination can be held out",)),
    Case("train:too-small-for-a-batch", lambda c: c.train(data__path=str(c.rows(keep=3)), data__holdout="none"),
         ("3 training rows, fewer than one batch",)),
    # --- train command-line arguments -----------------------------------------------------------
    Case("train:resume-without-out", lambda c: ["train", str(c.recipe()), "--resume", "latest"],
         ("--resume needs --out RUN",)),
    Case("train:resume-no-checkpoint", lambda c: c.train("--resume", "latest"), ("no checkpoint to resume from",)),
    Case("train:resume-not-a-checkpoint", lambda c: c.train("--resume", str(c.data())),
         ("not a checkpoint folder",)),
    Case("train:existing-run-without-flag", lambda c: (c.fake_run(), c.train())[1], ("already holds a run",)),
    Case("train:overwrite-a-foreign-folder",
         lambda c: (c.run.mkdir(), (c.run / "thesis.tex").write_text("x"), c.train("--overwrite"))[2],
         ("is not a colorgan run; refusing to --overwrite",)),
    Case("train:out-parent-is-a-file", out_under_a_file, ("cannot create the run folder", "afile")),
    Case("train:stop-at-zero", lambda c: c.train("--stop-at", "0"), ("--stop-at", "0")),
    Case("train:stop-at-not-a-number", lambda c: c.train("--stop-at", "ten"), ("--stop-at", "'ten'")),
    Case("train:unknown-option", lambda c: c.train("--epochs", "3"), ("No such option '--epochs'",)),
    Case("train:no-recipe", lambda c: ["train"], ("Missing argument 'RECIPE'",)),
    Case("unknown-command", lambda c: ["trian"], ("No such command 'trian'",)),
    # --- model files ------------------------------------------------------------------------------
    Case("info:not-found", lambda c: ["info", str(c.tmp / "nope.safetensors")], ("model file not found",)),
    *[Case(f"info:pickle-suffix{s}", lambda c, s=s: ["info", str(c.model(f"model{s}"))],
           ("pickle-based model files are refused",)) for s in (".pt", ".pth", ".bin", ".ckpt", ".pkl")],
    Case("sample:pickle-suffix", lambda c: c.sample(c.model("model.pt")), ("pickle-based model files are refused",)),
    Case("info:not-colorgan", lambda c: ["info", str(plain_safetensors(c))], ("not a colorgan model",)),
    Case("sample:not-colorgan", lambda c: c.sample(plain_safetensors(c)), ("not a colorgan model",)),
    Case("info:truncated", lambda c: ["info", str(truncated_model(c))], ("not a readable safetensors file",)),
    Case("sample:truncated", lambda c: c.sample(truncated_model(c)), ("not a readable safetensors file",)),
    Case("info:random-bytes", lambda c: ["info", str(c.model(data=os.urandom(4096)))],
         ("not a readable safetensors file",)),
    Case("sample:empty-file", lambda c: c.sample(c.model(data=b"")), ("not a readable safetensors file",)),
    Case("info:a-directory", lambda c: ["info", str(c.data())], ("is a folder, not a model file",)),
    Case("info:future-format", lambda c: ["info", str(model_with_metadata(c, "m.safetensors", format_version="99"))],
         ("model format version 99 is newer",)),
    Case("info:metadata-not-json", lambda c: ["info", str(model_with_metadata(c, "m.safetensors", recipe="{oops"))],
         ("damaged colorgan metadata",)),
    Case("info:metadata-wrong-shape", lambda c: ["info", str(model_with_metadata(c, "m.safetensors", recipe="[1, 2]"))],
         ("damaged colorgan metadata", "recipe")),
    Case("sample:metadata-wrong-shape", lambda c: c.sample(model_with_metadata(c, "m.safetensors", schema='"x"')),
         ("damaged colorgan metadata", "schema")),
    Case("sample:unknown-component", lambda c: c.sample(evil_model(c)),
         ("unknown generator 'evil-unet'", "hardening_evil_table")),
    Case("sample:bad-condition", lambda c: c.sample(c.model(), "-c", "shirt"), ("expected ATTRIBUTE=VALUE",)),
    Case("sample:unknown-condition-value", lambda c: ["sample", str(c.model()), str(c.sketch()),
                                                      "-c", "hair=plaid", "--out", str(c.out)], ("plaid",)),
    Case("sample:unknown-attribute", lambda c: ["sample", str(c.model()), str(c.sketch()),
                                                "-c", "hat=red", "--out", str(c.out)], ("hat",)),
    Case("sample:missing-input", lambda c: ["sample", str(c.model()), str(c.tmp / "nope.png"),
                                            "-c", "hair=crimson", "--out", str(c.out)], ("no such file",)),
    Case("sample:input-not-an-image", lambda c: ["sample", str(c.model()), str(c.model("notes.png", b"hello")),
                                                 "-c", "hair=crimson", "--out", str(c.out)], ("notes.png",)),
    Case("sample:bad-device", lambda c: c.sample(c.model(), "--device", "toaster"), ("--device toaster",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_a_clear_message_and_touches_nothing(case, tmp_path, template, monkeypatch):
    ctx = Ctx(tmp_path / "case", template)
    ctx.tmp.mkdir()
    monkeypatch.chdir(ctx.tmp)  # a default output folder (runs/, samples/) would land here and be seen
    monkeypatch.syspath_prepend(str(ctx.tmp))  # plugins written here are importable: nothing may import them
    args = case.args(ctx)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, args)
    output = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}: {output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    for text in case.expect:
        assert text in output, f"{text!r} not in:\n{output}"
    assert snapshot(tmp_path) == before, "the command changed, created or left files behind"
    assert not ctx.run.exists() or case.id == "train:existing-run-without-flag" or "foreign" in case.id
    assert not ctx.out.exists()
    assert not (ctx.tmp / "imported").exists(), "a plugin named by a model file was imported"


def test_the_table_is_big_enough():
    assert len(CASES) >= 40

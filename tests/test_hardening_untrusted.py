"""Files a stranger hands us never run code: model files, recipes, datasets, images.

Each test plants something that would leave a marker file if it ran (a pickle with a __reduce__,
a YAML python tag, a plugin module that writes on import) and checks that it is refused with a
clear message and that the marker never appears.
"""

from __future__ import annotations

import ast
import json
import pickle
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import save_file

from colorgan import checkpoint
from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.data.images import MAX_PIXELS, open_image
from colorgan.errors import DataError, ModelFileError, RecipeError
from colorgan.inference import Colorizer
from hardening_helpers import bomb_png, marker_plugin, tiny_model_file

REPO = Path(__file__).resolve().parents[1]


class _Payload:
    """Unpickling this writes a marker file: the proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def malicious_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"weight": _Payload(marker)}))
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A real (untrained) colorgan model file over a tiny icon dataset."""
    return tiny_model_file(tmp_path_factory.mktemp("untrusted"))


def with_recipe(source: Path, target: Path, change) -> Path:
    """A copy of `source` whose metadata recipe went through `change(recipe_dict)`."""
    with safe_open(str(source), framework="pt") as f:
        meta = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    recipe = json.loads(meta["colorgan.recipe"])
    change(recipe)
    meta["colorgan.recipe"] = json.dumps(recipe)
    save_file(tensors, str(target), metadata=meta)
    return target


# --- model files ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".ckpt", ".pkl", ".PT"])
def test_pickle_model_files_are_refused_without_unpickling(tmp_path, suffix):
    marker = tmp_path / "marker"
    path = malicious_pickle(tmp_path / f"model{suffix}", marker)
    for load in (checkpoint.load, Colorizer.load, checkpoint.read_metadata):
        with pytest.raises(ModelFileError, match="pickle-based model files are refused"):
            load(path)
    for args in (["info", str(path)], ["sample", str(path), str(path), "-c", "hair=red", "--out", str(tmp_path / "o")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and "pickle-based model files are refused" in result.output
    assert not marker.exists(), "a pickle was unpickled"


def test_a_pickle_renamed_to_safetensors_is_not_unpickled(tmp_path):
    marker = tmp_path / "marker"
    path = malicious_pickle(tmp_path / "model.safetensors", marker)
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        checkpoint.load(path)
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 2 and "not a readable safetensors file" in result.output
    assert not marker.exists()


def test_a_model_file_does_not_import_the_plugins_its_metadata_names(tmp_path, model_file, monkeypatch):
    """The metadata recipe lists an importable module and needs a component only it provides:
    loading names the missing component and the plugin, and imports nothing."""
    marker = tmp_path / "imported"
    module = marker_plugin(tmp_path, "hardening_evil_plugin", marker)
    monkeypatch.syspath_prepend(str(tmp_path))

    def needs_plugin(recipe):
        recipe["plugins"] = [module]
        recipe["generator"]["type"] = "evil-unet"

    path = with_recipe(model_file, tmp_path / "evil.safetensors", needs_plugin)
    with pytest.raises(ModelFileError) as err:
        checkpoint.load(path)
    message = str(err.value)
    assert "unknown generator 'evil-unet'" in message and module in message and "never import plugins" in message
    info = CliRunner().invoke(cli, ["info", str(path)])  # describes the metadata, builds nothing
    assert info.exit_code == 0 and "evil-unet" in info.output
    sample = CliRunner().invoke(cli, ["sample", str(path), str(tmp_path / "x.png"), "-c", "hair=gold"])
    assert sample.exit_code == 2 and "unknown generator 'evil-unet'" in sample.output
    assert not marker.exists() and module not in sys.modules, "a plugin named by a model file was imported"


def test_a_model_file_listing_plugins_loads_when_its_components_are_known(tmp_path, model_file, monkeypatch):
    """Listing plugins is not itself an error: known components load, the module stays unimported."""
    marker = tmp_path / "imported"
    module = marker_plugin(tmp_path, "hardening_listed_plugin", marker)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = with_recipe(model_file, tmp_path / "listed.safetensors", lambda r: r.update(plugins=[module]))
    generator, recipe, _ = checkpoint.load(path)
    assert recipe.plugins == [module] and not generator.training
    assert not marker.exists() and module not in sys.modules


def test_a_plugin_the_user_imported_is_used(tmp_path, model_file, monkeypatch, request):
    """Trust is the user's to give: once they import the plugin themselves, the model loads."""
    from colorgan.registry import GENERATORS

    monkeypatch.setattr(GENERATORS, "_entries", GENERATORS.entries())  # forget the plugin afterwards
    request.addfinalizer(lambda: sys.modules.pop("hardening_trusted_plugin", None))
    (tmp_path / "hardening_trusted_plugin.py").write_text(
        "from colorgan.registry import GENERATORS\n"
        "GENERATORS.register('hardening-trusted-unet')(GENERATORS.get('unet'))\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def needs_plugin(recipe):
        recipe["plugins"] = ["hardening_trusted_plugin"]
        recipe["generator"]["type"] = "hardening-trusted-unet"

    path = with_recipe(model_file, tmp_path / "trusted.safetensors", needs_plugin)
    with pytest.raises(ModelFileError, match="hardening-trusted-unet"):
        checkpoint.load(path)
    import hardening_trusted_plugin  # noqa: F401 - the user's decision

    generator, _, _ = checkpoint.load(path)
    reference, _, _ = checkpoint.load(model_file)
    for (k, a), (_, b) in zip(generator.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), k


# --- recipes ------------------------------------------------------------------------------------

PYTHON_TAGS = [
    "seed: !!python/object/apply:pathlib.Path.touch [{marker}]\n",
    "!!python/object/new:pathlib.PosixPath [{marker}]\n",
    "name: !!python/name:os.system\n",
]


@pytest.mark.parametrize("text", PYTHON_TAGS, ids=["apply", "new", "name"])
def test_yaml_python_tags_are_refused(tmp_path, text):
    marker = tmp_path / "marker"
    path = tmp_path / "recipe.yaml"
    path.write_text(text.format(marker=json.dumps(str(marker))))
    with pytest.raises(RecipeError, match="not valid YAML"):
        recipes.load(path)
    result = CliRunner().invoke(cli, ["recipe", "check", str(path)])
    assert result.exit_code == 2 and "could not determine a constructor" in result.output
    assert not marker.exists()


def test_a_run_folder_recipe_with_a_python_tag_is_refused_on_resume(tmp_path, write_recipe, tiny_recipe):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    (run / "checkpoints" / "step-000001").mkdir(parents=True)
    (run / "recipe.yaml").write_text(f"seed: !!python/object/apply:os.system [\"touch {marker}\"]\n")
    result = CliRunner().invoke(cli, ["train", str(write_recipe(tiny_recipe)), "--out", str(run), "--resume", "latest"])
    assert result.exit_code == 2, result.output
    assert "cannot read the run's recipe" in result.output and "Traceback" not in result.output
    assert not marker.exists()


def test_metadata_recipe_is_data_not_code(tmp_path, model_file):
    """The recipe inside a model file is JSON, read with json.loads: a YAML tag in it is a string."""
    def tagged(recipe):  # (not in `name`: a run name may not hold a '/')
        recipe["log"]["project"] = "!!python/object/apply:os.system ['touch marker']"

    path = with_recipe(model_file, tmp_path / "tagged.safetensors", tagged)
    _, recipe, _ = checkpoint.load(path)
    assert recipe.log.project.startswith("!!python")


# --- datasets and images ------------------------------------------------------------------------


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    for size, message in [((100_000, 100_000), "decompression bomb"),
                          ((9000, 9000), f"image is 9000x9000, more than the {MAX_PIXELS} pixels allowed")]:
        path = bomb_png(tmp_path / f"bomb-{size[0]}.png", *size)
        assert path.stat().st_size < 200
        with pytest.raises(DataError, match=message):
            open_image(path)


def test_dataset_paths_cannot_leave_the_folder(tmp_path):
    """`..`, absolute paths and symlinks (file or folder) out of the dataset are refused."""
    from colorgan.data.metadata import resolve_image

    folder, outside = tmp_path / "data", tmp_path / "outside"
    (folder / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    (folder / "inside.png").write_bytes(b"x")
    (folder / "link.png").symlink_to(outside / "secret.png")
    (folder / "linkdir").symlink_to(outside)
    (folder / "sub" / "ok.png").symlink_to(folder / "inside.png")
    for bad in ["../outside/secret.png", "sub/../../outside/secret.png", str(outside / "secret.png"),
                "/etc/passwd", "C:/Windows/win.ini", "..\\outside\\secret.png", "link.png", "linkdir/secret.png"]:
        assert resolve_image(folder, bad) is None, bad
    assert resolve_image(folder, "inside.png") == (folder / "inside.png").resolve()
    assert resolve_image(folder, "sub/ok.png") == (folder / "inside.png").resolve()  # link that stays inside


# --- the source tree ------------------------------------------------------------------------------

# Calls that deserialize code or evaluate strings. `torch.load` is allowed in exactly one form,
# `weights_only=True` (PyTorch's restricted unpickler: tensors and plain containers, no code),
# used to read the EMA weights of our own run folder's checkpoint (Accelerate pickles custom
# objects); model files never go through it.
FORBIDDEN_ATTRS = {("torch", "load"), ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
                   ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"), ("yaml", "load_all"),
                   ("yaml", "unsafe_load_all"), ("yaml", "full_load_all"), ("marshal", "loads"),
                   ("dill", "load"), ("dill", "loads"), ("joblib", "load"), ("numpy", "load"), ("np", "load")}
FORBIDDEN_NAMES = {"eval", "exec", "compile", "__import__"}


def dangerous_calls(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "marshal", "dill"):
            found.append((node.lineno, f"from {node.module} import ..."))
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES:
            found.append((node.lineno, f"{func.id}("))
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            pair = (func.value.id, func.attr)
            if pair not in FORBIDDEN_ATTRS:
                continue
            safe = pair == ("torch", "load") and any(
                k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in node.keywords)
            if not safe:
                found.append((node.lineno, f"{pair[0]}.{pair[1]}("))
    return found


def test_the_source_tree_never_unpickles_or_evaluates():
    files = sorted((REPO / "colorgan").rglob("*.py")) + sorted((REPO / "registry").rglob("*.py"))
    assert len(files) > 20
    problems = [f"{f.relative_to(REPO)}:{line}: {what}" for f in files
                for line, what in dangerous_calls(f.read_text(encoding="utf-8"))]
    assert not problems, "code that can run what a file says:\n" + "\n".join(problems)


def test_the_scanner_finds_what_it_looks_for():
    bad = ("import torch, pickle, yaml\ntorch.load(p)\ntorch.load(p, weights_only=False)\npickle.loads(b)\n"
           "yaml.load(t, Loader=yaml.Loader)\neval('1')\nexec('x=1')\nfrom pickle import loads\n")
    assert sorted(line for line, _ in dangerous_calls(bad)) == [2, 3, 4, 5, 6, 7, 8]
    assert dangerous_calls("torch.load(p, weights_only=True)\nmodel.eval()\nyaml.safe_load(t)\n") == []

"""Model files: export from a run or a checkpoint, round trip, metadata, and files that are refused."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from colorgan import checkpoint, model_file
from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.errors import ModelFileError
from colorgan.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run with an EMA, shared by the module (trains in a few seconds)."""
    from conftest import TINY

    data = json.loads(json.dumps(TINY))
    data["train"]["ema"] = 0.9
    return train(recipes.from_dict(data), out=tmp_path_factory.mktemp("export") / "run").run


def outputs(generator, seed=0):
    """The generator's output for a fixed random sketch and every hair value."""
    schema = generator.condition.schema
    hair, shirt = schema.values("hair"), schema.values("shirt")
    conds = [{"hair": h, "shirt": shirt[i % len(shirt)]} for i, h in enumerate(hair)]
    sketch = torch.rand(len(conds), 1, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.no_grad():
        return generator(sketch, generator.encode(conds))[0]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def rewrite(src, dst, metadata=None, tensors=None):
    """Copy a model file with changed metadata / tensors (safetensors' own writer)."""
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
    meta.update(metadata or {})
    save_file(tensors if tensors is not None else load_file(str(src)), str(dst), metadata=meta)
    return dst


def test_export_round_trip_gives_identical_outputs(run, tmp_path):
    generator, recipe, schema = checkpoint.load(run / "model.safetensors")
    path = checkpoint.export(generator, recipe, schema, tmp_path / "again.safetensors")
    again, recipe2, schema2 = checkpoint.load(path)
    assert recipe2 == recipe and schema2 == schema and not again.training
    assert torch.equal(outputs(generator), outputs(again))


def test_metadata_carries_recipe_schema_size_channels_and_version(run):
    meta = checkpoint.read_metadata(run / "model.safetensors")
    assert meta["format_version"] == model_file.FORMAT_VERSION
    assert meta["recipe"] == recipes.load(run / "recipe.yaml").to_dict()
    assert meta["schema"]["hair"] == ["blue", "crimson", "darkgreen", "deepskyblue", "gold"]
    assert list(meta["schema"]) == ["hair", "shirt"] and len(meta["schema"]["shirt"]) == 5
    assert meta["image_size"] == 32 and meta["channels"] == {"sketch": 1, "image": 3}


def test_cli_export_from_run_folder_is_the_runs_model(run, tmp_path):
    result = invoke("export", run, tmp_path / "m.safetensors")
    assert result.exit_code == 0, result.output
    assert "m.safetensors" in result.output
    a, b = load_file(str(run / "model.safetensors")), load_file(str(tmp_path / "m.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_export_from_checkpoint_prefers_the_ema_weights(run, tmp_path):
    step6 = run / "checkpoints" / "step-000006"
    result = invoke("export", step6, tmp_path / "ckpt.safetensors")
    assert result.exit_code == 0, result.output
    final = checkpoint.load(run / "model.safetensors")[0]        # training exports the EMA
    from_ckpt, recipe, _ = checkpoint.load(tmp_path / "ckpt.safetensors")
    assert torch.equal(outputs(final), outputs(from_ckpt))
    raw = load_file(str(step6 / "model.safetensors"))            # the non-averaged generator
    ema = load_file(str(tmp_path / "ckpt.safetensors"))
    assert raw.keys() == ema.keys() and any(not torch.equal(raw[k], ema[k]) for k in raw)
    assert checkpoint.read_metadata(tmp_path / "ckpt.safetensors")["recipe"] == recipe.to_dict()


def test_export_from_unfinished_run_uses_its_latest_checkpoint(run, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(run, partial, ignore=shutil.ignore_patterns("model.safetensors", "step-000006"))
    shutil.copytree(run / "checkpoints" / "step-000006", partial / "checkpoints" / "step-000006",
                    ignore=shutil.ignore_patterns("ema.safetensors"))   # no EMA there
    out = checkpoint.export_from_run(partial, tmp_path / "latest.safetensors")
    want = load_file(str(run / "checkpoints" / "step-000006" / "model.safetensors"))
    got = load_file(str(out))
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


def test_export_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "nothing").mkdir()
    result = invoke("export", tmp_path / "nothing", tmp_path / "m.safetensors")
    assert result.exit_code == 2
    assert "not a run folder" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.safetensors").exists()


# --- refused files -------------------------------------------------------------------------------


def test_plain_safetensors_is_not_a_colorgan_model(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="not a colorgan model"):
        checkpoint.load(path)


def test_newer_format_version_is_refused(run, tmp_path):
    path = rewrite(run / "model.safetensors", tmp_path / "future.safetensors",
                   {"colorgan.format_version": json.dumps(model_file.FORMAT_VERSION + 1)})
    with pytest.raises(ModelFileError, match="newer than this colorgan reads.*upgrade"):
        checkpoint.load(path)


def test_unknown_component_is_refused_naming_it(run, tmp_path):
    meta = checkpoint.read_metadata(run / "model.safetensors")
    meta["recipe"]["generator"] = {"type": "warp-unet", "depth": 5}
    path = rewrite(run / "model.safetensors", tmp_path / "plugin.safetensors",
                   {"colorgan.recipe": json.dumps(meta["recipe"])})
    with pytest.raises(ModelFileError, match="warp-unet") as err:
        checkpoint.load(path)
    assert "plugin" in str(err.value)


@pytest.mark.parametrize("keep", [40, -200])
def test_truncated_file_is_refused(run, tmp_path, keep):
    data = (run / "model.safetensors").read_bytes()
    path = tmp_path / "cut.safetensors"
    path.write_bytes(data[:keep])
    with pytest.raises(ModelFileError, match="truncated|not a readable safetensors"):
        checkpoint.load(path)


def test_pickle_file_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(ModelFileError, match="pickle"):
        checkpoint.load(path)


@pytest.mark.parametrize("command", ["info", "sample", "evaluate"])
def test_cli_refuses_a_bad_model_file_with_one_line(tmp_path, command):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    args = {"info": [], "sample": [tmp_path / "x.png", "-c", "hair=gold"], "evaluate": []}[command]
    result = invoke(command, path, *args)
    assert result.exit_code == 2, result.output
    assert "not a colorgan model" in result.output and "Traceback" not in result.output


# --- ONNX ------------------------------------------------------------------------------------------


def test_onnx_without_the_package_says_how_to_install(run, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    result = invoke("export", run, tmp_path / "m.safetensors", "--onnx", tmp_path / "m.onnx")
    assert result.exit_code == 2
    assert "pip install colorgan[onnx]" in result.output
    assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "m.onnx").exists()


def test_onnx_export_matches_pytorch(run, tmp_path):
    onnx = pytest.importorskip("onnx")
    result = invoke("export", run, tmp_path / "m.safetensors", "--onnx", tmp_path / "m.onnx")
    assert result.exit_code == 0, result.output
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert [i.name for i in proto.graph.input] == ["sketch", "encoded"]
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["colorgan.schema"])["hair"][0] == "blue"
    assert onnx_difference(tmp_path / "m.safetensors", tmp_path / "m.onnx") <= 1e-4


def onnx_difference(model: Path, exported: Path) -> float:
    """Largest difference between onnxruntime's output for `exported` and PyTorch's for `model`."""
    ort = pytest.importorskip("onnxruntime")
    generator = checkpoint.load(model)[0]
    sketch = torch.rand(3, 1, 32, 32) * 2 - 1
    encoded = generator.encode([{"hair": "gold", "shirt": "olive"}] * 3)
    with torch.no_grad():
        want = generator(sketch, encoded)[0].numpy()
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    got = session.run(None, {"sketch": sketch.numpy(), "encoded": encoded.numpy()})[0]
    return float(abs(got - want).max())


def test_onnx_export_of_a_spade_generator_matches_pytorch(tmp_path):
    """SpatialFiLM pools the sketch to each level with a fixed kernel: an adaptive pool of a traced
    size would not export."""
    pytest.importorskip("onnx")
    from conftest import TINY

    data = json.loads(json.dumps(TINY))
    data["generator"]["condition"] = "spade"
    run = train(recipes.from_dict(data), out=tmp_path / "run").run
    result = invoke("export", run, tmp_path / "m.safetensors", "--onnx", tmp_path / "m.onnx")
    assert result.exit_code == 0, result.output
    assert onnx_difference(tmp_path / "m.safetensors", tmp_path / "m.onnx") <= 1e-4

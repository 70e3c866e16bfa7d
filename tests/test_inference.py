"""Colorizer (Python API) and the `sample` / `info` commands on one tiny trained model."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from colorgan import recipe as recipes
from colorgan.cli import cli
from colorgan.data import load_dataset, to_pil
from colorgan.errors import ColorganError, ConditionError
from colorgan.inference import GAP, Colorizer
from colorgan.sampling import output_name
from colorgan.train import train

HAIR = ["blue", "crimson", "darkgreen", "deepskyblue", "gold"]
SHIRT = ["darkslateblue", "darkturquoise", "olive", "orangered", "violet"]
COND = {"hair": "crimson", "shirt": "olive"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from conftest import TINY

    result = train(recipes.from_dict(json.loads(json.dumps(TINY))),
                   out=tmp_path_factory.mktemp("inference") / "run")
    return result.model


@pytest.fixture(scope="module")
def colorizer(model):
    return Colorizer.load(model, device="cpu")


@pytest.fixture(scope="module")
def data(colorizer):
    return load_dataset(colorizer.recipe.data, colorizer.recipe.seed)


def sketch_path(data, row=0):
    return data.root / data.frame["input"].iloc[row]


def drawing(mode, size):
    """A synthetic sketch: dark strokes on white (transparent where not drawn, for alpha modes)."""
    w, h = size
    rgba = np.zeros((h, w, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (20, 20, 20, 255)
    rgba[:, : w // 8, 3] = 128
    img = Image.fromarray(rgba, "RGBA")
    if mode == "P":
        return img.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE)
    return img.convert(mode)


def assert_close(a, b, tol=1):
    diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max()
    assert diff <= tol, diff


def test_loaded_colorizer_knows_its_schema(colorizer):
    assert colorizer.schema.names == ["hair", "shirt"]
    assert list(colorizer.schema.values("hair")) == HAIR
    assert colorizer.image_size == 32 and colorizer.device == torch.device("cpu")


def test_input_is_prepared_exactly_like_the_training_sketches(colorizer, data):
    item = data.train[0]
    row = item["index"]
    prepared = colorizer.prepare(sketch_path(data, row))
    assert torch.equal(prepared, item["sketch"])


def test_colorize_is_the_generator_output_at_model_size(colorizer, data):
    out = colorizer.colorize(sketch_path(data), **COND)
    sketch = colorizer.prepare(sketch_path(data))[None]
    with torch.no_grad():
        want = colorizer.generator(sketch, colorizer.generator.encode([COND]))[0][0]
    assert out.mode == "RGB" and out.size == (32, 32)
    assert_close(out, to_pil(want))


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P"])
@pytest.mark.parametrize("size", [(50, 30), (17, 41), (64, 64)])
def test_any_mode_and_size_comes_back_at_its_own_size(colorizer, mode, size):
    out = colorizer.colorize(drawing(mode, size), COND)
    assert out.size == size and out.mode == "RGB"


def test_keep_alpha_reapplies_the_inputs_alpha(colorizer):
    src = drawing("RGBA", (45, 27))
    out = colorizer.colorize(src, COND, keep_alpha=True)
    assert out.mode == "RGBA" and out.size == src.size
    assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(src.getchannel("A")))
    assert colorizer.colorize(src, COND).mode == "RGB"
    opaque = colorizer.colorize(drawing("L", (20, 20)), COND, keep_alpha=True)
    assert opaque.mode == "RGBA" and np.asarray(opaque.getchannel("A")).min() == 255


def test_transparency_is_white_paper_like_in_training(colorizer):
    """A transparent sketch and the same sketch flattened on white give the same colouring."""
    src = drawing("RGBA", (40, 40))
    flat = Image.alpha_composite(Image.new("RGBA", src.size, "white"), src).convert("RGB")
    assert_close(colorizer.colorize(src, COND), colorizer.colorize(flat, COND), tol=0)


def test_batched_lists_match_one_by_one(colorizer, data):
    images = [sketch_path(data, 0), drawing("L", (33, 21)), np.asarray(drawing("RGB", (16, 48)))]
    conds = [COND, {"hair": "gold", "shirt": "violet"}, {"hair": "blue", "shirt": "olive"}]
    batch = colorizer.colorize(images, conds, batch_size=2)
    assert isinstance(batch, list) and len(batch) == 3
    for img, cond, out in zip(images, conds, batch):
        assert_close(out, colorizer.colorize(img, cond))
    many = colorizer.colorize(drawing("L", (30, 30)), [{"hair": h, "shirt": "olive"} for h in HAIR])
    assert len(many) == 5 and all(o.size == (30, 30) for o in many)
    same = colorizer.colorize(images[:2], shirt="olive", hair="gold")
    assert len(same) == 2
    with pytest.raises(ColorganError, match="3 images but 2 condition"):
        colorizer.colorize(images, conds[:2])


@pytest.mark.parametrize("cond, message", [
    ({"hair": "pink", "shirt": "olive"}, "unknown value 'pink'.*valid: blue, crimson"),
    ({"hair": "gold", "shirt": "olive", "eyes": "x"}, "unknown attribute 'eyes'.*hair, shirt"),
    ({"hair": "gold"}, "missing condition 'shirt'"),
])
def test_bad_conditions_are_refused_listing_valid_ones(colorizer, cond, message):
    with pytest.raises(ConditionError, match=message):
        colorizer.colorize(drawing("L", (32, 32)), cond)


def test_sweep_two_attributes_is_a_labelled_rows_by_columns_grid(colorizer, data):
    grid = colorizer.sweep(sketch_path(data), "hair", "shirt")
    info = grid.info["grid"]
    assert (info["rows"], info["cols"], info["tile"]) == (5, 5, 32)
    left, top = info["left"], info["top"]
    assert left > 0 and top > 0     # room for the row and column labels
    assert grid.size == (left + 5 * 32 + 4 * GAP, top + 5 * 32 + 4 * GAP)
    # tile (row 3, column 1) is hair=deepskyblue, shirt=darkturquoise
    x, y = left + 1 * (32 + GAP), top + 3 * (32 + GAP)
    tile = grid.crop((x, y, x + 32, y + 32))
    want = colorizer.colorize(sketch_path(data), hair=HAIR[3], shirt=SHIRT[1])
    assert_close(tile, want)
    labels = np.asarray(grid.convert("L").crop((0, top, left, grid.height)))
    assert labels.min() < 128       # the row labels are drawn


def test_sweep_one_attribute_is_a_single_row(colorizer):
    grid = colorizer.sweep(drawing("L", (50, 20)), "shirt", hair="gold")
    info = grid.info["grid"]
    assert (info["rows"], info["cols"], info["left"]) == (1, 5, 0)
    assert grid.size == (5 * 32 + 4 * GAP, info["top"] + 32)
    with pytest.raises(ConditionError, match="missing condition 'hair'"):
        colorizer.sweep(drawing("L", (50, 20)), "shirt")
    with pytest.raises(ConditionError, match="unknown attribute 'eyes'"):
        colorizer.sweep(drawing("L", (50, 20)), "eyes")


# --- colorgan sample / info -----------------------------------------------------------------------


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def sketches(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    drawing("L", (40, 30)).save(folder / "a.png")
    drawing("RGBA", (30, 30)).save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_sample_writes_one_file_per_input_named_by_conditions(model, sketches, tmp_path):
    out = tmp_path / "out"
    result = invoke("sample", model, sketches, "-c", "shirt=olive", "-c", "hair=crimson", "--out", out)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a-hair=crimson-shirt=olive.png", "b-hair=crimson-shirt=olive.png"]
    with Image.open(out / names[0]) as img:
        assert img.size == (40, 30)


def test_sample_glob_and_sweep(model, sketches, tmp_path):
    out = tmp_path / "out"
    result = invoke("sample", model, str(sketches / "a*.png"), "--sweep", "hair", "--sweep", "shirt", "--out", out)
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["a-sweep-hair-shirt.png"]
    with Image.open(out / "a-sweep-hair-shirt.png") as img:
        assert img.width > 5 * 32 and img.height > 5 * 32


def test_sample_default_out_is_samples(model, sketches, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("sample", model, sketches / "a.png", "-c", "hair=gold", "-c", "shirt=violet")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "samples" / "a-hair=gold-shirt=violet.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["-c", "hair=pink", "-c", "shirt=olive"], "unknown value 'pink' for attribute 'hair'; valid: blue"),
    (["-c", "hair=gold"], "missing condition 'shirt'"),
    (["-c", "hair"], "expected ATTRIBUTE=VALUE"),
    (["-c", "hair=plaid"], "unknown value 'plaid'"),      # named before the missing shirt
    (["-c", "hat=red"], "unknown attribute 'hat'"),
    (["--sweep", "eyes", "-c", "hair=gold"], "unknown attribute 'eyes'"),
])
def test_sample_refuses_bad_conditions_and_writes_nothing(model, sketches, tmp_path, args, message):
    out = tmp_path / "out"
    result = invoke("sample", model, sketches, *args, "--out", out)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_sample_not_an_image_is_refused_before_any_work(model, sketches, tmp_path):
    (sketches / "z.png").write_bytes(b"not a png at all")
    result = invoke("sample", model, sketches / "a.png", sketches / "z.png", "-c", "hair=gold", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "z.png: not an image" in result.output     # reported before the missing shirt
    assert not (tmp_path / "o").exists()


def test_sample_image_failing_mid_run_leaves_nothing_behind(model, sketches, tmp_path):
    drawing("RGB", (64, 64)).save(sketches / "z.png")
    data = (sketches / "z.png").read_bytes()
    (sketches / "z.png").write_bytes(data[: len(data) // 2])    # valid header, truncated pixels
    out = tmp_path / "out"
    out.mkdir()
    result = invoke("sample", model, sketches / "a.png", sketches / "b.png", sketches / "z.png",
                    "-c", "hair=gold", "-c", "shirt=olive", "--out", out, "--batch-size", "1")
    assert result.exit_code == 2
    assert "z.png" in result.output
    assert list(out.iterdir()) == []     # a and b were written, then removed: nothing partial is kept


def test_sample_unwritable_output_folder(model, sketches, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        result = invoke("sample", model, sketches, "-c", "hair=gold", "-c", "shirt=olive", "--out", out)
        assert result.exit_code == 2, result.output
        assert str(blocker) in result.output and "Traceback" not in result.output


def test_sample_missing_input(model, tmp_path):
    result = invoke("sample", model, tmp_path / "nope.png", "-c", "hair=gold", "-c", "shirt=olive")
    assert result.exit_code == 2 and "no such file" in result.output


def test_output_names_are_file_safe():
    name = output_name("x", {"hair": "#ff0000", "shirt": "navy blue"}, ["hair", "shirt"])
    assert name == "x-hair=ff0000-shirt=navy_blue.png"


def test_info_and_sample_name_the_damaged_metadata_key(model, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(model), framework="pt") as f:
        meta = dict(f.metadata())
    for key, value in (("recipe", "[1, 2]"), ("schema", '"x"')):
        path = tmp_path / f"{key}.safetensors"
        save_file(load_file(str(model)), str(path), metadata={**meta, f"colorgan.{key}": value})
        for args in (["info", path], ["sample", path, tmp_path / "x.png", "-c", "hair=gold"]):
            result = invoke(*args)
            assert result.exit_code == 2, result.output
            assert "damaged colorgan metadata" in result.output and key in result.output


def test_info_shows_an_objective_its_check_would_refuse_as_written(model, tmp_path):
    import yaml
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(model), framework="pt") as f:
        meta = dict(f.metadata())
    recipe = yaml.safe_load(meta["colorgan.recipe"])
    recipe["objective"] = [{"type": "l1", "weight": True}, {"type": "region", "weight": 2, "a": 1}]
    path = tmp_path / "odd.safetensors"
    save_file(load_file(str(model)), str(path), metadata={**meta, "colorgan.recipe": json.dumps(recipe)})
    result = invoke("info", path)
    assert result.exit_code == 0, result.output
    assert "objective      {'type': 'l1', 'weight': True} + 2 × region (a=1)" in result.output


def test_info_lists_schema_components_and_recipe(model):
    result = invoke("info", model)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "hair: " + ", ".join(HAIR) in out and "shirt: " + ", ".join(SHIRT) in out
    assert "generator      unet (depth=5" in out and "condition      onehot" in out
    assert "discriminator  patchgan" in out and "objective      1 × gan + 100 × l1" in out
    assert "image size       32 px" in out and "format version   1" in out
    assert "recipe:" in out and "name: tiny" in out

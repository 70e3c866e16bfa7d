"""Region fill: the sketch's closed regions found in tensor ops, each filled with one colour."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest
import torch

from colorgan.errors import RegistryError
from colorgan.registry import GENERATORS
from colorgan.registry.generators.common import GeneratorOptionError
from colorgan.registry.generators.region_fill import (SUITED_FILL_DB, fill_fidelity_db, fill_regions,
                                                      propagation_rounds, sketch_regions)


def reference_regions(open_: torch.Tensor) -> list[set[int]]:
    """4-connected components of the open pixels of an (H, W) bool map, by breadth-first search."""
    height, width = open_.shape
    seen, regions = set(), []
    for start in range(height * width):
        if start in seen or not open_.flatten()[start]:
            continue
        region, queue = set(), deque([start])
        seen.add(start)
        while queue:
            p = queue.popleft()
            region.add(p)
            y, x = divmod(p, width)
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                q = ny * width + nx
                if 0 <= ny < height and 0 <= nx < width and q not in seen and open_[ny, nx]:
                    seen.add(q)
                    queue.append(q)
        regions.append(region)
    return regions


def partition(labels: torch.Tensor) -> list[set[int]]:
    groups: dict[int, set[int]] = {}
    for p, label in enumerate(labels.tolist()):
        if label > 0:
            groups.setdefault(label, set()).add(p)
    return list(groups.values())


def as_sketch(lines: torch.Tensor) -> torch.Tensor:
    """(H, W) bool line map -> a (1, 1, H, W) sketch in [-1, 1]: black lines on white."""
    return torch.where(lines, -1.0, 1.0)[None, None]


@pytest.mark.parametrize("seed", range(6))
def test_regions_are_the_4_connected_components_of_the_open_pixels(seed):
    generator = torch.Generator().manual_seed(seed)
    size = 24
    lines = torch.rand(size, size, generator=generator) < 0.35 + 0.05 * seed
    labels = sketch_regions(as_sketch(lines))[0]
    expected = reference_regions(~lines)
    assert sorted(map(sorted, partition(labels))) == sorted(map(sorted, expected))
    assert (labels[lines.flatten()] == 0).all()


def test_a_diagonal_line_separates_and_a_gap_joins():
    lines = torch.eye(8, dtype=torch.bool)  # a one-pixel diagonal: 4-connected pixels cannot cross it
    assert len(partition(sketch_regions(as_sketch(lines))[0])) == 2
    box = torch.zeros(8, 8, dtype=torch.bool)
    box[4, :] = True
    assert len(partition(sketch_regions(as_sketch(box))[0])) == 2
    box[4, 6] = False  # a one-pixel gap in the line joins the halves
    assert len(partition(sketch_regions(as_sketch(box))[0])) == 1


@pytest.mark.parametrize("size", [32, 256])
def test_a_serpentine_corridor_converges_in_the_rounds_given(size):
    """Walls on every other row, the gap at alternate ends: one region whose path through the
    image is about size * size / 2 pixels long, the worst case for propagation."""
    lines = torch.zeros(size, size, dtype=torch.bool)
    for k, row in enumerate(range(1, size, 2)):
        lines[row, :] = True
        lines[row, -1 if k % 2 == 0 else 0] = False
    labels = sketch_regions(as_sketch(lines), rounds=propagation_rounds(size, size))[0]
    assert len(partition(labels)) == 1
    assert (labels > 0).sum() == (~lines).sum()


def test_too_few_rounds_split_regions_but_never_merge_them():
    lines = torch.rand(32, 32, generator=torch.Generator().manual_seed(1)) < 0.3
    expected = reference_regions(~lines)
    for rounds in (1, 2):
        for part in partition(sketch_regions(as_sketch(lines), rounds=rounds)[0]):
            assert any(part <= region for region in expected)


def test_fill_gives_each_region_its_median_and_keeps_the_lines():
    torch.manual_seed(0)
    lines = torch.rand(2, 40, 40) < 0.3
    sketch = torch.where(lines, -1.0, 1.0)[:, None]
    image = torch.rand(2, 3, 40, 40) * 2 - 1
    labels = sketch_regions(sketch)
    filled = fill_regions(image, labels)
    for b in range(2):
        for label in labels[b].unique().tolist():
            pixels = labels[b] == label
            if label == 0:  # lines
                assert torch.equal(filled[b].flatten(1)[:, pixels], image[b].flatten(1)[:, pixels])
                continue
            median = image[b].flatten(1)[:, pixels].median(dim=1).values  # the lower median, as torch's
            assert torch.equal(filled[b].flatten(1)[:, pixels], median[:, None].expand(-1, int(pixels.sum())))


def test_a_few_stray_pixels_do_not_move_a_region():
    lines = torch.zeros(8, 8, dtype=torch.bool)
    lines[:, 4] = True
    image = torch.full((1, 3, 8, 8), 0.5)
    image[0, :, 0, 0] = -1.0  # paint spilled over from the neighbouring region
    filled = fill_regions(image, sketch_regions(as_sketch(lines)))
    assert torch.equal(filled[..., :4], torch.full((1, 3, 8, 4), 0.5))


def test_fill_fidelity_tells_flat_colour_in_closed_outlines_from_colour_across_them():
    """Art drawn as flat colour inside closed outlines scores far above SUITED_FILL_DB; a second
    colour inside one closed region (hair against a face with no line between) far below it."""
    lines = torch.zeros(32, 32, dtype=torch.bool)
    lines[16, :] = True
    sketch = as_sketch(lines)
    flat = torch.zeros(1, 3, 32, 32)
    flat[..., :16, :] = torch.tensor([0.6, -0.8, -0.8])[:, None, None]
    flat[..., 17:, :] = torch.tensor([-0.9, -0.7, 0.7])[:, None, None]
    across = flat.clone()
    across[..., 20:, :8] = 1.0  # a white patch in the lower region, with no outline around it
    assert fill_fidelity_db(sketch, flat) > SUITED_FILL_DB + 20
    assert fill_fidelity_db(sketch, across) < SUITED_FILL_DB - 10


def test_fill_keeps_bf16():
    image = torch.full((1, 1, 64, 64), 0.3).to(torch.bfloat16)
    filled = fill_regions(image, sketch_regions(torch.ones(1, 1, 64, 64)))
    assert filled.dtype == torch.bfloat16 and torch.equal(filled, image)


@pytest.mark.parametrize("name, options, size", [
    ("unet", {"depth": 5, "base_channels": 8}, 32),
    ("resnet", {"blocks": 1, "base_channels": 8}, 32),
    ("timm-unet", {"encoder": "resnet18"}, 64),
])
def test_every_builtin_generator_fills_regions_in_eval_mode_only(name, options, size):
    torch.manual_seed(0)
    lines = torch.zeros(size, size, dtype=torch.bool)
    lines[:, size // 2] = True
    sketch, cond = as_sketch(lines).expand(2, -1, -1, -1), torch.rand(2, 4)
    generator = GENERATORS.build({"type": name, "fill": "regions", **options}, in_channels=1, out_channels=3, cond_dim=4)
    raw = generator(sketch, cond)  # training: the loss sees what the network drew
    assert not torch.allclose(raw[..., : size // 2], raw[..., :1, :1].expand_as(raw[..., : size // 2]))
    raw.mean().backward()
    assert all(p.grad is not None for p in generator.parameters() if p.requires_grad)
    with torch.no_grad():
        out = generator.eval()(sketch, cond)
    left, right = out[..., : size // 2], out[..., size // 2 + 1:]
    for half in (left, right):
        assert torch.equal(half, half[..., :1, :1].expand_as(half))
    assert not torch.equal(left[..., 0, 0], right[..., 0, 0])


def test_an_unknown_fill_is_a_one_line_error():
    with pytest.raises(RegistryError, match="fill: expected one of none, regions, auto, got 'flood'"):
        GENERATORS.build({"type": "unet", "depth": 2, "fill": "flood"}, in_channels=1, out_channels=3, cond_dim=4)


def test_a_filling_model_trains_exports_and_runs_in_onnx(tmp_path):
    """Through the public surface: a recipe with `fill: regions` trains, its model file fills,
    and the ONNX graph (label equivalence included) gives the same images."""
    import copy

    from click.testing import CliRunner
    from conftest import TINY

    from colorgan import checkpoint
    from colorgan import recipe as recipes
    from colorgan.cli import cli
    from colorgan.train import train

    from colorgan.build import FillUnsuitedWarning

    data = copy.deepcopy(TINY)
    data["generator"]["fill"] = "regions"
    # The built-in icons' shading crosses no line: the fill does not suit them, and training says so.
    with pytest.warns(FillUnsuitedWarning, match=r"^generator.fill=regions: the training targets are \d+\.\d dB "):
        run = train(recipes.from_dict(data), out=tmp_path / "run").run
    generator = checkpoint.load(run / "model.safetensors")[0]
    assert generator.net.fill == "regions"
    lines = torch.zeros(32, 32, dtype=torch.bool)
    lines[10, :] = True
    sketch = as_sketch(lines)
    with torch.no_grad():
        image = generator(sketch, generator.encode([{"hair": "gold", "shirt": "olive"}]))[0]
    below = image[..., 11:, :]
    assert torch.allclose(below, below[..., :1, :1].expand_as(below), atol=1e-6)
    pytest.importorskip("onnx")
    result = CliRunner().invoke(cli, ["export", str(run), str(tmp_path / "m.safetensors"), "--onnx", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    encoded = generator.encode([{"hair": "gold", "shirt": "olive"}])
    got = session.run(None, {"sketch": sketch.numpy(), "encoded": encoded.numpy()})[0]
    assert abs(got - image.numpy()).max() <= 1e-4


def test_recipe_check_refuses_a_bad_fill_or_test_flip_before_building(tmp_path):
    from click.testing import CliRunner

    from colorgan.cli import cli

    for override, message in (("generator.fill=flood", "generator.fill: expected one of 'none', 'regions', 'auto', got 'flood'"),
                              ("generator.test_flip=1", "generator.test_flip: expected one of false, true, got 1")):
        recipe = Path(__file__).resolve().parents[1] / "recipes" / "real-icons.yaml"
        result = CliRunner().invoke(cli, ["recipe", "check", str(recipe), "-o", override])
        assert result.exit_code == 2 and message in result.output, result.output


def write_boxes_set(folder: Path, characters: int = 4) -> Path:
    """A dataset of flat colour inside closed outlines (what `fill: regions` suits): each
    character a different box drawn in black lines, the box filled by the `skin` colour."""
    from PIL import Image, ImageDraw

    colours = {"red": (200, 30, 30), "blue": (30, 60, 200)}
    rows = ["input,output,skin"]
    (folder / "sketches").mkdir(parents=True)
    (folder / "colored").mkdir()
    for c in range(characters):
        box = (4 + 2 * c, 6, 26 - c, 27 - 2 * c)
        sketch = Image.new("L", (32, 32), 255)
        ImageDraw.Draw(sketch).rectangle(box, outline=0, width=1)
        sketch.save(folder / f"sketches/c{c}.png")
        for name, rgb in colours.items():
            target = Image.new("RGB", (32, 32), (255, 255, 255))
            ImageDraw.Draw(target).rectangle(box, fill=rgb, outline=(0, 0, 0), width=1)
            target.save(folder / f"colored/c{c}-{name}.png")
            rows.append(f"sketches/c{c}.png,colored/c{c}-{name}.png,{name}")
    (folder / "Metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.mark.parametrize("art, chosen", [("boxes", "regions"), ("icons", "none")])
def test_fill_auto_is_chosen_from_the_training_set_and_saved_resolved(tmp_path, tiny_recipe, art, chosen):
    """Through the CLI: `fill: auto` says what it chose and why, the run's recipe and model file
    carry the choice (so sampling, evaluation and ONNX need no data to know it), and the run
    resumes from the same recipe with `auto` in it."""
    import yaml
    from click.testing import CliRunner

    from colorgan import checkpoint
    from colorgan.cli import cli

    tiny_recipe["generator"]["fill"] = "auto"
    tiny_recipe["train"].update(max_steps=4, checkpoint_every=2)
    if art == "boxes":
        tiny_recipe["data"] = {"path": str(write_boxes_set(tmp_path / "boxes")), "image_size": 32,
                               "holdout": {"kind": "none"}}
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(tiny_recipe))
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(recipe_file), "--out", str(run), "--stop-at", "2"])
    assert result.exit_code == 0, result.output
    assert f"colorgan: generator.fill {chosen} (auto: the training targets are " in result.output
    assert yaml.safe_load((run / "recipe.yaml").read_text())["generator"]["fill"] == chosen
    result = CliRunner().invoke(cli, ["train", str(recipe_file), "--out", str(run), "--resume", "latest"])
    assert result.exit_code == 0, result.output
    generator, saved, _ = checkpoint.load(run / "model.safetensors")
    assert generator.net.fill == chosen and saved.generator["fill"] == chosen


def test_an_undecided_fill_auto_refuses_eval_mode():
    generator = GENERATORS.build({"type": "unet", "depth": 2, "fill": "auto"}, in_channels=1, out_channels=3, cond_dim=4)
    sketch = torch.ones(1, 1, 8, 8)
    assert generator(sketch, torch.zeros(1, 4)).shape == (1, 3, 8, 8)  # training draws raw
    with pytest.raises(GeneratorOptionError, match="fill: auto is decided by training"):
        generator.eval()(sketch, torch.zeros(1, 4))


def test_the_cli_gives_an_unsuited_fill_warning_in_one_line(tmp_path, tiny_recipe, write_recipe):
    from click.testing import CliRunner

    from colorgan.cli import cli

    tiny_recipe["generator"]["fill"] = "regions"
    result = CliRunner().invoke(cli, ["train", str(write_recipe(tiny_recipe)), "--out", str(tmp_path / "run"),
                                      "--stop-at", "1"])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if "warning" in line.lower()]
    assert len(warned) == 1 and warned[0].startswith("colorgan: warning: generator.fill=regions: the training "
                                                     "targets are "), result.output
    assert "warnings.warn" not in result.output and "FillUnsuitedWarning" not in result.output

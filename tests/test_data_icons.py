"""The built-in icon set: shape of the dataset, aligned outlines, determinism, sizes, cache."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image, ImageColor

from colorgan.data import icons, read_metadata
from colorgan.data.icons import (
    HAIR_COLOURS, MAX_CHARACTERS, SHIRT_COLOURS, builtin_path, draw_icons, make_characters,
)
from colorgan.errors import DataError
from colorgan.recipe import Icons


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    return draw_icons(tmp_path_factory.mktemp("icons"), size=32)


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(int)


def test_default_set_has_ten_characters_in_five_by_five_colours(default_set):
    frame, schema = read_metadata(default_set)
    assert len(frame) == 250 and frame["input"].nunique() == 10
    assert schema.to_dict() == {"hair": sorted(HAIR_COLOURS), "shirt": sorted(SHIRT_COLOURS)}
    assert (frame.groupby("input").size() == 25).all()
    assert sorted(p.name for p in (default_set / "sketches").iterdir())[0] == "char-00.png"
    assert "colored/char-00-crimson-darkslateblue.png" in set(frame["output"])
    with open(default_set / "Metadata.csv", newline="") as f:
        assert next(csv.reader(f)) == ["input", "output", "hair", "shirt"]


def test_colour_names_are_css_and_far_apart():
    for names in (HAIR_COLOURS, SHIRT_COLOURS):
        rgb = np.array([ImageColor.getrgb(n) for n in names], float)
        distances = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
        assert distances[np.triu_indices(5, 1)].min() > 100
        linear = np.where(rgb / 255 <= 0.04045, rgb / 255 / 12.92, ((rgb / 255 + 0.055) / 1.055) ** 2.4)
        lightness = 116 * np.cbrt(linear @ [0.2126, 0.7152, 0.0722]) - 16  # CIE L*
        assert ((25 < lightness) & (lightness < 90)).all()  # neither near black nor white


def test_sketch_outlines_align_with_every_colouring(default_set):
    frame, _ = read_metadata(default_set)
    for sketch_name, rows in frame.groupby("input"):
        sketch = pixels(default_set / sketch_name)
        assert Image.open(default_set / sketch_name).mode == "L"
        assert (sketch < 64).mean() > 0.03 and (sketch > 250).mean() > 0.4  # lines on white
        for output in rows["output"]:
            colored = pixels(default_set / output)
            # ink is composited over the fills, so no coloured pixel is lighter than the sketch
            assert (colored.max(axis=2) <= sketch + 1).all()
            assert (colored[sketch < 64].max(axis=1) < 64).all()


def test_conditions_change_their_own_region(default_set):
    base = pixels(default_set / "colored/char-00-crimson-darkslateblue.png")
    hair = pixels(default_set / "colored/char-00-gold-darkslateblue.png")
    shirt = pixels(default_set / "colored/char-00-crimson-violet.png")
    hair_region = (base != hair).any(axis=2)
    shirt_region = (base != shirt).any(axis=2)
    assert hair_region.mean() > 0.02 and shirt_region.mean() > 0.1
    assert (hair_region & shirt_region).mean() < 0.01
    assert hair_region[:16].sum() > 2 * hair_region[16:].sum()  # hair on top
    assert shirt_region[16:].sum() > 2 * shirt_region[:16].sum()  # shirt below


def test_characters_are_all_different(default_set):
    sketches = [pixels(p) for p in sorted((default_set / "sketches").iterdir())]
    for a in range(len(sketches)):
        for b in range(a + 1, len(sketches)):
            assert np.abs(sketches[a] - sketches[b]).mean() > 2
    assert len(set(make_characters(MAX_CHARACTERS))) == MAX_CHARACTERS


def test_same_seed_same_bytes_other_seed_other_characters(tmp_path):
    a = draw_icons(tmp_path / "a", size=32, characters=2, seed=5)
    b = draw_icons(tmp_path / "b", size=32, characters=2, seed=5)
    c = draw_icons(tmp_path / "c", size=32, characters=2, seed=6)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 1 + 2 + 50
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files if f.suffix == ".png")
    assert make_characters(2, seed=5) != make_characters(2, seed=6)


@pytest.mark.parametrize("size, characters", [(32, 3), (128, 1)])
def test_sizes_and_character_counts(tmp_path, size, characters):
    folder = draw_icons(tmp_path, size=size, characters=characters)
    frame, _ = read_metadata(folder)
    assert len(frame) == 25 * characters and frame["input"].nunique() == characters
    assert Image.open(folder / frame["output"][0]).size == (size, size)


@pytest.mark.parametrize("options, message", [
    ({"size": 31}, "32..512"),
    ({"size": 513}, "32..512"),
    ({"characters": 0}, f"1..{MAX_CHARACTERS}"),
    ({"characters": MAX_CHARACTERS + 1}, f"1..{MAX_CHARACTERS}"),
])
def test_out_of_range_is_a_data_error(tmp_path, options, message):
    with pytest.raises(DataError, match=message):
        draw_icons(tmp_path, **options)


def test_builtin_path_draws_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORGAN_CACHE", str(tmp_path / "cache"))
    path = builtin_path(Icons(characters=1, seed=3), 32)
    assert path == tmp_path / "cache" / "icons-s32-c1-seed3"
    assert len(read_metadata(path)[0]) == 25
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temporary left

    def fail(*args, **kwargs):
        raise AssertionError("drawn twice")

    monkeypatch.setattr(icons, "draw_icons", fail)
    assert builtin_path(Icons(characters=1, seed=3), 32) == path

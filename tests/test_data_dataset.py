"""ColorDataset, the collate function and load_dataset, on a small drawn icon set."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch.utils.data import DataLoader

from colorgan.data import ColorDataset, dataset, draw_icons, load_dataset, make_collate, read_metadata
from colorgan.data import resolve_data_path
from colorgan.errors import DataError
from colorgan.recipe import DataConfig, Holdout, Icons


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return draw_icons(tmp_path_factory.mktemp("icons"), size=32, characters=3)


def count_encode(conditions):
    """A stand-in for a condition encoder's host-side encode (module level, so it pickles)."""
    return torch.tensor([[len(c["hair"]), len(c["shirt"])] for c in conditions], dtype=torch.float32)


def test_items_have_the_documented_shapes_and_conditions(small_set):
    frame, schema = read_metadata(small_set)
    data = ColorDataset(small_set, frame.iloc[[3, 30]], schema, image_size=32)
    assert len(data) == 2 and data.target_channels == 3
    item = data[1]
    assert item["sketch"].shape == (1, 32, 32) and item["target"].shape == (3, 32, 32)
    assert item["sketch"].dtype == torch.float32 and -1 <= item["target"].min() <= item["target"].max() <= 1
    assert item["index"] == 30
    assert item["conditions"] == {"hair": frame["hair"][30], "shirt": frame["shirt"][30]}


def test_options_change_channels(small_set):
    frame, schema = read_metadata(small_set)
    data = ColorDataset(small_set, frame.iloc[:2], schema, image_size=16, sketch_channels=3, keep_alpha=True)
    item = data[0]
    assert item["sketch"].shape == (3, 16, 16) and item["target"].shape == (4, 16, 16)
    assert torch.equal(item["sketch"][0], item["sketch"][2])
    assert (item["target"][3] == 1).all()  # opaque


def test_each_file_is_decoded_once_and_items_need_no_pil(small_set, monkeypatch):
    frame, schema = read_metadata(small_set)
    calls = []
    real = dataset.load_sketch
    monkeypatch.setattr(dataset, "load_sketch", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    data = ColorDataset(small_set, frame, schema, image_size=32)
    assert len(calls) == 3  # one per sketch, not one per row
    monkeypatch.setattr(dataset, "load_target", None)
    monkeypatch.setattr(dataset, "load_sketch", None)
    assert [data[i]["index"] for i in range(len(data))] == list(range(75))


def test_collate_batches_and_encodes(small_set):
    frame, schema = read_metadata(small_set)
    data = ColorDataset(small_set, frame.iloc[:5], schema, image_size=32)
    collate = pickle.loads(pickle.dumps(make_collate(count_encode)))  # spawn-safe
    batch = next(iter(DataLoader(data, batch_size=4, collate_fn=collate)))
    assert batch["sketch"].shape == (4, 1, 32, 32) and batch["target"].shape == (4, 3, 32, 32)
    assert batch["cond"].shape == (4, 2)
    assert batch["cond"][0].tolist() == [len(frame["hair"][0]), len(frame["shirt"][0])]
    assert batch["index"].dtype == torch.long and batch["index"].tolist() == [0, 1, 2, 3]
    assert batch["conditions"][2] == {"hair": frame["hair"][2], "shirt": frame["shirt"][2]}


def test_load_dataset_splits_and_decodes(small_set):
    cfg = DataConfig(path=str(small_set), image_size=32, holdout=Holdout("characters", count=1))
    bundle = load_dataset(cfg, seed=0)
    assert len(bundle.train) + len(bundle.test) == len(bundle.frame) == 75
    assert len(bundle.test) == 25 and bundle.schema.names == ["hair", "shirt"]
    assert sorted(bundle.train.indices) == bundle.train_rows and bundle.test.indices == bundle.test_rows
    assert load_dataset(cfg, seed=0).test_rows == bundle.test_rows


def test_builtin_icons_resolve_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COLORGAN_CACHE", str(tmp_path))
    cfg = DataConfig(image_size=32, icons=Icons(characters=2, seed=1), holdout=Holdout("none"))
    assert resolve_data_path(cfg) == tmp_path / "icons-s32-c2-seed1"
    bundle = load_dataset(cfg, seed=0)
    assert bundle.root == tmp_path / "icons-s32-c2-seed1"
    assert len(bundle.train) == 50 and len(bundle.test) == 0
    assert resolve_data_path(DataConfig(path="~/x")).is_absolute()


def test_a_bad_image_fails_the_load_with_its_name(tmp_path):
    folder = draw_icons(tmp_path, size=32, characters=1)
    (folder / "sketches" / "char-00.png").write_bytes(b"oops")
    with pytest.raises(DataError, match="char-00.png"):
        load_dataset(DataConfig(path=str(folder), image_size=32), seed=0)

"""Image decoding: every mode converts, fitting keeps the aspect, bad files are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from colorgan.data import images
from colorgan.data.images import (
    content_box, fit_image, load_sketch, load_target, open_image, to_pil, to_tensor, unfit_image,
)
from colorgan.errors import DataError


def save(tmp_path, name, img, **options):
    path = tmp_path / name
    img.save(path, **options)
    return path


def palette_image(transparent: bool) -> Image.Image:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.paste(1, (0, 0, 8, 4))  # top half blue, bottom half red
    if transparent:
        img.info["transparency"] = 1
    return img


def i16_image() -> Image.Image:
    values = np.zeros((8, 8), np.uint16)
    values[:, 4:] = 65535
    return Image.fromarray(values)  # Pillow infers I;16 from uint16


@pytest.mark.parametrize("name, img, options", [
    ("l.png", Image.new("L", (8, 8), 128), {}),
    ("la.png", Image.new("LA", (8, 8), (128, 255)), {}),
    ("rgb.png", Image.new("RGB", (8, 8), (255, 0, 0)), {}),
    ("rgba.png", Image.new("RGBA", (8, 8), (255, 0, 0, 255)), {}),
    ("p.png", palette_image(False), {}),
    ("p-trns.png", palette_image(True), {}),
    ("i16.png", i16_image(), {}),
    ("rgb.jpg", Image.new("RGB", (8, 8), (255, 0, 0)), {"quality": 95}),
    ("l.jpg", Image.new("L", (8, 8), 128), {}),
    ("rgba.webp", Image.new("RGBA", (8, 8), (255, 0, 0, 255)), {"lossless": True}),
])
def test_every_mode_converts_to_sketch_and_target(tmp_path, name, img, options):
    path = save(tmp_path, name, img, **options)
    for channels in (1, 3):
        sketch = to_tensor(load_sketch(path, 16, channels))
        assert sketch.shape == (channels, 16, 16) and sketch.dtype == torch.float32
        assert -1 <= sketch.min() <= sketch.max() <= 1
    for keep_alpha, c in ((False, 3), (True, 4)):
        target = to_tensor(load_target(path, 16, keep_alpha))
        assert target.shape == (c, 16, 16) and -1 <= target.min() <= target.max() <= 1


def test_palette_transparency_composites_on_white_or_keeps_alpha(tmp_path):
    path = save(tmp_path, "p.png", palette_image(True))
    rgb = to_tensor(load_target(path, 8))
    assert torch.allclose(rgb[:, 0, 0], torch.ones(3))  # transparent blue -> white paper
    assert torch.allclose(rgb[:, 7, 0], torch.tensor([1.0, -1.0, -1.0]))  # red stays red
    rgba = to_tensor(load_target(path, 8, keep_alpha=True))
    assert rgba[3, 0, 0] == -1 and rgba[3, 7, 0] == 1


def test_partial_alpha_blends_with_white(tmp_path):
    path = save(tmp_path, "a.png", Image.new("RGBA", (4, 4), (0, 0, 0, 128)))
    grey = (1 - 128 / 255) * 255  # half-covered black on white
    assert abs(np.asarray(load_target(path, 4))[0, 0, 0] - grey) <= 1
    assert abs(np.asarray(load_sketch(path, 4))[0, 0] - grey) <= 1


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    path = save(tmp_path, "i16.png", i16_image())
    assert open_image(path).mode.startswith("I")
    sketch = np.asarray(load_sketch(path, 8))
    assert sketch[0, 0] == 0 and sketch[0, 7] == 255


def test_pad_keeps_aspect_with_white_bands():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    fitted = fit_image(img, 32)
    assert fitted.size == (32, 32)
    array = np.asarray(fitted).astype(int)
    assert content_box((40, 20), 32) == (0, 8, 32, 24)
    assert (array[:8] == 255).all() and (array[24:] == 255).all()  # white bands, evenly split
    assert (array[9:23, :, 0] == 255).all() and (array[9:23, :, 1:] < 5).all()  # red middle
    stretched = np.asarray(fit_image(img, 32, fit="resize")).astype(int)
    assert (stretched[:, :, 1] < 5).all()
    assert content_box((40, 20), 32, "resize") == (0, 0, 32, 32)


def test_tall_image_pads_left_and_right_and_unfit_restores_size():
    img = Image.new("L", (10, 30), 0)
    fitted = np.asarray(fit_image(img, 30))
    assert (fitted[:, :10] == 255).all() and (fitted[:, 20:] == 255).all() and (fitted[:, 10:20] == 0).all()
    restored = unfit_image(Image.fromarray(fitted), (10, 30))
    assert restored.size == (10, 30) and np.asarray(restored).max() < 10


def test_padding_of_rgba_is_transparent_white():
    fitted = fit_image(Image.new("RGBA", (20, 10), (0, 0, 0, 255)), 20)
    assert fitted.getpixel((0, 0)) == (255, 255, 255, 0)


@pytest.mark.parametrize("channels, mode", [(1, "L"), (3, "RGB"), (4, "RGBA")])
def test_to_pil_inverts_to_tensor(channels, mode):
    tensor = torch.rand(channels, 5, 7) * 2 - 1
    img = to_pil(tensor)
    assert img.mode == mode and img.size == (7, 5)
    assert (to_tensor(img) - tensor).abs().max() <= 1 / 127.5
    assert to_pil(torch.full((3, 2, 2), 5.0)).getpixel((0, 0)) == (255, 255, 255)  # clamped


def test_to_pil_rejects_other_shapes():
    with pytest.raises(ValueError):
        to_pil(torch.zeros(2, 4, 4))


def refused(path) -> str:
    with pytest.raises(DataError) as info:
        open_image(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_unreadable_empty_and_truncated_files_are_refused(tmp_path):
    (tmp_path / "text.png").write_text("hello")
    assert "not an image" in refused(tmp_path / "text.png")
    (tmp_path / "empty.png").write_bytes(b"")
    assert "not an image" in refused(tmp_path / "empty.png")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    data = (save(tmp_path, "full.png", noise)).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert "cannot decode" in refused(tmp_path / "cut.png")


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    path = save(tmp_path, "big.png", Image.new("L", (40, 40)))
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    assert "40x40" in refused(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 10**9)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's own guard: warning, then error
    assert "decompression bomb" in refused(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    assert "decompression bomb" in refused(path)

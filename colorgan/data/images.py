"""Images in, tensors out (and back): decoding, mode conversion, fitting to a square.

Datasets come in every PNG/JPEG/WebP flavour (grey, palette, 16-bit, with or without alpha), so
images are converted, never refused for their mode; only files that cannot be decoded at all, or
are so large they could exhaust memory, are refused with a DataError naming the file. Inference
reuses `fit_image`, `content_box` and `to_pil` so that a user's image goes through exactly the same
steps as the training data and comes back at its own size.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from colorgan.errors import DataError, os_error_line

MAX_PIXELS = 64 * 1024 * 1024
"""Images with more pixels are refused (decompression-bomb guard); 8192 x 8192 fits."""

WHITE = 255
RESAMPLE = Image.Resampling.LANCZOS  # sharpest of Pillow's filters; antialiases when shrinking
Fit = Literal["pad", "resize"]


def open_image(path: Path) -> Image.Image:
    """Decode `path` fully (so truncation shows now), upright per its EXIF orientation."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise DataError(
                        f"{path}: image is {width}x{height}, more than the {MAX_PIXELS} pixels allowed"
                    )
                if width == 0 or height == 0:
                    raise DataError(f"{path}: image has zero size ({width}x{height})")
                img.load()
                return ImageOps.exif_transpose(img)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise DataError(f"{path}: refused as a possible decompression bomb ({err})") from None
        except UnidentifiedImageError:
            raise DataError(f"{path}: not an image Pillow can read (PNG, JPEG or WebP expected)") from None
        except OSError as err:
            if err.errno is not None:  # the system's refusal (permissions, a name too long), not the file's
                raise DataError(f"{os_error_line(err, path)} (cannot read image)") from None
            raise DataError(f"{path}: cannot decode image ({err})") from None
        except (SyntaxError, ValueError, EOFError) as err:
            raise DataError(f"{path}: cannot decode image ({err})") from None


def _eight_bit(img: Image.Image) -> Image.Image:
    """16/32-bit grey (modes I, I;16, ...) scaled to 8-bit L; Pillow's own convert would clip."""
    if img.mode == "F" or img.mode.startswith("I"):
        values = np.asarray(img, dtype=np.float64)
        wide = img.mode.startswith("I;16") or values.max(initial=0) > 255  # "I" may hold either
        peak = 65535.0 if wide else 255.0
        return Image.fromarray(np.clip(values / peak * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    return img


def image_channels(keep_alpha: bool) -> int:
    """Channels of a coloured image: RGB, plus alpha when transparency is kept (the one place that
    says so: datasets, generators and model files all ask here)."""
    return 4 if keep_alpha else 3


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def to_rgb(img: Image.Image, keep_alpha: bool = False) -> Image.Image:
    """RGB, or RGBA when `keep_alpha`; without it, transparent pixels are composited onto white."""
    img = _eight_bit(img)
    if not has_alpha(img):
        rgb = img.convert("RGB")
        return rgb.convert("RGBA") if keep_alpha else rgb
    rgba = img.convert("RGBA")
    if keep_alpha:
        return rgba
    canvas = Image.new("RGBA", rgba.size, (WHITE, WHITE, WHITE, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def to_sketch(img: Image.Image, channels: int = 1) -> Image.Image:
    """Grey line art (L), or the same grey in 3 channels; transparency becomes white paper."""
    grey = to_rgb(img).convert("L")
    return grey.convert("RGB") if channels == 3 else grey


def _background(img: Image.Image) -> int | tuple[int, ...]:
    """White paper; with alpha the padding is transparent white (it is not part of the picture)."""
    bands = tuple(0 if band == "A" else WHITE for band in img.getbands())
    return bands[0] if len(bands) == 1 else bands


def content_box(original_size: tuple[int, int], size: int, fit: Fit = "pad") -> tuple[int, int, int, int]:
    """Where an image of `original_size` (w, h) lies inside its `size` x `size` fitted version.

    Crop a model's output to this box and resize to `original_size` to undo `fit_image`.
    """
    if fit == "resize":
        return 0, 0, size, size
    width, height = original_size
    scale = size / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    left, top = (size - w) // 2, (size - h) // 2
    return left, top, left + w, top + h


def fit_image(
    img: Image.Image, size: int, fit: Fit = "pad", background: int | tuple[int, ...] | None = None
) -> Image.Image:
    """`size` x `size`: padded evenly on `background` (white by default) keeping the aspect ratio,
    or plainly resized (`fit="resize"`)."""
    if fit not in ("pad", "resize"):
        raise DataError(f"fit: expected 'pad' or 'resize', got {fit!r}")
    if img.size == (size, size):
        return img.copy()
    if fit == "resize":
        return img.resize((size, size), RESAMPLE)
    left, top, right, bottom = content_box(img.size, size, fit)
    canvas = Image.new(img.mode, (size, size), _background(img) if background is None else background)
    canvas.paste(img.resize((right - left, bottom - top), RESAMPLE), (left, top))
    return canvas


def unfit_image(img: Image.Image, original_size: tuple[int, int], fit: Fit = "pad") -> Image.Image:
    """Inverse of `fit_image` for a model output: drop the padding, return to `original_size`."""
    box = content_box(original_size, img.width, fit)
    return img.crop(box).resize(original_size, RESAMPLE)


def to_uint8(img: Image.Image) -> torch.Tensor:
    """(C, H, W) uint8 tensor; the compact form datasets cache."""
    array = np.array(img, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


def uint8_to_float(t: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] to float32 in [-1, 1]."""
    return t.float().div_(127.5).sub_(1.0)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """(C, H, W) float32 tensor in [-1, 1]."""
    return uint8_to_float(to_uint8(img))


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """Inverse of `to_tensor` for a [-1, 1] (C, H, W) tensor with 1, 3 or 4 channels."""
    if tensor.dim() != 3 or tensor.shape[0] not in (1, 3, 4):
        raise ValueError(f"to_pil expects a (1|3|4, H, W) tensor, got shape {tuple(tensor.shape)}")
    # Quantised where the tensor is: a GPU sends a quarter of the bytes a float copy would.
    array = ((tensor.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[array.shape[0]]
    return Image.fromarray(array[0] if mode == "L" else array.transpose(1, 2, 0), mode)


def load_sketch(path: Path, size: int, channels: int = 1, fit: Fit = "pad") -> Image.Image:
    """A sketch file as the model sees it: grey (1 or 3 channels), `size` x `size`."""
    return fit_image(to_sketch(open_image(path), channels), size, fit)


def load_target(path: Path, size: int, keep_alpha: bool = False, fit: Fit = "pad") -> Image.Image:
    """A coloured file as the model sees it: RGB (RGBA with `keep_alpha`), `size` x `size`."""
    return fit_image(to_rgb(open_image(path), keep_alpha), size, fit)

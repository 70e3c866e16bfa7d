"""Colour sketches with a model file: `Colorizer.load(path).colorize(sketch, hair="crimson")`.

A user's image goes through exactly the steps the training sketches went through (grey with
transparency on white paper, the recipe's `sketch_channels`, `fit` to the model's square size) and
the output comes back at the input's own size (`unfit_image`). Nothing here needs the dataset: the
model file carries the recipe and the condition schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from colorgan import checkpoint
from colorgan.data.images import WHITE, fit_image, has_alpha, open_image, to_pil, to_sketch, to_tensor, unfit_image
from colorgan.data.schema import ConditionSchema
from colorgan.errors import ColorganError
from colorgan.hardware import enable_tf32, resolve_device
from colorgan.recipe import Recipe

GAP = 2          # pixels between sweep tiles
LABEL_PAD = 4    # pixels around sweep labels
PAPER = (255, 255, 255)
INK = (0, 0, 0)


def as_image(image: Any) -> Image.Image:
    """A path (decoded like a dataset image), a PIL image or a uint8 array -> a PIL image."""
    if isinstance(image, (str, Path)):
        return open_image(Path(image))
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        try:
            return Image.fromarray(image)
        except (TypeError, ValueError) as err:
            raise ColorganError(f"cannot take a {image.dtype} array of shape {image.shape} as an image ({err})") from None
    raise ColorganError(f"expected an image path, a PIL image or a numpy array, got {type(image).__name__}")


class Colorizer:
    """A loaded model, ready to colour sketches of any size and mode (L, LA, RGB, RGBA, P)."""

    def __init__(self, generator: torch.nn.Module, recipe: Recipe, schema: ConditionSchema,
                 device: str | torch.device | None = None) -> None:
        self.device = resolve_device(device)
        enable_tf32(self.device)
        self.generator = generator.to(self.device).eval()
        self.recipe = recipe
        self.schema = schema

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None,
             max_model_gb: float | None = None) -> "Colorizer":
        """Load a colorgan `.safetensors` model file (ModelFileError if it is not a usable one).

        Its description is checked before anything is built (`model_file.validate_model_file`),
        including the memory the model needs against `max_model_gb` (default: the
        COLORGAN_MAX_MODEL_GB environment variable, else `model_file.DEFAULT_MAX_MODEL_GB`).
        """
        device = resolve_device(device)
        generator, recipe, schema = checkpoint.load(path, device, max_model_gb)
        return cls(generator, recipe, schema, device)

    # --- what the model is -----------------------------------------------------------------

    @property
    def image_size(self) -> int:
        return self.recipe.data.image_size

    @property
    def sketch_channels(self) -> int:
        return self.recipe.data.sketch_channels

    @property
    def attributes(self) -> list[str]:
        return self.schema.names

    @property
    def supports_unspecified(self) -> bool:
        """Whether an attribute may be left out (the model was trained with condition dropout)."""
        return bool(getattr(self.generator.condition, "supports_unspecified", False))

    def check_given(self, conditions: Mapping[str, Any]) -> None:
        """Refuse unknown attributes and values among the conditions given (missing ones are
        not checked here: `encode` does that), so the most specific error comes first."""
        filled = {a: self.schema.values(a)[0] for a in self.attributes}
        for attr, value in conditions.items():
            self.schema.values(attr)  # unknown attribute -> ConditionError listing them
            self.encode([{**filled, attr: value}])

    def encode(self, conditions: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """Check and encode a batch of condition dicts (ConditionError for unknown or missing ones)."""
        return self.generator.encode([dict(c) for c in conditions])

    # --- one batch through the model --------------------------------------------------------

    def prepare(self, image: Any) -> torch.Tensor:
        """An image as the model sees it: (C, size, size) in [-1, 1], converted like training sketches."""
        sketch = to_sketch(as_image(image), self.sketch_channels)
        return to_tensor(fit_image(sketch, self.image_size, self.recipe.data.fit))

    @torch.inference_mode()
    def generate(self, sketches: torch.Tensor, conditions: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """Raw model call: (B, C, size, size) sketches + B condition dicts -> (B, 3|4, size, size) on the CPU."""
        encoded = self.encode(conditions).to(self.device)
        images, _ = self.generator(sketches.to(self.device), encoded)
        return images.float().cpu()

    # --- the user-facing calls --------------------------------------------------------------

    def colorize(self, image: Any, conditions: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                 *, keep_alpha: bool = False, batch_size: int = 16, **values: Any):
        """Colour a sketch: `colorize("sketch.png", hair="crimson", shirt="navy") -> PIL.Image`.

        `image`: a path, a PIL image (any mode, any size) or a uint8 array, or a list of them.
        `conditions`: a dict, or a list of dicts (one per image, or many for one image);
        keyword values are added to every dict. A single image with a single dict gives one
        image; any list gives a list. The output has the input's size. With `keep_alpha` the
        output is RGBA carrying the input's alpha (or the model's own, for a model trained with
        `keep_alpha`); otherwise RGB.
        """
        images = list(image) if isinstance(image, (list, tuple)) else [image]
        many_conditions = isinstance(conditions, (list, tuple))
        conds = [dict(c) for c in conditions] if many_conditions else [dict(conditions or {})]
        for c in conds:
            c.update(values)
        if not images or not conds:
            raise ColorganError("colorize: nothing to colour (empty list of images or conditions)")
        if len(images) == 1 and len(conds) > 1:
            images = images * len(conds)
        elif len(conds) == 1 and len(images) > 1:
            conds = conds * len(images)
        elif len(images) != len(conds):
            raise ColorganError(
                f"colorize: {len(images)} images but {len(conds)} condition dicts; give one dict, "
                "or one per image"
            )
        self.encode(conds)  # refuse unknown or missing conditions before any image work
        if batch_size < 1:
            raise ColorganError(f"batch_size: expected a positive integer, got {batch_size}")
        out: list[Image.Image] = []
        for start in range(0, len(images), batch_size):
            chunk = [as_image(x) for x in images[start:start + batch_size]]
            fake = self.generate(torch.stack([self.prepare(x) for x in chunk]), conds[start:start + batch_size])
            out.extend(self._finish(f, x, keep_alpha) for f, x in zip(fake, chunk))
        single = not isinstance(image, (list, tuple)) and not many_conditions
        return out[0] if single else out

    def _finish(self, fake: torch.Tensor, source: Image.Image, keep_alpha: bool) -> Image.Image:
        """A (3|4, size, size) output back to the source's size, with alpha as asked."""
        out = unfit_image(to_pil(fake), source.size, self.recipe.data.fit)
        model_alpha = out.getchannel("A") if out.mode == "RGBA" else None
        rgb = out.convert("RGB")
        if not keep_alpha:
            if model_alpha is None:
                return rgb
            paper = Image.new("RGB", rgb.size, (WHITE, WHITE, WHITE))
            return Image.composite(rgb, paper, model_alpha)
        if has_alpha(source):
            alpha = source.convert("RGBA").getchannel("A")
        elif model_alpha is not None:
            alpha = model_alpha
        else:
            alpha = Image.new("L", rgb.size, 255)
        rgb.putalpha(alpha)
        return rgb

    def sweep_conditions(self, attributes: Sequence[str], fixed: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The checked condition dicts of a sweep, row by row (first attribute) then column."""
        if not 1 <= len(attributes) <= 2:
            raise ColorganError(f"sweep: give one or two attributes, got {len(attributes)}")
        if len(set(attributes)) != len(attributes):
            raise ColorganError(f"sweep: attribute {attributes[0]!r} given twice")
        row_attr = attributes[0] if len(attributes) == 2 else None
        col_attr = attributes[-1]
        combos = []
        for rv in (self.schema.values(row_attr) if row_attr else [None]):
            for cv in self.schema.values(col_attr):
                combo = {**fixed, col_attr: cv}
                if row_attr:
                    combo[row_attr] = rv
                combos.append(combo)
        self.encode(combos)
        return combos

    def sweep(self, image: Any, *attributes: str, conditions: Mapping[str, Any] | None = None,
              **values: Any) -> Image.Image:
        """A labelled grid of one sketch coloured with every value combination of 1 or 2 attributes.

        One attribute: a single row, one column per value. Two: rows are the first attribute's
        values, columns the second's. Other attributes take their value from `conditions` /
        keywords (or are left out if the model allows it). Tiles are the model's size (the
        padded square the model sees); labels sit above the columns (rotated when wider than a
        tile) and left of the rows. The layout is in `image.info["grid"]`.
        """
        combos = self.sweep_conditions(attributes, {**(conditions or {}), **values})
        row_attr = attributes[0] if len(attributes) == 2 else None
        col_attr = attributes[-1]
        row_values = list(self.schema.values(row_attr)) if row_attr else [None]
        col_values = list(self.schema.values(col_attr))
        sketch = self.prepare(image)
        tiles = []
        for start in range(0, len(combos), 64):
            part = combos[start:start + 64]
            tiles.extend(to_pil(t[:3]) for t in self.generate(sketch.expand(len(part), -1, -1, -1), part))
        col_labels = [f"{col_attr}={v}" for v in col_values]
        row_labels = [f"{row_attr}={v}" for v in row_values] if row_attr else []
        return _grid(tiles, len(row_values), len(col_values), self.image_size, row_labels, col_labels)


def _text_image(text: str, font) -> Image.Image:
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 2 * LABEL_PAD, bottom - top + 2 * LABEL_PAD), PAPER)
    ImageDraw.Draw(img).text((LABEL_PAD - left, LABEL_PAD - top), text, fill=INK, font=font)
    return img


def _grid(tiles: list[Image.Image], rows: int, cols: int, tile: int, row_labels: list[str],
          col_labels: list[str]) -> Image.Image:
    """Tiles on white paper, GAP apart, with row labels on the left and column labels on top."""
    font = ImageFont.load_default()
    col_imgs = [_text_image(t, font) for t in col_labels]
    if any(img.width > tile + GAP for img in col_imgs):  # too wide for a column: write upwards
        col_imgs = [img.rotate(90, expand=True) for img in col_imgs]
    row_imgs = [_text_image(t, font) for t in row_labels]
    left = max((img.width for img in row_imgs), default=0)
    top = max((img.height for img in col_imgs), default=0)
    width = left + cols * tile + (cols - 1) * GAP
    height = top + rows * tile + (rows - 1) * GAP
    sheet = Image.new("RGB", (width, height), PAPER)
    for c, img in enumerate(col_imgs):
        x = left + c * (tile + GAP) + (tile - img.width) // 2
        sheet.paste(img, (max(left, x), top - img.height))
    for r, img in enumerate(row_imgs):
        sheet.paste(img, (left - img.width, top + r * (tile + GAP) + (tile - img.height) // 2))
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet.paste(t.convert("RGB"), (left + c * (tile + GAP), top + r * (tile + GAP)))
    sheet.info["grid"] = {"rows": rows, "cols": cols, "tile": tile, "gap": GAP, "left": left, "top": top}
    return sheet

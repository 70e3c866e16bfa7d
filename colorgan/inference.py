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
from colorgan.errors import ColorganError, ConditionError
from colorgan.recipe import Recipe

GAP = 2          # pixels between sweep tiles
LABEL_PAD = 4    # pixels around sweep labels
PAPER = (255, 255, 255)
INK = (0, 0, 0)


def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
        self.device = torch.device(device) if device is not None else default_device()
        self.generator = generator.to(self.device).eval()
        self.recipe = recipe
        self.schema = schema

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> "Colorizer":
        """Load a colorgan `.safetensors` model file (ModelFileError if it is not a usable one)."""
        device = torch.device(device) if device is not None else default_device()
        check_metadata(path, checkpoint.read_metadata(path))
        generator, recipe, schema = checkpoint.load(path, device)
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


# --- files in, files out (`colorgan sample`) ---------------------------------------------------

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def parse_conditions(items: Sequence[str]) -> dict[str, str]:
    """`["hair=crimson", "shirt=navy"]` -> `{"hair": "crimson", "shirt": "navy"}`."""
    out: dict[str, str] = {}
    for item in items:
        attr, sep, value = item.partition("=")
        attr, value = attr.strip(), value.strip()
        if not sep or not attr or not value:
            raise ConditionError(f"-c {item}: expected ATTRIBUTE=VALUE, e.g. -c hair=crimson")
        if attr in out:
            raise ConditionError(f"-c {attr}: given twice ({out[attr]!r} and {value!r})")
        out[attr] = value
    return out


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given; a folder -> its images (sorted, not recursive); a glob -> its image matches."""
    import glob

    found: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise ColorganError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            found.extend(images)
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(str(item)):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            images = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                raise ColorganError(f"{item}: matches no image files")
            found.extend(images)
        else:
            raise ColorganError(f"{item}: no such file, folder or pattern")
    return list(dict.fromkeys(found))


def safe_name(text: str) -> str:
    """A file-name-safe spelling of a condition value (`#ff0000` -> `ff0000`, spaces -> `_`)."""
    import re

    return re.sub(r"[^A-Za-z0-9._=+-]", "_", text.replace("#", "")).strip(".") or "_"


def output_name(stem: str, conditions: Mapping[str, str], attributes: Sequence[str],
                sweep: Sequence[str] = ()) -> str:
    """`<stem>-hair=crimson-shirt=navy.png`; `<stem>-sweep-hair-shirt.png` for a sweep (fixed
    conditions of other attributes appended); attributes in the model's order."""
    parts = [safe_name(stem)]
    if sweep:
        parts += ["sweep", *map(safe_name, sweep)]
    parts += [f"{safe_name(a)}={safe_name(str(conditions[a]))}" for a in attributes
              if a in conditions and a not in sweep]
    if len(parts) == 1:
        parts.append("colorized")
    return "-".join(parts) + ".png"


def check_image_file(path: Path) -> None:
    """Cheap up-front check (header only) that `path` is an image Pillow can open."""
    from PIL import UnidentifiedImageError

    from colorgan.errors import DataError

    try:
        with Image.open(path) as img:
            img.size  # noqa: B018 - the header is read on open
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image Pillow can read (PNG, JPEG or WebP expected)") from None
    except Image.DecompressionBombError as err:
        raise DataError(f"{path}: refused as a possible decompression bomb ({err})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read image ({err.strerror or err})") from None


def check_metadata(path: str | Path, meta: Mapping[str, Any]) -> None:
    """Refuse metadata of the wrong shape with a message naming the key (ModelFileError)."""
    from colorgan.errors import ModelFileError

    def bad(key: str, what: str) -> ModelFileError:
        return ModelFileError(f"{path}: damaged colorgan metadata: {key} {what}")

    recipe, schema = meta.get("recipe"), meta.get("schema")
    if not isinstance(recipe, Mapping):
        raise bad("recipe", f"is {type(recipe).__name__}, expected a mapping of recipe sections")
    if not isinstance(schema, Mapping) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in schema.values()):
        raise bad("schema", "is not a mapping of attribute -> list of values")
    for key in ("condition", "generator"):
        if not isinstance(recipe.get(key, {}), Mapping):
            raise bad(f"recipe.{key}", "is not a mapping {type: NAME, ...}")


def parse_device(device: str | None) -> torch.device | None:
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ColorganError(f"--device {device}: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ColorganError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    return dev


def sample_files(model: str | Path, inputs: Sequence[str | Path], conditions: Mapping[str, str],
                 out: str | Path = "samples", sweep: Sequence[str] = (), device: str | None = None,
                 batch_size: int = 16, keep_alpha: bool = False) -> list[Path]:
    """Colour every input file into `out`; all or nothing.

    Everything that can be checked is checked before any work (model file, conditions, inputs,
    names); outputs are written under temporary names and renamed only when every one is done,
    so a failure (an unreadable image, a full disk) leaves nothing behind.
    """
    import os

    colorizer = Colorizer.load(model, parse_device(device))
    conditions = dict(conditions)
    sweep = list(sweep)
    colorizer.check_given(conditions)
    for attr in sweep:
        colorizer.schema.values(attr)
    files = expand_inputs(inputs)
    if not files:
        raise ColorganError("no input images given")
    for f in files:
        check_image_file(f)
    if sweep:
        colorizer.sweep_conditions(sweep, conditions)  # raises for missing conditions too
    else:
        colorizer.encode([conditions])
    out = Path(out).expanduser()
    names = [output_name(f.stem, conditions, colorizer.attributes, sweep) for f in files]
    clashes = {n for n in names if names.count(n) > 1}
    if clashes:
        same = [str(f) for f, n in zip(files, names) if n in clashes]
        raise ColorganError(f"inputs {', '.join(same[:3])} would write the same output name; "
                            "sample them into different --out folders")
    targets = [out / n for n in names]
    inputs_resolved = {f.resolve() for f in files}
    if any(t.resolve() in inputs_resolved for t in targets):
        raise ColorganError(f"{out}: an output would replace one of the inputs; choose another --out")
    if out.exists() and not out.is_dir():
        raise ColorganError(f"{out}: exists and is not a folder")
    created = [p for p in [out, *out.parents] if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ColorganError(f"{out}: cannot create output folder ({err.strerror or err})") from None
    temps: list[Path] = []
    try:
        for start in range(0, len(files), batch_size):
            chunk = files[start:start + batch_size]
            if sweep:
                results = [colorizer.sweep(f, *sweep, conditions=conditions) for f in chunk]
            else:
                results = colorizer.colorize(chunk, conditions, keep_alpha=keep_alpha, batch_size=batch_size)
            for image, target in zip(results, targets[start:start + batch_size]):
                tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}.png")
                temps.append(tmp)
                image.save(tmp, format="PNG")
        for tmp, target in zip(temps, targets):
            os.replace(tmp, target)
    except BaseException as err:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        for folder in created:  # innermost first; only the empty ones this call made
            try:
                folder.rmdir()
            except OSError:
                break
        if isinstance(err, OSError):
            raise ColorganError(f"{out}: cannot write output images ({err.strerror or err})") from None
        raise
    return targets


# --- describing a model file (`colorgan info`) -------------------------------------------------


def describe_model(path: str | Path) -> str:
    """What a model file holds, from its metadata alone (nothing is built or unpickled)."""
    import yaml
    from safetensors import safe_open

    meta = checkpoint.read_metadata(path)
    check_metadata(path, meta)
    recipe, schema = meta["recipe"], meta["schema"]
    with safe_open(str(path), framework="pt") as f:
        params = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())  # noqa: SIM118 - safe_open is not a dict
    lines = [f"model file       {path}",
             f"format version   {meta.get('format_version')}",
             f"image size       {meta.get('image_size')} px",
             f"channels         {_channels(meta.get('channels'))}",
             f"tensors          {params:,} values (generator + condition encoder)",
             "", "schema (attributes and values):"]
    for attr, values in schema.items():
        lines.append(f"  {attr}: {', '.join(values)}")
    lines += ["", "components:"]
    for section in ("condition", "generator", "discriminator", "loss"):
        comp = dict(recipe.get(section) or {}) if isinstance(recipe.get(section), Mapping) else {}
        kind = comp.pop("type", "?")
        options = ", ".join(f"{k}={v}" for k, v in comp.items())
        lines.append(f"  {section:<14} {kind}" + (f" ({options})" if options else ""))
    lines += [("  (the file holds the condition encoder and the generator; the discriminator and loss "
               "are recorded for reference)"), "", "recipe:"]
    lines += ["  " + line for line in yaml.safe_dump(recipe, sort_keys=False).splitlines()]
    return "\n".join(lines)


def _channels(channels: Any) -> str:
    if not isinstance(channels, Mapping):
        return str(channels)
    image = channels.get("image")
    return (f"sketch {channels.get('sketch')} ({'grey' if channels.get('sketch') == 1 else 'grey as RGB'}), "
            f"image {image} ({'RGBA' if image == 4 else 'RGB'})")

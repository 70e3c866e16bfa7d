"""The library side of `colorgan sample` and `colorgan info`: inputs, names, all-or-nothing writes.

`sample_files` checks everything it can before writing anything (conditions, inputs, image
headers), writes every output under a temporary name and renames them only when all succeeded, so
a bad input never leaves a half-written output folder behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from PIL import Image

from colorgan.errors import ColorganError, ConditionError, RecipeError, os_error_line
from colorgan.inference import Colorizer
from colorgan.model_file import read_description
from colorgan.objective import reads_discriminator, split_term
from colorgan.outputs import check_replaceable, made_folders

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


def sample_files(model: str | Path, inputs: Sequence[str | Path], conditions: Mapping[str, str],
                 out: str | Path = "samples", sweep: Sequence[str] = (), device: str | None = None,
                 batch_size: int = 16, keep_alpha: bool = False, overwrite: bool = False,
                 max_model_gb: float | None = None) -> list[Path]:
    """Colour every input file into `out`; all or nothing.

    Everything that can be checked is checked before any work (model file, conditions, inputs,
    names, outputs that exist: replaced only with `overwrite`, read-only ones never); outputs are
    written under temporary names and renamed only when every one is done, so a failure (an
    unreadable image, a full disk) leaves nothing behind.
    """
    import os

    colorizer = Colorizer.load(model, device, max_model_gb)
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
    check_replaceable(targets, overwrite)
    temps: list[Path] = []
    try:
        with made_folders(out):
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
            finally:
                for tmp in temps:
                    tmp.unlink(missing_ok=True)
    except OSError as err:
        raise ColorganError(f"{out}: cannot write output images ({os_error_line(err)})") from None
    return targets


# --- describing a model file (`colorgan info`) -------------------------------------------------


def describe_model(path: str | Path) -> str:
    """What a model file holds, from its checked metadata alone (nothing is built or unpickled)."""
    import yaml

    model = read_description(path)
    meta, recipe, schema = model.meta, model.recipe.to_dict(), model.schema
    lines = [f"model file       {path}",
             f"format version   {meta['format_version']}",
             f"image size       {meta['image_size']} px",
             f"channels         {_channels(meta['channels'])}",
             f"tensors          {model.tensor_values:,} values (generator + condition encoder)",
             "", "schema (attributes and values):"]
    for attr, values in schema.attributes:
        lines.append(f"  {attr}: {', '.join(values)}")
    lines += ["", "components:"]
    for section in ("condition", "generator", "discriminator", "loss"):
        comp = dict(recipe[section])
        lines.append(f"  {section:<14} {comp.pop('type')}{_options(comp)}")
    lines.append(f"  {'objective':<14} " + " + ".join(_term(term) for term in recipe["objective"]))
    trained = ("the discriminator and loss trained it and are recorded for reference"
               if reads_discriminator(recipe["objective"]) else
               "no objective term reads a discriminator, so none was built or trained")
    lines += [f"  (the file holds the condition encoder and the generator; {trained})", "", "recipe:"]
    lines += ["  " + line for line in yaml.safe_dump(recipe, sort_keys=False).splitlines()]
    return "\n".join(lines)


def _term(term: Any) -> str:
    """One objective term as `weight × type (options)`, e.g. `300 × l1`; one the objective's own
    check refuses is shown as written (`info` describes a file, it does not judge its recipe)."""
    try:
        cfg, weight = split_term(term, "objective")
    except RecipeError:
        return repr(term)
    return f"{weight:g} × {cfg.pop('type', None)}{_options(cfg)}"


def _options(options: Mapping[str, Any]) -> str:
    """` (k=v, ...)`, or nothing without options."""
    return f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else ""


def _channels(channels: Mapping[str, int]) -> str:
    image = channels["image"]
    return (f"sketch {channels['sketch']} ({'grey' if channels['sketch'] == 1 else 'grey as RGB'}), "
            f"image {image} ({'RGBA' if image == 4 else 'RGB'})")

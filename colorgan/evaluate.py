"""Score a model on a dataset with ground truth: `evaluate(model, split="test") -> dict`.

The same function scores training's validation (`validation.py`), so `colorgan evaluate` on an
exported model reproduces the `val_*` numbers its run logged for the same weights.

Images are scored at the model's size (the fitted square the model sees, as in training), as
uint8 RGB (what a saved PNG holds), on the device that generated them. Attribute regions need
every ground-truth variant of a character (a test split alone may lack the pairs that define
them), so `metrics.References` are built from every row of the dataset that shares a scored
row's sketch (`character_dataset`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from colorgan import metrics
from colorgan.errors import ColorganError, DataError

if TYPE_CHECKING:
    from colorgan.data.dataset import ColorDataset

SPLITS = ("test", "train", "all")
RANKINGS = ("psnr", "accuracy")
"""How `--per-character` and `report --worst` order characters, worst first: by PSNR, or by mean
condition accuracy (PSNR breaking ties), which puts the characters drawn in the wrong colours on top."""
ValueKey = tuple[str, ...]


def _uint8(t: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) in [-1, 1] -> (..., H, W, 3) uint8 on the same device, rounded as `to_pil`
    does, so scores are those of the saved PNG without a trip to the host."""
    return t.detach().float().clamp(-1, 1).add_(1).mul_(127.5).round_().to(torch.uint8).movedim(-3, -1)


def _base(dataset):
    return dataset.dataset if isinstance(dataset, Subset) else dataset


def sketch_of(dataset) -> dict[int, str]:
    """Row index -> sketch path (the character) for a ColorDataset (or a Subset of one)."""
    base = _base(dataset)
    return {idx: pair[0] for idx, pair in zip(base.indices, base.pairs)}


def character_dataset(root: Path, frame, schema, rows: Sequence[int], cfg) -> ColorDataset:
    """Every row of `frame` that shares a sketch (a character) with one of `rows`, decoded as
    `cfg` (a recipe's `data`) says: the ground truth that defines those characters' regions."""
    from colorgan.data.dataset import ColorDataset

    sketches = set(frame["input"].iloc[list(rows)])
    keep = [i for i, s in enumerate(frame["input"]) if s in sketches]
    return ColorDataset(root, frame.iloc[keep], schema, cfg.image_size, cfg.sketch_channels,
                        cfg.keep_alpha, cfg.fit)


def references_of(dataset, attributes: Sequence[str], device=None) -> metrics.References:
    """`metrics.References` (regions, value colours) from every row of a ColorDataset, on `device`."""
    images: dict[str, dict[ValueKey, torch.Tensor]] = {}
    for i in range(len(dataset)):
        item = dataset[i]
        key = tuple(str(item["conditions"][a]) for a in attributes)
        images.setdefault(dataset.pairs[i][0], {})[key] = _uint8(item["target"][:3])
    return metrics.References.build(images, attributes, device=device)


@torch.no_grad()
def generate_records(generator, dataset, device, batch_size: int = 32) -> list[dict[str, Any]]:
    """Run the generator over a ColorDataset (or Subset): `metrics.evaluate_images` records."""
    from colorgan.data import make_collate

    characters = sketch_of(dataset)
    was_training = generator.training
    generator.eval()
    records = []
    try:
        # A generator of its own: a DataLoader's iterator draws a seed even when it does not shuffle,
        # and from torch's global generator that would make validation shift training's augmentations.
        loader = DataLoader(dataset, batch_size=batch_size, collate_fn=make_collate(generator.encode),
                            generator=torch.Generator())
        for batch in loader:
            fake, _ = generator(batch["sketch"].to(device), batch["cond"].to(device))
            preds, targets = _uint8(fake[:, :3]), _uint8(batch["target"][:, :3].to(device))
            for pred, target, index, cond in zip(preds, targets, batch["index"].tolist(), batch["conditions"]):
                records.append({"pred": pred, "target": target,
                                "character": characters[index], "conditions": cond})
    finally:
        generator.train(was_training)
    return records


def evaluate_generator(generator, dataset, device, attributes: Sequence[str],
                       references: metrics.References | Mapping[str, Mapping[ValueKey, Any]] | None = None,
                       batch_size: int = 32, per_character: bool = False, rank_by: str = "psnr") -> dict[str, Any]:
    """The shared core: generate for every row of `dataset`, score with `score_records`."""
    return score_records(generate_records(generator, dataset, device, batch_size), attributes, references,
                         per_character, device, rank_by)


def score_records(records: list[dict[str, Any]], attributes: Sequence[str],
                  references: metrics.References | Mapping[str, Mapping[ValueKey, Any]] | None = None,
                  per_character: bool = False, device=None, rank_by: str = "psnr") -> dict[str, Any]:
    """`metrics.evaluate_images` over `generate_records`' records.

    `per_character` adds `"characters"`: each character's own scores, worst first by `rank_by`
    (one of RANKINGS), so the characters a model fails on stand at the top
    (`colorgan evaluate --per-character`).
    """
    if rank_by not in RANKINGS:
        raise ColorganError(f"rank_by: expected one of {', '.join(RANKINGS)}, got {rank_by!r}")
    if per_character and not isinstance(references, metrics.References):  # built once, not per character
        references = metrics.References.build(metrics.ground_truth(records, list(attributes), references),
                                              list(attributes), device=device)
    result = metrics.evaluate_images(records, list(attributes), references)
    if per_character:
        groups: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            groups.setdefault(record["character"], []).append(record)
        scores = [{"character": ch, **metrics.evaluate_images(group, list(attributes), references)}
                  for ch, group in groups.items()]
        result["characters"] = sorted(scores, key=lambda r: _worst_first(r, rank_by))
    return result


def _worst_first(scores: Mapping[str, Any], rank_by: str) -> tuple:
    """Sort key of one character's scores; a character with nothing to judge goes last."""
    by_psnr = (scores["psnr"] is None, scores["psnr"] or 0.0)
    if rank_by == "psnr":
        return by_psnr
    judged = [v for v in scores["condition_accuracy"].values() if v is not None]
    return (not judged, float(np.mean(judged)) if judged else 0.0, *by_psnr)


def missed_conditions(record: Mapping[str, Any], attributes: Sequence[str],
                      references: metrics.References) -> list[str]:
    """The attributes whose colour one generated record missed (its region nearer another value's)."""
    accuracy = metrics.evaluate_images([record], attributes, references)["condition_accuracy"]
    return [a for a in attributes if accuracy[a] == 0.0]


def flatten(result: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """`{"psnr", ..., "condition_error": {a: x}}` -> `{prefix+"psnr", prefix+"condition_error_a"}`;
    None (nothing to judge) becomes NaN, so a logged metric keeps its key."""
    flat: dict[str, float] = {}
    for key, value in result.items():
        if key == "n":
            continue
        if isinstance(value, Mapping):
            for attr, v in value.items():
                flat[f"{prefix}{key}_{attr}"] = math.nan if v is None else float(v)
        else:
            flat[f"{prefix}{key}"] = math.nan if value is None else float(value)
    return flat


# --- evaluating a model file ----------------------------------------------------------------


@dataclass
class EvaluationSet:
    """What `evaluate` scores: the split's rows (`rows`, a Subset of a ColorDataset) and the
    references built from every row of their characters."""

    rows: Subset
    references: metrics.References
    attributes: list[str]


def evaluation_set(colorizer, data_path: str | Path | None = None, split: str = "test",
                   if_empty: str = "use --split all") -> EvaluationSet:
    """The rows `evaluate` scores for `colorizer` (see there), decoded as its recipe says; a split
    with no rows is a `DataError` that ends with `if_empty` (what the caller advises)."""
    from colorgan.data import resolve_data_path
    from colorgan.data.metadata import read_metadata
    from colorgan.data.splits import split_frame

    if split not in SPLITS:
        raise ColorganError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    recipe, cfg = colorizer.recipe, colorizer.recipe.data
    root = Path(data_path).expanduser() if data_path is not None else resolve_data_path(cfg)
    frame, schema = read_metadata(root)
    unknown = [a for a in schema.names if a not in colorizer.attributes]
    if unknown:
        raise DataError(f"{root}: attribute {unknown[0]!r} is not one this model knows "
                        f"({', '.join(colorizer.attributes)})")
    if split == "all":
        rows = list(range(len(frame)))
    else:
        train_rows, test_rows = split_frame(frame, schema, cfg.holdout, recipe.seed)
        rows = test_rows if split == "test" else train_rows
        if not rows:
            raise DataError(f"{root}: the model's recipe (data.holdout: {cfg.holdout.kind}) leaves no {split} rows; "
                            f"{if_empty}")
    attrs = schema.names
    conditions = frame[attrs].iloc[rows].drop_duplicates()
    colorizer.encode([dict(zip(attrs, v)) for v in conditions.itertuples(index=False, name=None)])
    dataset = character_dataset(root, frame, schema, rows, cfg)
    wanted = set(rows)
    subset = Subset(dataset, [p for p, idx in enumerate(dataset.indices) if idx in wanted])
    return EvaluationSet(subset, references_of(dataset, attrs, colorizer.device), list(attrs))


def evaluate(model: Any, data_path: str | Path | None = None, split: str = "test",
             device: str | torch.device | None = None, batch_size: int = 32,
             per_character: bool = False, rank_by: str = "psnr") -> dict[str, Any]:
    """Score a model (path or `Colorizer`) on a dataset with ground truth.

    `split="test"` / `"train"`: the split the model's recipe made (same holdout, same seed) of
    the recipe's dataset, or of `data_path` if given. `"all"`: every row of the dataset (e.g. one
    the model never saw). Returns `{"psnr", "ssim", "l1", "condition_error": {attr: ΔE00},
    "condition_accuracy": {attr: share}, "n"}` (see `metrics.evaluate_images`), plus
    `"characters"` with `per_character`, worst first by `rank_by` (see `score_records`).
    """
    from colorgan.inference import Colorizer

    colorizer = model if isinstance(model, Colorizer) else Colorizer.load(model, device)
    chosen = evaluation_set(colorizer, data_path, split)
    return evaluate_generator(colorizer.generator, chosen.rows, colorizer.device, chosen.attributes,
                              chosen.references, batch_size, per_character, rank_by)


def format_score(value: Any, digits: int = 3) -> str:
    """A score for a table: `digits` decimals, "-" where there is nothing to judge (None)."""
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(result: Mapping[str, Any]) -> str:
    """The evaluation as a plain-text table: overall metrics, then one line per attribute."""
    lines = [
        f"images       {result['n']}",
        f"PSNR (dB)    {format_score(result['psnr'], 2)}",
        f"SSIM         {format_score(result['ssim'])}",
        f"L1           {format_score(result['l1'], 4)}",
        "",
    ]
    attrs = list(result["condition_error"])
    width = max([len("attribute"), *map(len, attrs)])
    lines.append(f"{'attribute'.ljust(width)}  condition error (ΔE00)  condition accuracy")
    for a in attrs:
        err, acc = result["condition_error"][a], result["condition_accuracy"][a]
        lines.append(f"{a.ljust(width)}  {format_score(err, 2).rjust(22)}  {format_score(acc).rjust(18)}")
    errs = [v for v in result["condition_error"].values() if v is not None]
    accs = [v for v in result["condition_accuracy"].values() if v is not None]
    lines.append(f"{'(mean)'.ljust(width)}  {format_score(float(np.mean(errs)) if errs else None, 2).rjust(22)}  "
                 f"{format_score(float(np.mean(accs)) if accs else None).rjust(18)}")
    lines.append("ΔE00 2.3 is about a just-noticeable difference; accuracy: share of images whose region "
                 "colour is nearest the requested value's.")
    if "characters" in result:
        lines += ["", f"{'character (worst first)'.ljust(32)}  images  PSNR (dB)  " + "  ".join(
            f"{a} acc" for a in attrs)]
        for c in result["characters"]:
            accs = "  ".join(format_score(c["condition_accuracy"][a]).rjust(len(a) + 4) for a in attrs)
            lines.append(f"{str(c['character'])[:32].ljust(32)}  {str(c['n']).rjust(6)}  "
                         f"{format_score(c['psnr'], 2).rjust(9)}  {accs}")
    return "\n".join(lines)

"""The worst-characters panel of `colorgan report RUN --worst N`.

A module of its own because, unlike the rest of the report (which reads only metrics.jsonl and
samples/), it needs the run's model and dataset. It writes no scoring and no generation of its own:
the ranking and the numbers are `evaluate.evaluate(model, per_character=True)`'s (what `colorgan
evaluate --per-character` prints), and the images shown come from `evaluate.generate_records` on
`evaluate.character_dataset` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colorgan.errors import ColorganError
from colorgan.evaluate import format_score, character_dataset, evaluate, generate_records
from colorgan.report import evenly

SHOWN = 4  # held-out rows shown per character, spread over its condition values


@dataclass
class Worst:
    scores: dict[str, Any]                     # evaluate's entry: character, n, psnr, condition_accuracy, ...
    sketch: np.ndarray                         # (H, W) or (H, W, 3), in [0, 1]
    shown: list[tuple[dict[str, Any], np.ndarray, np.ndarray]]  # (conditions, generated, target) uint8

    @property
    def title(self) -> str:
        accuracy = ", ".join(f"{a} {format_score(v, 2)}" for a, v in self.scores["condition_accuracy"].items())
        return f"{self.scores['character']}\nPSNR {format_score(self.scores['psnr'], 2)} dB\naccuracy: {accuracy}"


def worst_characters(run: Path, count: int) -> list[Worst]:
    """The `count` worst characters of RUN's held-out split (worst PSNR first), scored with
    RUN/model.safetensors, each with up to SHOWN of its held-out rows generated."""
    from colorgan.data import resolve_data_path
    from colorgan.data.metadata import read_metadata
    from colorgan.data.splits import split_frame
    from colorgan.inference import Colorizer

    model = run / "model.safetensors"
    if not model.is_file():
        raise ColorganError(f"{run}: no model.safetensors (training has not finished), so --worst has no model "
                            "to score")
    colorizer = Colorizer.load(model)
    cfg = colorizer.recipe.data
    root = resolve_data_path(cfg)
    frame, schema = read_metadata(root)
    _, held = split_frame(frame, schema, cfg.holdout, colorizer.recipe.seed)
    if not held:
        raise ColorganError(f"{run}: the run has no held-out split (data.holdout: {cfg.holdout.kind}), so "
                            "--worst has no held-out characters to rank")
    ranked = evaluate(colorizer, per_character=True)["characters"][:count]
    attrs = schema.names
    rows = []
    for scores in ranked:
        mine = sorted((r for r in held if frame["input"].iloc[r] == scores["character"]),
                      key=lambda r: tuple(str(v) for v in frame[attrs].iloc[r]))
        rows += evenly(mine, SHOWN)
    # every row given shares its sketch with a row given, so this is exactly those rows
    dataset = character_dataset(root, frame.iloc[rows], schema, range(len(rows)), cfg)
    records = generate_records(colorizer.generator, dataset, colorizer.device)
    sketches = {pair[0]: dataset[i]["sketch"] for i, pair in enumerate(dataset.pairs)}
    worst = []
    for scores in ranked:
        sketch = (sketches[scores["character"]].clamp(-1, 1) + 1) / 2
        shown = [(r["conditions"], r["pred"].cpu().numpy(), r["target"].cpu().numpy())
                 for r in records if r["character"] == scores["character"]]
        worst.append(Worst(scores, sketch[0].numpy() if len(sketch) == 1 else sketch[:3].permute(1, 2, 0).numpy(),
                           shown))
    return worst


def draw_worst(fig, spec, worst: list[Worst]) -> list[str]:
    """One row per character in `spec` (a GridSpec cell): its sketch, labelled with its name and
    scores, then generated | target for each row shown. Returns the characters' axes titles."""
    grid = spec.subgridspec(len(worst), 1 + 2 * SHOWN)
    titles = []
    for i, character in enumerate(worst):
        ax = fig.add_subplot(grid[i, 0])
        ax.imshow(character.sketch, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"worst {i + 1}: {character.title}", fontsize=8)
        titles.append(ax.get_title())
        ax.set_axis_off()
        for j, (conditions, pred, target) in enumerate(character.shown):
            label = ", ".join(f"{a}={v}" for a, v in conditions.items())
            for k, (image, name) in enumerate(((pred, f"generated\n{label}"), (target, "target"))):
                ax = fig.add_subplot(grid[i, 1 + 2 * j + k])
                ax.imshow(image, interpolation="nearest")
                ax.set_title(name, fontsize=7)
                ax.set_axis_off()
    return titles

"""The worst-characters panel of `colorgan report RUN --worst N`.

A module of its own because, unlike the rest of the report (which reads only metrics.jsonl and
samples/), it needs the run's model and dataset. It writes no scoring and no generation of its own:
the rows are `evaluate.evaluation_set`'s, generated once by `evaluate.generate_records`, and the
ranking and the numbers are `evaluate.score_records`' (what `colorgan evaluate --per-character`
prints); the images shown are some of those same records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from colorgan.errors import ColorganError
from colorgan.evaluate import evaluation_set, format_score, generate_records, missed_conditions, score_records
from colorgan.report import evenly

SHOWN = 4  # held-out rows shown per character, spread over its condition values


@dataclass
class Worst:
    scores: dict[str, Any]                     # evaluate's entry: character, n, psnr, condition_accuracy, ...
    sketch: np.ndarray                         # (H, W) or (H, W, 3), in [0, 1]
    # (conditions, generated, target, missed): the images uint8, `missed` the attributes whose colour it missed
    shown: list[tuple[dict[str, Any], np.ndarray, np.ndarray, list[str]]]

    @property
    def title(self) -> str:
        accuracy = ", ".join(f"{a} {format_score(v, 2)}" for a, v in self.scores["condition_accuracy"].items())
        return f"{self.scores['character']}\nPSNR {format_score(self.scores['psnr'], 2)} dB\naccuracy: {accuracy}"


def worst_characters(run: Path, count: int, rank_by: str = "psnr") -> list[Worst]:
    """The `count` worst characters of RUN's held-out split (worst first by `rank_by`, as
    `evaluate.score_records` ranks them), scored with RUN/model.safetensors, each with up to SHOWN
    of its held-out rows: spread over its conditions, or with `rank_by="accuracy"` the rows whose
    colours missed first (those are what that ranking is for)."""
    from colorgan.inference import Colorizer

    model = run / "model.safetensors"
    if not model.is_file():
        raise ColorganError(f"{run}: no model.safetensors (training has not finished), so --worst has no model "
                            "to score")
    colorizer = Colorizer.load(model)
    held = evaluation_set(colorizer, if_empty=f"--worst has no held-out characters of {run} to rank")
    records = generate_records(colorizer.generator, held.rows, colorizer.device)
    ranked = score_records(records, held.attributes, held.references, per_character=True,
                           rank_by=rank_by)["characters"][:count]
    worst = []
    for scores in ranked:
        mine = sorted((i for i, r in enumerate(records) if r["character"] == scores["character"]),
                      key=lambda i: tuple(str(records[i]["conditions"][a]) for a in held.attributes))
        sketch = (held.rows[mine[0]]["sketch"].clamp(-1, 1) + 1) / 2  # records follow the rows' order
        missed = {i: missed_conditions(records[i], held.attributes, held.references) for i in mine}
        shown = [(records[i]["conditions"], records[i]["pred"].cpu().numpy(), records[i]["target"].cpu().numpy(),
                  missed[i]) for i in shown_rows(mine, missed, rank_by)]
        worst.append(Worst(scores, sketch[0].numpy() if len(sketch) == 1 else sketch[:3].permute(1, 2, 0).numpy(),
                           shown))
    return worst


def shown_rows(rows: list[int], missed: Mapping[int, list[str]], rank_by: str) -> list[int]:
    """Up to SHOWN of one character's rows (given in condition order): spread over its conditions,
    or with `rank_by="accuracy"` those whose colours missed first, then the others spread."""
    if rank_by != "accuracy":
        return evenly(rows, SHOWN)
    first = [i for i in rows if missed[i]][:SHOWN]
    return first + evenly([i for i in rows if i not in first], SHOWN - len(first))


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
        for j, (conditions, pred, target, missed) in enumerate(character.shown):
            label = ", ".join(f"{a}={v}" for a, v in conditions.items())
            drawn = f"missed {', '.join(missed)}" if missed else "generated"
            for k, (image, name) in enumerate(((pred, f"{drawn}\n{label}"), (target, "target"))):
                ax = fig.add_subplot(grid[i, 1 + 2 * j + k])
                ax.imshow(image, interpolation="nearest")
                ax.set_title(name, fontsize=7)
                ax.set_axis_off()
    return titles

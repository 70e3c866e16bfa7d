"""`colorgan report RUN`: one PNG that shows whether a run learned.

Top: curves over steps from RUN/metrics.jsonl (losses, L1, validation PSNR/SSIM, condition error
and accuracy per attribute, learning rate). Bottom: a few sample sheets from RUN/samples, evenly
spaced over training (always the first and the last), labelled by step. With `worst`, below them:
the run's worst held-out characters beside their targets (`report_worst.py`). matplotlib's Agg
backend: no display needed.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

from colorgan.errors import ColorganError

_SHEET = re.compile(r"^step-(\d+)\.png$")
T = TypeVar("T")

# (title, [(metric key, legend label, scale)], y label); `*` ends a prefix matched per attribute.
PANELS: list[tuple[str, list[tuple[str, str, float]], str]] = [
    ("Discriminator and adversarial loss", [("d_loss", "d_loss", 1.0), ("g_gan", "g_gan (generator's GAN term)", 1.0)], "loss"),
    ("Generator loss (GAN + weighted L1)", [("g_loss", "g_loss", 1.0)], "loss"),
    ("L1, RGB in [0, 1]", [("l1", "train (loss / 2)", 0.5), ("val_l1", "validation", 1.0)], "mean |difference|"),
    ("Learning rate", [("lr", "generator lr", 1.0)], "lr"),
    ("Validation PSNR", [("val_psnr", "PSNR", 1.0)], "dB (higher is better)"),
    ("Validation SSIM", [("val_ssim", "SSIM", 1.0)], "SSIM (higher is better)"),
    ("Validation condition error", [("val_condition_error_*", "", 1.0)], "ΔE00 (lower is better)"),
    ("Validation condition accuracy", [("val_condition_accuracy_*", "", 1.0)], "share (higher is better)"),
]


@dataclass
class Report:
    path: Path
    panels: list[str] = field(default_factory=list)   # axes titles: curves, sheets, worst characters' sketches
    sheets: list[int] = field(default_factory=list)   # steps of the sample sheets shown
    worst: list[str] = field(default_factory=list)    # characters (sketch paths) shown, worst first


def read_metrics(path: Path) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl -> {key: [(step, value), ...]} sorted by step; the last value per step wins
    (a resumed run logs some steps again); null values are skipped.

    Only the last line may be unreadable (training may be writing it right now); any other line
    that is not a JSON object with an integer `step` means the file is damaged, and a ColorganError
    names the line rather than drawing a report from what is left.
    """
    by_step: dict[str, dict[int, float]] = {}
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            record = None
        if not isinstance(record, dict) or not _is_step(record.get("step")):
            if number == len(lines) and not text.endswith("\n"):
                continue  # a line being written
            raise ColorganError(f"{path}: line {number}: not a metrics record (a JSON object with an integer "
                                f"step); the file is damaged: {line[:60]!r}")
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                by_step.setdefault(key, {})[record["step"]] = float(value)
    return {k: sorted(v.items()) for k, v in by_step.items()}


def _is_step(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def evenly(items: Sequence[T], count: int) -> list[T]:
    """Up to `count` of `items`, evenly spaced, first and last included (the last alone for 1)."""
    if count <= 0:
        return []
    if len(items) <= count:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (count - 1)) for i in range(count)}) if count > 1 else [len(items) - 1]
    return [items[i] for i in picks]


def sample_sheets(run: Path, count: int = 4) -> list[tuple[int, Path]]:
    """Up to `count` sample sheets, evenly spaced over training, first and last included."""
    folder = run / "samples"
    if count <= 0 or not folder.is_dir():
        return []
    return evenly(sorted((int(m.group(1)), p) for p in folder.glob("step-*.png") if (m := _SHEET.match(p.name))),
                  count)


def make_report(run: str | Path, out: str | Path | None = None, sheets: int = 4, worst: int = 0,
                rank_by: str = "psnr") -> Report:
    """Draw the report of run folder `run` to `out` (default RUN/report.png); `worst` > 0 adds that
    many of its worst held-out characters (by `rank_by`: psnr or accuracy), scored with
    RUN/model.safetensors."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from PIL import Image

    run = Path(run)
    metrics_file = run / "metrics.jsonl"
    if not run.is_dir():
        raise ColorganError(f"{run}: run folder not found")
    if not metrics_file.is_file():
        raise ColorganError(f"{run}: no metrics.jsonl (not a colorgan run folder, or nothing logged yet)")
    series = read_metrics(metrics_file)
    if not series:
        raise ColorganError(f"{metrics_file}: no metrics logged yet")
    picked = sample_sheets(run, sheets)
    characters = []
    if worst:  # imported here: it loads torch, and imports `evenly` from this module
        from colorgan.report_worst import worst_characters

        characters = worst_characters(run, worst, rank_by)
    out = Path(out) if out is not None else run / "report.png"

    cols = 4
    curve_rows = math.ceil(len(PANELS) / cols)
    sheet_rows = 1 if picked else 0
    heights = [1] * curve_rows + [1.4] * sheet_rows + ([0.8 * len(characters)] if characters else [])
    fig = plt.figure(figsize=(5 * cols, 3.6 * curve_rows + 4.5 * sheet_rows + 2.8 * len(characters)))
    grid = fig.add_gridspec(len(heights), cols, height_ratios=heights)
    titles: list[str] = []
    for i, (title, lines, ylabel) in enumerate(PANELS):
        ax = fig.add_subplot(grid[i // cols, i % cols])
        drawn = 0
        for key, label, scale in lines:
            keys = sorted(k for k in series if k.startswith(key[:-1])) if key.endswith("*") else [key]
            for k in keys:
                points = series.get(k)
                if not points:
                    continue
                steps, values = zip(*points)
                name = label or k.removeprefix(key[:-1])
                ax.plot(steps, [v * scale for v in values], marker="." if len(points) < 30 else None, label=name)
                drawn += 1
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
        if "accuracy" in title:
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        titles.append(title)
    if picked:
        sheet_grid = grid[curve_rows, :].subgridspec(1, len(picked))
        for j, (step, path) in enumerate(picked):
            ax = fig.add_subplot(sheet_grid[0, j])
            with Image.open(path) as img:
                ax.imshow(img.convert("RGB"), interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(f"samples at step {step}", fontsize=10)
            titles.append(ax.get_title())
    if characters:
        from colorgan.report_worst import draw_worst

        titles += draw_worst(fig, grid[curve_rows + sheet_rows, :], characters)
    last = max((s for points in series.values() for s, _ in points), default=0)
    fig.suptitle(f"{run.name}: step {last}" + _summary(series), fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    tmp = out.with_name(f".{out.name}.tmp.png")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise ColorganError(f"{out}: cannot write report ({err.strerror or err})") from None
    finally:
        plt.close(fig)
    return Report(out, titles, [s for s, _ in picked], [c.scores["character"] for c in characters])


def _summary(series: dict[str, Any]) -> str:
    """The latest validation numbers, for the figure title."""
    parts = []
    for key, fmt in (("val_psnr", "PSNR {:.2f} dB"), ("val_ssim", "SSIM {:.3f}"), ("val_l1", "L1 {:.4f}")):
        if series.get(key):
            parts.append(fmt.format(series[key][-1][1]))
    return ("  —  validation: " + ", ".join(parts)) if parts else ""

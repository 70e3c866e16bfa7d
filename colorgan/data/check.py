"""`colorgan data check`: everything wrong with a dataset folder at once, plus what is in it.

Training stops at the first bad row; a user fixing a dataset wants the whole list, so this walks
every row and decodes every distinct image, collecting one line per problem.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from colorgan.data.images import open_image
from colorgan.data.metadata import IMAGE_COLUMNS, condition_columns, inspect_metadata, resolve_image
from colorgan.errors import DataError, shown


@dataclass
class CheckReport:
    path: Path
    rows: int = 0
    characters: int = 0
    attributes: dict[str, list[str]] = field(default_factory=dict)
    sizes: Counter = field(default_factory=Counter)  # "WxH" -> number of image files
    modes: Counter = field(default_factory=Counter)  # Pillow mode -> number of image files
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"dataset: {shown(self.path)}", f"rows: {self.rows}", f"characters: {self.characters}"]
        for attribute, values in self.attributes.items():
            out.append(f"attribute {attribute}: {len(values)} values ({', '.join(values)})")
        if self.sizes:
            out.append("image sizes: " + ", ".join(f"{k} ({n})" for k, n in self.sizes.most_common()))
            out.append("image modes: " + ", ".join(f"{k} ({n})" for k, n in self.modes.most_common()))
        out.append(f"problems: {len(self.problems) or 'none'}")
        out.extend(f"  {problem}" for problem in self.problems)
        return out


def check_dataset(path: Path) -> CheckReport:
    """Read `path`/Metadata.csv and decode each image it names, collecting every problem."""
    report = CheckReport(Path(path))
    frame, report.problems = inspect_metadata(report.path)
    if frame is None:
        return report
    report.rows = len(frame)
    report.characters = frame["input"].nunique()
    report.attributes = {a: sorted(v for v in frame[a].unique() if v) for a in condition_columns(frame)}
    for relative in dict.fromkeys(p for column in IMAGE_COLUMNS for p in frame[column]):
        file = resolve_image(report.path, relative) if relative else None
        if file is None or not file.is_file():
            continue  # already a problem from inspect_metadata
        try:
            img = open_image(file)
        except DataError as err:
            report.problems.append(str(err))
            continue
        report.sizes[f"{img.width}x{img.height}"] += 1
        report.modes[img.mode] += 1
    return report

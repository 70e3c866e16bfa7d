"""Read a dataset folder's Metadata.csv into a frame and its condition schema.

Everything that can be wrong with the table itself is found here, before any image is decoded,
and reported as one line naming the file and the CSV line (the header is line 1), so a user can
open the file at that line and fix it. Whether the images decode is `images.py`'s business.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterator

import pandas as pd

from colorgan.data.schema import ConditionSchema
from colorgan.errors import DataError, os_error_line, shown

METADATA = "Metadata.csv"
IMAGE_COLUMNS = ("input", "output")
SPLIT_COLUMN = "split"
SPLIT_VALUES = ("train", "test")
EXAMPLE_HEADER = "input,output,hair,shirt"


def condition_columns(frame: pd.DataFrame) -> list[str]:
    """Every column that is not an image path or the split is a condition attribute."""
    return [c for c in frame.columns if c not in IMAGE_COLUMNS and c != SPLIT_COLUMN]


def read_metadata(folder: Path) -> tuple[pd.DataFrame, ConditionSchema]:
    """The rows of `folder/Metadata.csv` (all values strings) and the schema they define.

    The frame has a plain RangeIndex; image paths are kept as written (relative to `folder`).
    The first problem found is raised as a DataError.
    """
    frame, problems = inspect_metadata(folder)
    if problems:
        raise DataError(problems[0])
    schema = ConditionSchema.from_mapping({c: frame[c].unique() for c in condition_columns(frame)})
    return frame, schema


def inspect_metadata(folder: Path) -> tuple[pd.DataFrame | None, list[str]]:
    """The frame and every problem in it, one line each (for `colorgan data check`).

    A problem with the file as a whole (missing, empty, bad header) is the only one reported and
    comes with no frame; row problems are all listed and come with the full frame.
    """
    folder = Path(folder)
    csv_path = folder / METADATA
    try:
        if not folder.is_dir():
            if folder.is_symlink() and not folder.exists():
                folder.stat()  # a loop or a dangling link: the system's own words, below
            return None, [f"{shown(folder)}: dataset folder not found (expected a folder holding {METADATA})"]
        if not csv_path.is_file():
            return None, [
                f"{shown(csv_path)}: not found; a dataset folder needs {METADATA} with a header like {EXAMPLE_HEADER}"
            ]
        header, records = _parse(csv_path)
    except DataError as err:
        return None, [str(err)]
    except OSError as err:  # a folder we may not enter, a name too long, a symlink loop
        return None, [f"{os_error_line(err, csv_path)} (cannot read the dataset)"]
    problems = [
        f"{csv_path}: line {line}: {len(row)} fields, but the header has {len(header)} ({','.join(header)})"
        for line, row in records if len(row) != len(header)
    ]
    records = [(line, row) for line, row in records if len(row) == len(header)]
    lines = [line for line, _ in records]
    frame = pd.DataFrame([row for _, row in records], columns=header, dtype=str)
    conditions = condition_columns(frame)
    if not conditions:
        return None, [
            f"{csv_path}: no condition column; add one column per attribute after input,output "
            f"(e.g. {EXAMPLE_HEADER})"
        ]
    problems += [
        *_value_problems(frame, conditions, lines, csv_path),
        *_path_problems(frame, lines, folder, csv_path),
        *_conflicts(frame, conditions, lines, csv_path),
    ]
    return frame, problems


def _parse(csv_path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and data rows (stripped strings), each row with its line number in the file."""
    try:
        text = csv_path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{csv_path}: not UTF-8 text (byte {err.start}); save it as UTF-8 CSV") from None
    if not text.strip():
        raise DataError(
            f"{csv_path}: empty file; expected a header like {EXAMPLE_HEADER} and one row per image"
        )
    first_line = text.lstrip("\r\n").splitlines()[0]
    delimiter = _delimiter(first_line, csv_path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                records.append((reader.line_num, [cell.strip() for cell in row]))
    except csv.Error as err:
        raise DataError(f"{csv_path}: line {reader.line_num}: malformed CSV ({err})") from None
    (header_line, header), data = records[0], records[1:]
    if "" in header:
        raise DataError(
            f"{csv_path}: line {header_line}: empty column name in the header ({delimiter.join(header)})"
        )
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise DataError(
            f"{csv_path}: line {header_line}: column {dupes[0]!r} appears twice; names must be unique"
        )
    if not data:
        raise DataError(
            f"{csv_path}: has a header but no rows; add one row per (sketch, conditions, coloured image)"
        )
    return header, data


def _delimiter(header: str, csv_path: Path) -> str:
    """`,` normally; `;` only when the header is unambiguously `input;output;...`."""
    comma = {c.strip().strip('"') for c in header.split(",")}
    semicolon = {c.strip().strip('"') for c in header.split(";")}
    if set(IMAGE_COLUMNS) <= comma:
        return ","
    if set(IMAGE_COLUMNS) <= semicolon:
        return ";"
    missing = [c for c in IMAGE_COLUMNS if c not in comma]
    hint = " (a ;-separated file must have input;output in its header)" if ";" in header else ""
    raise DataError(
        f"{csv_path}: line 1: missing column {' and '.join(repr(c) for c in missing)}; "
        f"found {header.strip()!r}, expected a header like {EXAMPLE_HEADER}{hint}"
    )


def _value_problems(
    frame: pd.DataFrame, conditions: list[str], lines: list[int], csv_path: Path
) -> Iterator[str]:
    for pos, row in enumerate(frame.itertuples(index=False)):
        values = dict(zip(frame.columns, row))
        for column in (*IMAGE_COLUMNS, *conditions):
            if not values[column]:
                what = "image path" if column in IMAGE_COLUMNS else "value for attribute"
                yield (
                    f"{csv_path}: line {lines[pos]}: empty {what} {column!r}; every row needs "
                    f"{', '.join((*IMAGE_COLUMNS, *conditions))}"
                )
        for column in conditions:  # image paths are judged by _path_problems
            if "\0" in values[column]:
                yield f"{csv_path}: line {lines[pos]}: value for attribute {column!r} contains a NUL byte"
        if SPLIT_COLUMN in values and values[SPLIT_COLUMN] not in SPLIT_VALUES:
            yield (
                f"{csv_path}: line {lines[pos]}: split {values[SPLIT_COLUMN]!r} is not one of "
                f"{', '.join(SPLIT_VALUES)}"
            )


def resolve_image(folder: Path, relative: str) -> Path | None:
    """The file a Metadata.csv path names, or None when it leaves `folder` or cannot be resolved."""
    try:
        return image_path(folder, relative)
    except DataError:
        return None


def image_path(folder: Path, relative: str) -> Path:
    """The file a Metadata.csv path names, or a DataError saying why there is none.

    Absolute paths, `..` and symlinks whose target lies outside the folder all count as leaving.
    Backslashes are read as separators so a CSV written on Windows works. A NUL byte, a symlink
    loop or a name the system refuses (too long) is named rather than raised from deep in pathlib.
    """
    if "\0" in relative:
        raise DataError(f"path {shown(relative)!r} contains a NUL byte")
    relative = relative.replace("\\", "/")
    if relative.startswith("/") or (len(relative) > 1 and relative[1] == ":"):
        raise DataError(_LEAVES.format(relative=shown(relative), folder=shown(folder)))
    try:
        root = folder.resolve()
        path = (root / relative).resolve()
    except RuntimeError:  # Python < 3.13 reports a symlink loop so
        raise DataError(f"path {shown(relative)!r} is a symlink loop") from None
    except OSError as err:
        raise DataError(f"path {shown(relative)!r}: {err.strerror or err}") from None
    if not path.is_relative_to(root):
        raise DataError(_LEAVES.format(relative=shown(relative), folder=shown(folder)))
    return path


_LEAVES = "path {relative!r} leaves the dataset folder; use a path relative to {folder} that stays inside it"


def _path_problems(frame: pd.DataFrame, lines: list[int], folder: Path, csv_path: Path) -> Iterator[str]:
    verdicts: dict[str, str | None] = {}  # each distinct path is checked once; sketches repeat
    for column in IMAGE_COLUMNS:
        for pos, relative in enumerate(frame[column]):
            if relative and relative not in verdicts:
                verdicts[relative] = _path_problem(folder, relative)
            if verdicts.get(relative):
                yield f"{csv_path}: line {lines[pos]}: {column} {verdicts[relative]}"


def _path_problem(folder: Path, relative: str) -> str | None:
    try:
        path = image_path(folder, relative)
        if not path.is_file():
            return f"image {shown(relative)!r} not found (looked for {shown(path)})"
    except DataError as err:
        return str(err)
    except OSError as err:  # is_file on a name too long, or in a folder we may not enter
        return f"image {shown(relative)!r}: {err.strerror or err}"
    return None


def _conflicts(frame: pd.DataFrame, conditions: list[str], lines: list[int], csv_path: Path) -> Iterator[str]:
    """One sketch under the same conditions must have one coloured image, or the target is ambiguous."""
    first: dict[tuple[str, ...], int] = {}
    keys = frame[["input", *conditions]].itertuples(index=False, name=None)
    for pos, (key, output) in enumerate(zip(keys, frame["output"])):
        if key not in first:
            first[key] = pos
        elif frame["output"].iat[first[key]] != output:
            other = first[key]
            yield (
                f"{csv_path}: line {lines[pos]}: same input and conditions as line {lines[other]} "
                f"but a different output ({output!r} vs {frame['output'].iat[other]!r}); "
                "keep one row per input and conditions"
            )

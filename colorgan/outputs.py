"""Writing into folders a user names: never over their files, never half.

`colorgan sample` and `colorgan data icons` write where they are told. A user's existing files are
replaced only when asked (`--overwrite`), a read-only file never (the user protected it), and a
failure (a full disk, an unwritable folder) removes the folders the command made, so what was
there before is what is there after.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Iterator, Sequence

from colorgan.errors import ColorganError, shown


@contextlib.contextmanager
def made_folders(folder: Path) -> Iterator[None]:
    """Make `folder` and its missing parents; if the block fails, remove the ones made here.

    Only folders this call made, innermost first, and only while they are empty.
    """
    made = [p for p in [folder, *folder.parents] if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in made:
            try:
                path.rmdir()
            except OSError:
                break
        raise


def read_only(path: Path) -> bool:
    """Whether the user protected `path` from writing (no write bit, or no write access for us).

    The mode bits count even for root, who may write anyway: a read-only file says "keep this".
    """
    return not path.lstat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK)


def check_replaceable(targets: Sequence[Path], overwrite: bool, flag: str = "--overwrite") -> None:
    """Refuse to write any of `targets` over what is there: existing files unless `overwrite`,
    folders and read-only files always. Checked before any work, so a refusal writes nothing."""
    existing = [t for t in targets if t.is_symlink() or t.exists()]
    for target in existing:
        if target.is_dir() and not target.is_symlink():
            raise ColorganError(f"{shown(target)}: is a folder; it cannot be replaced by an output file")
        if read_only(target):
            raise ColorganError(f"{shown(target)}: exists and is read-only; colorgan never replaces a read-only "
                                "file (remove it yourself, or write elsewhere)")
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ColorganError(f"{shown(existing[0])}: exists{more}; pass {flag} to replace existing outputs, "
                            "or write elsewhere")

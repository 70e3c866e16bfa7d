"""An uploaded sketch, decoded like a dataset image, with the server's tighter pixel limit.

The upload's header is read first: an image that says it is larger than MAX_PIXELS is refused
before a byte of it is decoded (a small PNG can claim 100,000 x 100,000). What passes goes
through `open_image`, the training data's own decoder, named after the upload in its errors.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from colorgan.data.images import open_image
from colorgan.errors import DataError

MAX_PIXELS = 4096 * 4096
"""Uploads with more pixels are refused: the output comes back at the input's size, as a PNG."""


class _Upload(io.BytesIO):
    """Upload bytes that print as the upload's name, so `open_image`'s errors name it."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.label = f"upload {name[:80]!r}"

    def __str__(self) -> str:
        return self.label


def decode_upload(data: bytes, name: str) -> Image.Image:
    upload = _Upload(data, name)
    try:
        with Image.open(upload) as img:
            width, height = img.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        width = height = 0  # not readable: open_image says why
    if width * height > MAX_PIXELS:
        raise DataError(f"{upload}: image is {width}x{height}, more than the {MAX_PIXELS} pixels "
                        "colorgan serve accepts (4096x4096)")
    upload.seek(0)
    return open_image(upload)

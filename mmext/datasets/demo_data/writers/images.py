"""``images/{split}/NNNNNN.png``: the RGB images (COCO and mmseg side)."""
from __future__ import annotations

from pathlib import Path

from ..encoding import png_bytes
from ..labels import Sample


class ImageWriter:
    """Writes each sample's image; ``path(sample)`` is where it went."""

    def __init__(self, root: Path, split: str) -> None:
        self.dir = root / 'images' / split
        self.dir.mkdir(parents=True, exist_ok=True)

    def add(self, sample: Sample) -> None:
        (self.dir / sample.name).write_bytes(png_bytes(sample.scene['image'], rgb=True))

    def finish(self) -> None:
        """Nothing to write per split."""

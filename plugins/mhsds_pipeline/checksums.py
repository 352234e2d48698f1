"""The one file checksum: sha256 of a file's bytes, read in 1 MiB blocks.

Used for the landing zone (``_extract.json``), the published manifest, the submission package
and the Access loader; standard library only, so any of them can import it cheaply.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

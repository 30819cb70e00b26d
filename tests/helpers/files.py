"""What a directory holds, byte for byte: to prove that a read left a store's files as it found them."""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file under `directory`, by its path inside it (a file added or removed shows too)."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }

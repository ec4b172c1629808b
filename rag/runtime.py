"""The process-wide environment the models need, set once by whoever starts the assistant.

Kept out of import time: importing ``rag`` changes nothing; ``Assistant()``
and the ``rag`` command call :func:`configure`. Values the user already set win.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import Settings


def tiktoken_dir(settings: Settings) -> Path:
    """Where tiktoken's vocabularies are read (``$TIKTOKEN_CACHE_DIR``, else ``models_dir/tiktoken``)."""
    return Path(os.environ.get("TIKTOKEN_CACHE_DIR") or settings.models_dir / "tiktoken")


def configure(settings: Settings) -> None:
    # OpenMP threads that spin while waiting starve everything else on a small
    # machine: measured 0.8 tok/s generation with spinning vs 5 tok/s passive when
    # the embedder or another process shares the 2 cores. Must be set before
    # torch or llama.cpp start their thread pools.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Never reach for a model hub: models come from installed packages or local folders.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # tiktoken's vocabularies, as `rag setup` prepared them.
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tiktoken_dir(settings))

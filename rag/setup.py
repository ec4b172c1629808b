"""One-time preparation run by the README commands; every step is idempotent."""

from __future__ import annotations

import sys
import time

from .config import DEFAULT_GGUF, Settings, load_settings
from .embed import resolve_model_location
from .model_files import ensure_default_gguf
from .tokens import seed_tiktoken_cache


def _step(message: str) -> float:
    print(f"• {message}", file=sys.stderr, flush=True)
    return time.perf_counter()


def prepare(settings: Settings | None = None, *, with_llm: bool = True) -> None:
    from .assistant import Assistant

    settings = settings or load_settings()
    _step("tiktoken vocabularies (offline cache)")
    seed_tiktoken_cache(settings.models_dir / "tiktoken")
    _step(f"embedding model: {settings.embedding.model}")
    resolve_model_location(settings)
    if with_llm and settings.llm.model_path == DEFAULT_GGUF:
        _step("chat model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (verified by SHA-256)")
        ensure_default_gguf(settings.resolve(DEFAULT_GGUF), settings.home / ".cache" / "model-parts")
    t = _step("index")
    report = Assistant(settings).index()
    print(
        f"  index {report.action}: {report.documents} documents, {report.chunks} passages "
        f"({time.perf_counter() - t:.1f}s)",
        file=sys.stderr,
    )

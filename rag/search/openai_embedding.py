"""Embeddings from an OpenAI-compatible server (``embedding.backend = "openai"``).

For ingesting large archives on a GPU box: vLLM, Text Embeddings Inference, Infinity or
any server with ``POST /v1/embeddings``, through LangChain's ``OpenAIEmbeddings``. The
texts are sent with the model's prompts already in front ("query: " / "passage: " for
e5), since a generic server adds none; the vectors are L2-normalised here. The index
records ``openai:<model>`` (with the prompts and size) as the model that built it, so
switching between this and a local model rebuilds the index once instead of mixing
vectors of two sources; moving the server to another address does not.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..config import EmbeddingSettings, mask_url
from ..errors import ConfigError, ModelNotFoundError


class OpenAIEmbedder:
    """The ``Encoder`` contract (rag.search.embedding) over an OpenAI-compatible server."""

    def __init__(self, cfg: EmbeddingSettings) -> None:
        from langchain_openai import OpenAIEmbeddings

        if cfg.query_prompt is None or cfg.document_prompt is None:
            raise ConfigError(
                f"embedding.backend = \"openai\" sends the texts with their prompts in front: set "
                f"embedding.query_prompt and embedding.document_prompt for {cfg.model!r} (its own "
                "sentence-transformers prompts are not known here)."
            )
        self.cfg = cfg
        self.query_prompt, self.document_prompt = cfg.query_prompt, cfg.document_prompt
        self.client = OpenAIEmbeddings(
            model=cfg.openai_model,
            base_url=cfg.openai_base_url,
            api_key=cfg.openai_api_key,
            dimensions=cfg.dimensions,
            # Texts as they are (no tiktoken pre-splitting: not every server takes token ids).
            check_embedding_ctx_length=False,
            chunk_size=max(cfg.batch_size, 1),
            request_timeout=cfg.timeout_s,
            max_retries=2,
        )
        # The model as served, not where: another address for the same server (a new GPU box, a
        # load balancer) must not look like another model and rebuild the whole index.
        name = f"openai:{cfg.openai_model}"
        prompts = hashlib.sha1(f"{self.query_prompt}\0{self.document_prompt}".encode()).hexdigest()[:8]
        self.dim = len(self.encode_queries(["dimension probe"])[0])  # the server says what it serves
        self.model_id = f"{name}+prompt:{prompts}/{self.dim}d"

    def _embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        try:
            rows: list[Any] = self.client.embed_documents(texts)
        except Exception as err:
            why = f"the embeddings server at {self.cfg.openai_base_url} did not answer ({type(err).__name__}: {err})"
            raise ModelNotFoundError(
                f"{mask_url(why)}; check embedding.openai_base_url and that it serves {self.cfg.openai_model!r}, "
                "or set embedding.backend = \"sentence-transformers\"."
            ) from err
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed([self.query_prompt + t for t in texts])

    def encode_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._embed([self.document_prompt + t for t in texts])

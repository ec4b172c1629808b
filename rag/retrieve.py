"""The retriever: dense (FAISS) and BM25 candidates fused by reciprocal rank.

Dense retrieval carries English questions to Italian passages; BM25 nails
names, numbers and rare words. Reciprocal rank fusion needs no score
calibration between the two. Every hit also carries its dense cosine, which
the answer pipeline uses to decide whether anything relevant was found.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from .config import RetrievalSettings
from .embed import Embedder
from .lexical import BM25Index
from .types import SearchHit
from .vector_store import VectorStore


class HybridRetriever:
    """Searches one VectorStore; BM25 is built over the same chunks."""

    def __init__(self, store: VectorStore, embedder: Embedder, cfg: RetrievalSettings) -> None:
        self.store = store
        self.embedder = embedder
        self.cfg = cfg
        self._vectors = store.vectors()
        self._bm25 = BM25Index([c.text for c in store.chunks]) if cfg.mode != "dense" else None

    def search(self, query: str, k: int | None = None, mode: str | None = None) -> list[SearchHit]:
        k = k or self.cfg.k
        mode = mode or self.cfg.mode
        if not len(self.store):
            return []
        qvec = self.embedder.encode_queries([query])[0]
        dense_all = self._vectors @ qvec
        fetch = max(self.cfg.fetch_k, k)
        fused: dict[int, float] = {}
        bm25_scores: dict[int, float] = {}
        if mode in ("dense", "hybrid"):
            order = np.argsort(-dense_all)[:fetch]
            for rank, pos in enumerate(order):
                weight = self.cfg.dense_weight if mode == "hybrid" else 1.0
                fused[int(pos)] = fused.get(int(pos), 0.0) + (
                    weight / (self.cfg.rrf_k + rank + 1) if mode == "hybrid" else float(dense_all[pos])
                )
        if mode in ("bm25", "hybrid") and self._bm25 is not None:
            for rank, (pos, score) in enumerate(self._bm25.search(query, fetch)):
                bm25_scores[pos] = score
                contribution = self.cfg.bm25_weight / (self.cfg.rrf_k + rank + 1) if mode == "hybrid" else score
                fused[pos] = fused.get(pos, 0.0) + contribution
        best = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [
            SearchHit(
                chunk=self.store.chunks[pos],
                score=score,
                rank=rank + 1,
                dense_score=float(dense_all[pos]),
                bm25_score=bm25_scores.get(pos),
            )
            for rank, (pos, score) in enumerate(best)
        ]


class LangChainRetriever(BaseRetriever):
    """The same retriever for LangChain chains (``retriever.invoke(query)``)."""

    retriever: Any
    k: int = 4

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        return [
            LCDocument(page_content=h.text, metadata={**h.to_dict(), "text": None})
            for h in self.retriever.search(query, self.k)
        ]

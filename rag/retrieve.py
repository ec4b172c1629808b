"""The retriever: dense (FAISS vectors) and BM25 fused, then a sentence-level re-score.

Dense retrieval carries English questions to Italian passages; BM25 nails
names, numbers and rare words. Tuned on the SQuAD-it dev questions (see
``rag eval retrieval``), the default fusion is a weighted sum of the dense
cosine and the BM25 score as a share of the query's total IDF: unlike raw
BM25 it is comparable across queries, and an English question whose words
find nothing in Italian text gets a small lexical score instead of a
confidently wrong ranking (reciprocal rank fusion, ``fusion="rrf"``, cannot
tell the two apart). The best few candidates are then re-scored with their
best-matching sentence, since a question usually targets one sentence of a
passage. Every hit carries its dense cosine, which the answer pipeline uses
to decide whether anything relevant was found.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from .chunking import indexed_text
from .config import RetrievalSettings
from .embed import Embedder
from .lexical import BM25Index
from .sentences import sentence_spans
from .types import Chunk, SearchHit
from .vector_store import VectorStore

# Sentence vectors kept in memory (chunks); they are cheap to recompute.
SENTENCE_CACHE_CHUNKS = 20_000


class HybridRetriever:
    """Searches one VectorStore; BM25 is built over the same chunks when first needed."""

    def __init__(self, store: VectorStore, embedder: Embedder, cfg: RetrievalSettings) -> None:
        self.store = store
        self.embedder = embedder
        self.cfg = cfg
        self._vectors = store.vectors()
        self._lock = threading.Lock()
        self._bm25_index: BM25Index | None = None
        self._sentences: OrderedDict[str, tuple[list[tuple[int, int]], np.ndarray]] = OrderedDict()
        if cfg.mode != "dense":
            self._bm25()

    def _bm25(self) -> BM25Index:
        with self._lock:
            if self._bm25_index is None:
                chunks = self.store.chunks
                self._bm25_index = BM25Index(
                    [indexed_text(c) for c in chunks],
                    [c.language for c in chunks],
                    k1=self.cfg.bm25_k1,
                    b=self.cfg.bm25_b,
                )
            return self._bm25_index

    # sentences ------------------------------------------------------------------
    def sentence_vectors(self, chunks: list[Chunk]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        """(sentence spans, passage-prompt vectors) of each chunk, computed once and cached.

        Spans are ``sentences.sentence_spans``, so the citation checker can reuse them.
        """
        found: dict[str, tuple[list[tuple[int, int]], np.ndarray]] = {}
        with self._lock:
            for c in chunks:
                if c.chunk_id in self._sentences:
                    self._sentences.move_to_end(c.chunk_id)  # least recently used goes first
                    found[c.chunk_id] = self._sentences[c.chunk_id]
        missing = [c for c in {c.chunk_id: c for c in chunks}.values() if c.chunk_id not in found]
        if missing:
            spans = [sentence_spans(c.text) for c in missing]
            texts = [c.text[s:e] for c, sp in zip(missing, spans, strict=True) for s, e in sp]
            vectors = self.embedder.encode_passages(texts)
            at = 0
            for c, sp in zip(missing, spans, strict=True):
                found[c.chunk_id] = (sp, vectors[at : at + len(sp)])
                at += len(sp)
            with self._lock:
                self._sentences.update((c.chunk_id, found[c.chunk_id]) for c in missing)
                while len(self._sentences) > SENTENCE_CACHE_CHUNKS:
                    self._sentences.popitem(last=False)
        # Answered from this call's own copies: the cache may have evicted some meanwhile.
        return [found[c.chunk_id] for c in chunks]

    def _sentence_rescore(self, order: np.ndarray, fused: np.ndarray, qvecs: np.ndarray) -> np.ndarray:
        """Top candidates get ``sentence_weight`` x their best sentence cosine added, and are re-sorted."""
        n = min(self.cfg.rerank_k, len(order))
        if n <= 1 or self.cfg.sentence_weight <= 0:
            return order
        head = order[:n]
        sentences = self.sentence_vectors([self.store.chunks[p] for p in head])
        best = np.array([float(np.max(vecs @ qvecs.T)) for _, vecs in sentences])
        fused[head] = fused[head] + self.cfg.sentence_weight * best
        head = head[np.argsort(-fused[head], kind="stable")]
        return np.concatenate([head, order[n:]])

    # search -----------------------------------------------------------------------
    def search(
        self, query: str, k: int | None = None, mode: str | None = None, also: Sequence[str] = ()
    ) -> list[SearchHit]:
        """Top-k chunks for ``query``.

        ``also`` holds other wordings of the same question (a translation into
        the articles' language): every score is averaged over all wordings, and
        a hit's reported dense and BM25 scores stay those of ``query``.
        """
        k = k or self.cfg.k
        mode = mode or self.cfg.mode
        if not len(self.store):
            return []
        queries = [query, *(q for q in also if q and q != query)]
        qvecs = self.embedder.encode_queries(queries)
        dense_each = qvecs @ self._vectors.T
        dense_all = dense_each[0]
        bm25_all: np.ndarray | None = None
        if mode == "dense":
            fused = dense_each.mean(axis=0).astype(np.float64)
            order = np.argsort(-fused, kind="stable")
        else:
            lexical = [self._bm25().scores(q) for q in queries]
            bm25_all = lexical[0].scores
            bm25_mean = np.mean([x.scores for x in lexical], axis=0)
            if mode == "bm25":
                fused = bm25_mean.astype(np.float64)
                order = np.flatnonzero(fused > 0)
                order = order[np.argsort(-fused[order], kind="stable")]
            elif self.cfg.fusion == "rrf":
                fused, order = self._rrf(dense_each.mean(axis=0), bm25_mean)
            else:
                normalized = np.mean([x.normalized for x in lexical], axis=0)
                fused = self.cfg.dense_weight * dense_each.mean(axis=0) + self.cfg.bm25_weight * normalized
                fused = fused.astype(np.float64)
                order = np.argsort(-fused, kind="stable")
                order = self._sentence_rescore(order, fused, qvecs)
        return [
            SearchHit(
                chunk=self.store.chunks[pos],
                score=float(fused[pos]),
                rank=rank + 1,
                dense_score=float(dense_all[pos]),
                bm25_score=None if bm25_all is None or bm25_all[pos] <= 0 else float(bm25_all[pos]),
            )
            for rank, pos in enumerate(order[:k].tolist())
        ]

    def _rrf(self, dense_all: np.ndarray, bm25_all: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted reciprocal rank fusion of each retriever's top ``fetch_k``."""
        fused = np.zeros(len(dense_all), dtype=np.float64)
        fetch = min(self.cfg.fetch_k, len(dense_all))
        for weight, scores, positive_only in ((self.cfg.dense_weight, dense_all, False),
                                              (self.cfg.bm25_weight, bm25_all, True)):
            top = np.argsort(-scores, kind="stable")[:fetch]
            if positive_only:
                top = top[scores[top] > 0]
            fused[top] += weight / (self.cfg.rrf_k + np.arange(1, len(top) + 1))
        candidates = np.flatnonzero(fused > 0)
        return fused, candidates[np.argsort(-fused[candidates], kind="stable")]


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

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

import hashlib
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import RetrievalSettings
from ..corpus.chunking import indexed_text
from ..text.sentences import sentence_spans
from ..types import Chunk, SearchHit
from .embedding import Encoder
from .lexical import BM25Index
from .sentence_vectors import SentenceVectors
from .stores import VectorStore, atomic_write

log = logging.getLogger(__name__)
# Sentence vectors kept in memory (chunks); they are cheap to recompute.
SENTENCE_CACHE_CHUNKS = 20_000


# BM25 saved in the index folder (``HybridRetriever.bm25_file``).
BM25_FILE = "bm25.npz"


def bm25_key(chunks: Sequence[Chunk]) -> str:
    """What a saved BM25 index must have been built from: these passages (id, language and the
    indexed text: a new chunking may keep the ids), in this order."""
    digest = hashlib.sha256()
    for c in chunks:
        digest.update(f"{c.chunk_id}\0{c.language}\0{indexed_text(c)}\0".encode())
    return f"{len(chunks)}:{digest.hexdigest()}"


# One saver of a BM25 file at a time in this process (they share a temporary name).
_SAVING = threading.Lock()


class HybridRetriever:
    """Searches one VectorStore; BM25 is built over the same chunks when first needed."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Encoder,
        cfg: RetrievalSettings,
        carry: HybridRetriever | None = None,
        bm25_file: Path | None = None,
        sentences: SentenceVectors | None = None,
    ) -> None:
        """``carry``: the retriever of the index before an update, whose sentence vectors (by
        passage id, the same text) are kept, and whose BM25 index is extended when passages
        were only added. ``bm25_file``: where BM25 is saved beside the index and read back at
        the next start when it was built from the same passages (else built and saved again).
        ``sentences``: the passages' sentence vectors embedded at ingest (the index's); those
        it lacks are computed here and kept with it (not saved: the indexer saves them)."""
        self.store = store
        self.embedder = embedder
        self.cfg = cfg
        self.bm25_file = bm25_file
        self.sentences = sentences
        self._lock = threading.Lock()
        self._bm25_index: BM25Index | None = None
        self._sentences: OrderedDict[str, tuple[list[tuple[int, int]], np.ndarray]] = OrderedDict()
        self.saver: threading.Thread | None = None
        if carry is not None and carry.embedder is embedder:
            with carry._lock:
                self._sentences = OrderedDict(carry._sentences)
                self._bm25_index = self._grown(carry)
            if self._bm25_index is not None:
                self._save_bm25(self._bm25_index)
        if cfg.mode != "dense":
            self._bm25()

    def _grown(self, carry: HybridRetriever) -> BM25Index | None:
        """The BM25 index of ``carry``, extended with the passages added after its own (None when
        the store changed otherwise: a removal shifts every position)."""
        old, before, now = carry._bm25_index, carry.store.chunks, self.store.chunks
        if old is None or carry.cfg != self.cfg or old.size != len(before) or len(now) < len(before):
            return None
        if any(a.chunk_id != b.chunk_id for a, b in zip(before, now, strict=False)):
            return None
        grown = old.copy()
        added = now[len(before) :]
        grown.extend([indexed_text(c) for c in added], [c.language for c in added])
        return grown

    def _bm25(self) -> BM25Index:
        with self._lock:
            if self._bm25_index is None:
                self._bm25_index = self._saved_bm25()
            if self._bm25_index is None:
                chunks = self.store.chunks
                self._bm25_index = BM25Index(
                    [indexed_text(c) for c in chunks],
                    [c.language for c in chunks],
                    k1=self.cfg.bm25_k1,
                    b=self.cfg.bm25_b,
                )
                self._save_bm25(self._bm25_index)
            return self._bm25_index

    @cached_property
    def _bm25_key(self) -> str:
        """Computed once per retriever (its store never changes), and for a save off the
        caller's path: hashing every passage's text takes a tenth of a second at 70,000."""
        return bm25_key(self.store.chunks)

    def _saved_bm25(self) -> BM25Index | None:
        if self.bm25_file is None:
            return None
        try:
            raw = self.bm25_file.read_bytes()
        except OSError:
            return None
        index = BM25Index.from_bytes(raw, self._bm25_key, self.cfg.bm25_k1, self.cfg.bm25_b)
        if index is None:
            log.info("%s was built from other passages or is damaged: BM25 is built again", self.bm25_file)
        return index

    def _save_bm25(self, index: BM25Index) -> None:
        """Save ``index`` beside the index, off the caller's path (a cache: a failure is logged)."""
        if self.bm25_file is None:
            return
        path = self.bm25_file

        def save() -> None:
            try:
                with _SAVING:
                    atomic_write(path, index.to_bytes(self._bm25_key))
            except Exception as err:  # a cache: never an error for the user (MemoryError, disk full…)
                log.warning("could not save BM25 to %s (%s); it is built again at the next start", path, err)

        # Not a daemon: a short-lived `rag ingest` still finishes it (atomic: never half-written).
        self.saver = threading.Thread(target=save, name="bm25-save")
        self.saver.start()

    # sentences ------------------------------------------------------------------
    def sentence_vectors(self, chunks: list[Chunk]) -> list[tuple[list[tuple[int, int]], np.ndarray]]:
        """(sentence spans, passage-prompt vectors) of each chunk, computed once and cached.

        Spans are ``sentences.sentence_spans``, so the citation checker can reuse them.
        """
        if self.sentences is not None:
            return self.sentences.lookup(chunks, self.embedder.encode_passages)
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

    def _sentence_rescore(
        self, candidates: np.ndarray, order: np.ndarray, fused: np.ndarray, qvecs: np.ndarray
    ) -> np.ndarray:
        """The best ``rerank_k`` of ``order`` (indices into ``candidates`` and ``fused``) get
        ``sentence_weight`` x their best sentence cosine added, and are re-sorted."""
        n = min(self.cfg.rerank_k, len(order))
        if n <= 1 or self.cfg.sentence_weight <= 0:
            return order
        head = order[:n]
        sentences = self.sentence_vectors([self.store.chunks[int(p)] for p in candidates[head]])
        best = np.array([float(np.max(vecs @ qvecs.T)) for _, vecs in sentences])
        fused[head] = fused[head] + self.cfg.sentence_weight * best
        head = head[np.argsort(-fused[head], kind="stable")]
        return np.concatenate([head, order[n:]])

    def __len__(self) -> int:
        return len(self.store)

    def all_passages(self) -> list[SearchHit]:
        """Every indexed passage, unscored, in a fixed order: by document, then by position."""
        chunks = sorted(self.store.chunks, key=lambda c: (c.doc_id, c.start))
        return [SearchHit(chunk=c, score=0.0, rank=i) for i, c in enumerate(chunks, 1)]

    def passage_counts(self) -> dict[str, int]:
        """Indexed passages per document id."""
        return dict(Counter(c.doc_id for c in self.store.chunks))

    def languages(self) -> list[str]:
        """Languages of the indexed passages (the question is translated into the others)."""
        return sorted({c.language for c in self.store.chunks if c.language})

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
        if mode == "bm25":
            lexical = [self._bm25().scores(q) for q in queries]
            fused = np.mean([x.scores for x in lexical], axis=0).astype(np.float64)
            order = np.flatnonzero(fused > 0)
            order = order[np.argsort(-fused[order], kind="stable")][:k]
            dense = self._dense(order, qvecs)
            return self._hits(order, fused[order], dense[:, 0], lexical[0].scores[order])
        depth = max(self.cfg.dense_candidates, k)
        if mode == "dense":
            candidates = self._nearest(qvecs, depth)
            dense = self._dense(candidates, qvecs)
            fused = dense.mean(axis=1).astype(np.float64)
            top = np.argsort(-fused, kind="stable")[:k]
            return self._hits(candidates[top], fused[top], dense[top, 0], None)
        lexical = [self._bm25().scores(q) for q in queries]
        bm25_mean = np.mean([x.scores for x in lexical], axis=0)
        if self.cfg.fusion == "rrf":
            return self._rrf(qvecs, bm25_mean, lexical[0].scores, k)
        # Candidates: the store's nearest and BM25's best for every wording, their dense
        # scores computed exactly. For one wording this is what a full scan finds (a passage
        # outside both lists cannot outscore the k-th one); with a translation beside the
        # question the mean's top k could in principle lie outside, which the SQuAD-it dev
        # figures (identical to the full scan's) show does not happen in practice.
        best_lexical = [np.argsort(-x.scores, kind="stable")[:depth] for x in lexical]
        candidates = np.unique(np.concatenate([self._nearest(qvecs, depth), *best_lexical]))
        dense = self._dense(candidates, qvecs)
        normalized = np.mean([x.normalized[candidates] for x in lexical], axis=0)
        fused = (self.cfg.dense_weight * dense.mean(axis=1) + self.cfg.bm25_weight * normalized).astype(np.float64)
        order = np.argsort(-fused, kind="stable")
        order = self._sentence_rescore(candidates, order, fused, qvecs)[:k]
        return self._hits(candidates[order], fused[order], dense[order, 0], lexical[0].scores[candidates[order]])

    def _nearest(self, qvecs: np.ndarray, depth: int) -> np.ndarray:
        """Positions of the store's ``depth`` nearest passages to any of the query vectors."""
        _, positions = self.store.search(qvecs, depth)
        return np.unique(positions[positions >= 0])

    def _dense(self, positions: np.ndarray, qvecs: np.ndarray) -> np.ndarray:
        """Cosines (len(positions), len(qvecs)) of a few passages with every wording."""
        return self.store.vectors_at(positions.tolist()) @ qvecs.T

    def _hits(
        self, positions: np.ndarray, fused: np.ndarray, dense: np.ndarray, bm25: np.ndarray | None
    ) -> list[SearchHit]:
        return [
            SearchHit(
                chunk=self.store.chunks[int(pos)],
                score=float(fused[i]),
                rank=i + 1,
                dense_score=float(dense[i]),
                bm25_score=None if bm25 is None or bm25[i] <= 0 else float(bm25[i]),
            )
            for i, pos in enumerate(positions.tolist())
        ]

    def _rrf(self, qvecs: np.ndarray, bm25_mean: np.ndarray, bm25_first: np.ndarray, k: int) -> list[SearchHit]:
        """Weighted reciprocal rank fusion of each retriever's top ``fetch_k``."""
        fetch = min(self.cfg.fetch_k, len(self.store))
        fused: dict[int, float] = {}
        # The mean query vector's inner products are the mean of each wording's cosines;
        # the store's order is re-sorted on exact scores, ties by position, as a full scan.
        _, positions = self.store.search(qvecs.mean(axis=0, keepdims=True), fetch)
        dense_top = positions[0][positions[0] >= 0]
        exact = self._dense(dense_top, qvecs).mean(axis=1)
        dense_top = dense_top[np.lexsort((dense_top, -exact))]
        bm25_top = np.argsort(-bm25_mean, kind="stable")[:fetch]
        bm25_top = bm25_top[bm25_mean[bm25_top] > 0]
        for weight, top in ((self.cfg.dense_weight, dense_top), (self.cfg.bm25_weight, bm25_top)):
            for rank, pos in enumerate(top.tolist(), 1):
                fused[pos] = fused.get(pos, 0.0) + weight / (self.cfg.rrf_k + rank)
        ranked = sorted(fused, key=lambda p: (-fused[p], p))[:k]  # ties by position, as a full scan
        positions_k = np.asarray(ranked, dtype=np.int64)
        dense = self._dense(positions_k, qvecs)
        return self._hits(positions_k, np.asarray([fused[p] for p in ranked]), dense[:, 0], bm25_first[positions_k])


